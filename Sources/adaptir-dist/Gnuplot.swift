import Foundation

/// Writes `script` to `path` and runs gnuplot on it (Debian's gnuplot-nox, installed by scripts/install-deps.sh);
/// false when gnuplot is missing or fails, so a report can say the plot is absent instead of failing.
func runGnuplot(_ script: String, scriptPath path: String) -> Bool {
    guard (try? Data(script.utf8).write(to: URL(fileURLWithPath: path))) != nil else { return false }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["gnuplot", path]
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}
