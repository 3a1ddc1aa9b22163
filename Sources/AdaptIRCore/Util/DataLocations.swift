import Foundation

/// Where the bundled data (the `datasets/` folder: `ipt_<preset>_backbone.h5`, `samples/train`, `samples/test`) is
/// found, so that the embedded default runs from any working directory and from an installed binary. Looked for,
/// in this order:
///
/// 1. `$ADAPTIR_DATA` (a folder laid out like `datasets/`), when set;
/// 2. `datasets/` in the current directory (the checkout's root, as before);
/// 3. `<prefix>/share/adaptir-dist/datasets`, where the executable is `<prefix>/bin/adaptir-dist` (`make install
///    PREFIX=...` puts it there);
/// 4. `datasets/` of the checkout the executable was built in (the folder holding its `.build`).
///
/// Each item is taken from the first of these folders that holds it; when none does, the error lists every place.
public struct DataLocations: Sendable {
    /// The environment variable naming a data folder.
    public static let environmentVariable = "ADAPTIR_DATA"

    /// One place to look: its folder (nil when it does not apply, e.g. the variable is unset) and how it was derived.
    public struct Place: Sendable, Equatable {
        public let folder: String?
        public let origin: String
    }

    public let places: [Place]

    /// The places for this process: its environment, working directory and executable.
    public static var current: DataLocations {
        DataLocations(environment: ProcessInfo.processInfo.environment,
                      currentDirectory: FileManager.default.currentDirectoryPath, executable: executablePath)
    }

    /// The places for the given environment, working directory and executable path (resolved, no symlinks).
    public init(environment: [String: String], currentDirectory: String, executable: String) {
        func join(_ a: String, _ b: String) -> String { (a as NSString).appendingPathComponent(b) }
        var p: [Place] = []
        if let env = environment[Self.environmentVariable], !env.isEmpty {
            let folder = env.hasPrefix("/") ? env : join(currentDirectory, env)
            p.append(Place(folder: (folder as NSString).standardizingPath, origin: "$\(Self.environmentVariable)"))
        } else {
            p.append(Place(folder: nil, origin: "$\(Self.environmentVariable) (not set)"))
        }
        p.append(Place(folder: join(currentDirectory, "datasets"), origin: "the current directory"))
        let bin = (executable as NSString).deletingLastPathComponent
        let prefix = (bin as NSString).deletingLastPathComponent
        p.append(Place(folder: (join(prefix, "share/adaptir-dist/datasets") as NSString).standardizingPath,
                       origin: "the install prefix of \(executable)"))
        let parts = (executable as NSString).pathComponents
        if let i = parts.lastIndex(of: ".build"), i > 0 {
            p.append(Place(folder: join(NSString.path(withComponents: Array(parts[..<i])), "datasets"),
                           origin: "the checkout of \(executable)"))
        } else {
            p.append(Place(folder: nil, origin: "the checkout of the executable (none: \(executable) is not under a .build folder)"))
        }
        places = p
    }

    /// The running executable, symlinks resolved (`/proc/self/exe` on Linux).
    public static var executablePath: String {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        let arg0 = CommandLine.arguments.first ?? ""
        let full = arg0.hasPrefix("/") ? arg0 : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(arg0)
        return (full as NSString).resolvingSymlinksInPath
    }

    /// The path of `item` (relative to a data folder, e.g. `samples/train`) in the first place that has it.
    public func find(_ item: String) -> String? {
        for case let folder? in places.map(\.folder) {
            let path = (folder as NSString).appendingPathComponent(item)
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        return nil
    }

    /// Like `find`, but a missing item is an error that lists every place looked in.
    public func locate(_ item: String) throws -> String {
        if let p = find(item) { return p }
        throw DataError(file: item, message: "bundled data not found; " + searched(item))
    }

    /// "looked in A (origin), B (origin), ..." for `item`, one line.
    public func searched(_ item: String) -> String {
        "looked in " + places.map { place in
            guard let folder = place.folder else { return place.origin }
            return "\((folder as NSString).appendingPathComponent(item)) (\(place.origin))"
        }.joined(separator: ", ") + "; set \(Self.environmentVariable) to a folder laid out like datasets/ or install with `make install PREFIX=...`"
    }
}
