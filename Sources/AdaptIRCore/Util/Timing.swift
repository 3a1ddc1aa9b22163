import Foundation

/// Monotonic wall-clock seconds.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Runs `body` once to warm up, then repeatedly until at least `minRuns` runs and `minSeconds` have passed;
/// returns the best (smallest) time of one run in seconds. Best-of is the usual convention for kernel rates.
public func bestTime(minRuns: Int = 3, minSeconds: Double = 0.5, maxRuns: Int = 1000, _ body: () -> Void) -> Double {
    body()
    var best = Double.infinity
    var runs = 0
    let start = monotonicSeconds()
    while runs < maxRuns && (runs < minRuns || monotonicSeconds() - start < minSeconds) {
        let t0 = monotonicSeconds()
        body()
        best = min(best, monotonicSeconds() - t0)
        runs += 1
    }
    return best
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`), or 0 where unavailable.
public func peakResidentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kb * 1024
    }
    return 0
}
