import Foundation

/// Timing of the in-place float allreduce the trainer uses for its gradients (`Communicator.allreduceSum` on one
/// flat buffer), at the sizes that matter here: the AdaptIR gradient and the full fine-tuning gradient of a preset.
/// `adaptir-dist bench allreduce` prints it; the pieces without timing (sizes, bandwidth formulas, median) are
/// unit-tested.
public enum AllreduceBenchmark {
    /// One buffer size to time.
    public struct Size: Equatable, Sendable {
        /// e.g. "ipt adaptir" for a named size, or the float count as text.
        public let label: String
        public let floats: Int
        public var bytes: Int { floats * MemoryLayout<Float>.size }
        public init(label: String, floats: Int) { self.label = label; self.floats = floats }
    }

    /// Floats of the trainer's gradient allreduce for a preset and method: the trainable parameters
    /// (what the method `trains`), counted from the layout without allocating the model.
    public static func trainableFloats(preset: Preset, method choice: MethodChoice) throws -> Int {
        let method = try MethodRegistry.make(choice, preset: preset)
        return AdaptedIPT.parameterSpecs(preset: preset, method: method)
            .filter(method.trainsTensor)
            .reduce(0) { $0 + $1.count }
    }

    /// The named sizes: `<preset>-<method>` for presets small and ipt and methods adaptir and full.
    public static let namedSizes: [Size] = [Preset.small, Preset.ipt].flatMap { p in
        [MethodChoice.adaptir, .full].map { m in Size(label: "\(p.name) \(m.name)", floats: (try? trainableFloats(preset: p, method: m)) ?? 0) }
    }

    /// The default list, smallest first: small adaptir (7,596), ipt adaptir (697,656 = 2.79 MB), small full
    /// (1,820,514), ipt full (118,892,370 = 476 MB).
    public static var defaultSizes: [Size] { namedSizes.sorted { $0.floats < $1.floats } }

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// Parses a comma-separated list of float counts (`_` allowed as a digit separator, e.g. `697_656`) or size
    /// names (`ipt-adaptir`, `ipt-full`, `small-adaptir`, `small-full`; a space may replace the dash).
    public static func parseSizes(_ text: String) throws -> [Size] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard !(items.count == 1 && items[0].isEmpty) else { throw ParseError(description: "no sizes given") }
        return try items.map { item in
            let name = item.lowercased().replacingOccurrences(of: "-", with: " ")
            if let named = namedSizes.first(where: { $0.label == name }) { return named }
            let digits = item.replacingOccurrences(of: "_", with: "")
            guard let n = Int(digits), !digits.hasPrefix("+") else {
                let names = namedSizes.map { $0.label.replacingOccurrences(of: " ", with: "-") }.joined(separator: ", ")
                throw ParseError(description: "'\(item)' is neither a float count nor one of \(names)")
            }
            guard n >= 1 else { throw ParseError(description: "size \(n) must be at least 1 float") }
            guard n <= Int.max / 8 else { throw ParseError(description: "size \(n) is too large") }
            return Size(label: String(n), floats: n)
        }
    }

    /// Bus-bandwidth factor of nccl-tests for allreduce, 2(p-1)/p: the bytes each rank must send (and receive) per
    /// byte of buffer with a bandwidth-optimal algorithm, so busbw compares with link speed whatever the algorithm.
    /// 0 on one rank (nothing moves).
    public static func busBandwidthFactor(ranks: Int) -> Double {
        ranks > 1 ? 2 * Double(ranks - 1) / Double(ranks) : 0
    }

    /// Algorithmic bandwidth, bytes per second: buffer bytes / time.
    public static func algorithmicBandwidth(bytes: Int, seconds: Double) -> Double {
        seconds > 0 ? Double(bytes) / seconds : 0
    }

    /// Bus bandwidth, bytes per second: 2(p-1)/p · bytes / time (nccl-tests' PERFORMANCE.md).
    public static func busBandwidth(bytes: Int, seconds: Double, ranks: Int) -> Double {
        busBandwidthFactor(ranks: ranks) * algorithmicBandwidth(bytes: bytes, seconds: seconds)
    }

    /// The median (mean of the two middle values for an even count); 0 for none.
    public static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let s = values.sorted(), m = s.count / 2
        return s.count % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2
    }

    /// The timings of one size.
    public struct Result: Sendable {
        public let size: Size
        public let ranks: Int
        public let warmups: Int
        /// Seconds of each timed repeat: the slowest rank's time of that repeat.
        public let times: [Double]
        /// How the values travelled (fp32, or fp16/bf16 as `train --grad-dtype`).
        public let wire: GradientWireType
        public init(size: Size, ranks: Int, warmups: Int, times: [Double], wire: GradientWireType = .fp32) {
            self.size = size; self.ranks = ranks; self.warmups = warmups; self.times = times; self.wire = wire
        }
        public var repeats: Int { times.count }
        /// Bytes on the wire per rank's buffer.
        public var bytes: Int { size.floats * wire.bytesPerElement }
        public var medianSeconds: Double { AllreduceBenchmark.median(times) }
        public var bestSeconds: Double { times.min() ?? 0 }
        public var algorithmicBandwidth: Double { AllreduceBenchmark.algorithmicBandwidth(bytes: bytes, seconds: medianSeconds) }
        public var busBandwidth: Double { AllreduceBenchmark.busBandwidth(bytes: bytes, seconds: medianSeconds, ranks: ranks) }
    }

    public struct CheckError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Times `comm.allreduceSum` in place on a buffer of `size.floats` floats (with `wire` fp16/bf16: the trainer's
    /// `allreduceMean` in that format, encoding and decoding included, checked against the mean within 1 %).
    ///
    /// Every rank fills its buffer with rank + 1; the first warm-up call is checked on every rank (sampled elements
    /// must equal p(p+1)/2, exact in Float), then the buffer is zeroed so the repeats sum zeros (no overflow, no
    /// denormals). Each repeat starts with a barrier; its time is the slowest rank's. After `warmup` calls, up to
    /// `repeats` timed calls run while the time spent on this size stays under `maxSeconds` (at least one warm-up and
    /// one timed call always run; rank 0 decides and broadcasts, outside the timed region).
    public static func measure(comm: Communicator, size: Size, warmup: Int, repeats: Int, maxSeconds: Double,
                               wire: GradientWireType = .fp32) throws -> Result {
        let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: size.floats)
        defer { buf.deallocate() }
        var scratch: [UInt16] = []
        func reduce() throws {
            if wire == .fp32 { try comm.allreduceSum(buf) } else { try comm.allreduceMean(buf, wire: wire, scratch: &scratch) }
        }
        buf.initialize(repeating: Float(comm.rank + 1))   // touches every page before timing
        let start = monotonicSeconds()
        func rootSaysGoOn(_ wanted: Bool) throws -> Bool {
            let go = comm.isRoot && wanted && monotonicSeconds() - start < maxSeconds
            return try comm.broadcast(Int64(go ? 1 : 0), root: 0) == 1
        }

        try comm.barrier()
        try reduce()
        let want = wire == .fp32 || comm.size == 1 ? Float(comm.size * (comm.size + 1) / 2) : Float(comm.size + 1) / 2
        let probes = Set([0, size.floats / 3, size.floats / 2, size.floats - 1] + stride(from: 0, to: size.floats, by: max(1, size.floats / 64)))
        let tolerance: Float = wire == .fp32 ? 0 : 0.01 * want
        let wrong = probes.sorted().first { abs(buf[$0] - want) > tolerance }
        let failed = try comm.allgather(Int64(wrong ?? -1))
        if let r = failed.firstIndex(where: { $0 >= 0 }) {
            throw CheckError(description: "allreduce of \(size.floats) floats gave a wrong sum on rank \(r) at element \(failed[r]) (want \(want))")
        }
        buf.update(repeating: 0)
        var warmups = 1
        while try rootSaysGoOn(warmups < warmup) {
            try comm.barrier()
            try reduce()
            warmups += 1
        }

        var times: [Double] = []
        repeat {
            try comm.barrier()
            let t0 = monotonicSeconds()
            try reduce()
            times.append(monotonicSeconds() - t0)
        } while try rootSaysGoOn(times.count < repeats)
        try times.withUnsafeMutableBufferPointer { try comm.allreduceMax($0) }
        return Result(size: size, ranks: comm.size, warmups: warmups, times: times, wire: wire)
    }

    /// A markdown table of results: size, floats, bytes, ranks, repeats, median and best ms, algbw and busbw (GB/s,
    /// from the median time; "n/a" on one rank).
    public static func markdownTable(_ results: [Result]) -> String {
        var s = "| size | floats | bytes | ranks | repeats | median ms | best ms | algbw GB/s | busbw GB/s |\n"
        s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in results {
            // On one rank nothing moves: the bandwidths would only measure the call overhead.
            let alg = r.ranks > 1 ? String(format: "%.3f", r.algorithmicBandwidth / 1e9) : "n/a"
            let bus = r.ranks > 1 ? String(format: "%.3f", r.busBandwidth / 1e9) : "n/a"
            s += String(format: "| %@ | %@ | %@ | %d | %d | %@ | %@ | %@ | %@ |\n", r.size.label + (r.wire == .fp32 ? "" : " (\(r.wire.rawValue))"), r.size.floats.grouped,
                        r.bytes.grouped, r.ranks, r.repeats, milliseconds(r.medianSeconds), milliseconds(r.bestSeconds),
                        alg, bus)
        }
        return s
    }

    /// CSV rows (with a header line): ranks, hosts, grad_dtype, label, floats, bytes, median_ms, best_ms.
    public static func csv(_ results: [Result], hosts: Int) -> String {
        "ranks,hosts,grad_dtype,label,floats,bytes,median_ms,best_ms\n" + results.map { r in
            "\(r.ranks),\(hosts),\(r.wire.rawValue),\(r.size.label.replacingOccurrences(of: " ", with: "-")),\(r.size.floats),\(r.bytes),"
                + String(format: "%.6f,%.6f", r.medianSeconds * 1e3, r.bestSeconds * 1e3)
        }.joined(separator: "\n") + "\n"
    }

    /// Milliseconds with about 3 significant digits (at least whole milliseconds).
    public static func milliseconds(_ s: Double) -> String {
        let ms = s * 1e3
        return ms < 1 ? String(format: "%.4f", ms) : ms < 10 ? String(format: "%.3f", ms) : ms < 100 ? String(format: "%.2f", ms)
            : ms < 1000 ? String(format: "%.1f", ms) : String(format: "%.0f", ms)
    }
}
