import AdaptIRCore
import ArgumentParser
import Foundation

/// `adaptir-dist bench data`: patches per second delivered by the PatchReader (with its prefetch thread) to a
/// consumer that does nothing, per rank and aggregated over ranks, against the rate at which a training step of the
/// small preset consumes patches.
struct BenchData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Patches/s of the patch reader with prefetch (per rank and aggregate under mpirun) vs a training step's consumption.")

    @Option(help: "Patch file to read (default: a temporary file of --patches random x4 patches, written and removed here).")
    var file: String?

    @Option(help: "Patches per batch on each rank.")
    var batch: Int = 16

    @Option(help: "Random patches in the generated file (x4: GT 192x192x3, LQ 48x48x3).")
    var patches: Int = 2000

    @Option(help: "Epochs read (the best epoch rate is reported; the first also warms the page cache).")
    var epochs: Int = 2

    @Option(help: "Prefetch queue depth.")
    var prefetch: Int = 3

    @Option(name: .customLong("ranks-sim"), help: "Simulate this many ranks inside this process (threads, one reader each) instead of MPI ranks; 0: off.")
    var ranksSim: Int = 0

    @Flag(help: "Skip timing the training step.")
    var noModel = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be >= 1, got \(batch)") }
        guard patches >= 1 else { throw ValidationError("--patches must be >= 1, got \(patches)") }
        guard epochs >= 1 else { throw ValidationError("--epochs must be >= 1, got \(epochs)") }
        guard (1...64).contains(prefetch) else { throw ValidationError("--prefetch must be in 1...64, got \(prefetch)") }
        guard ranksSim >= 0 else { throw ValidationError("--ranks-sim must be >= 0, got \(ranksSim)") }
    }

    func run() throws {
        let comm = Communicator.world
        defer { Communicator.finalize() }
        var path = file ?? ""
        var generated = false
        if file == nil {
            if comm.isRoot {
                path = NSTemporaryDirectory() + "adaptir-bench-data-\(getpid()).h5"
                let t0 = monotonicSeconds()
                try Self.writeRandomPatchFile(path, count: patches, scale: 4)
                let mb = Double(patches * (192 * 192 + 48 * 48) * 3) / 1e6
                print(String(format: "wrote %@: %d random x4 patches (%.0f MB) in %.1f s", path, patches, mb, monotonicSeconds() - t0))
            }
            path = try comm.broadcast(path, root: 0)
            generated = true
        }
        defer { if generated && comm.isRoot { try? FileManager.default.removeItem(atPath: path) } }

        let sim = ranksSim > 0
        let ranks = sim ? ranksSim : comm.size
        let myRanks = sim ? Array(0..<ranksSim) : [comm.rank]
        // Each (simulated) rank: best epoch time and patch count.
        let filePath = path, batch = self.batch, epochs = self.epochs, prefetch = self.prefetch
        let results = ResultBox(count: myRanks.count)
        let errors = ResultBox(count: myRanks.count)
        DispatchQueue.concurrentPerform(iterations: myRanks.count) { k in
            do {
                let r = try Self.measure(path: filePath, ranks: ranks, rank: myRanks[k], batch: batch, epochs: epochs, prefetch: prefetch)
                results.set(k, r)
            } catch { errors.setError(k, "\(error)") }
        }
        if let e = errors.firstError { throw ValidationError(e) }

        var rates: [Double] = []
        var totalPatches = 0.0, slowest = 0.0
        if sim {
            for k in 0..<myRanks.count {
                let (n, s) = results.get(k)
                rates.append(n / s); totalPatches += n; slowest = max(slowest, s)
            }
        } else {
            let (n, s) = results.get(0)
            rates = try comm.allgather(n / s)
            totalPatches = try comm.allreduceSum(n)
            slowest = try comm.allreduceMax(s)
        }
        let aggregate = totalPatches / slowest
        if comm.isRoot {
            let reader = try PatchReader(path: path, batchSize: batch, seed: 1)
            print("file \(path): kind \(reader.kind), task \(reader.task), x\(reader.scale), \(reader.count) samples; batch \(batch) per rank, prefetch \(prefetch)")
            print(sim ? "\(ranks) simulated ranks (threads in one process)" : "\(ranks) MPI rank(s)")
            for (r, rate) in rates.enumerated() { print(String(format: "  rank %d: %8.0f patches/s", r, rate)) }
            print(String(format: "aggregate: %8.0f patches/s (%.0f patches in %.3f s, slowest rank)", aggregate, totalPatches, slowest))
        }
        guard !noModel else { return }
        if comm.isRoot {
            let step = try Self.trainingStepSeconds(batch: 16)
            let consume = 16 / step
            print(String(format: "training step, preset small, AdaptIR, x4, global batch 16, 1 rank: %.3f s/step = %.1f patches/s", step, consume))
            print(String(format: "reader / training consumption: %.0fx (aggregate), %.0fx (slowest rank)", aggregate / consume,
                         (rates.min() ?? 0) / consume))
        }
        if !sim { try comm.barrier() }
    }

    /// Reads `epochs` epochs of this rank's shard through the prefetcher; returns (patches per epoch, best seconds).
    static func measure(path: String, ranks: Int, rank: Int, batch: Int, epochs: Int, prefetch: Int) throws -> (Double, Double) {
        let reader = try PatchReader(path: path, ranks: ranks, rank: rank, batchSize: batch, seed: 1, prefetch: prefetch)
        var best = Double.infinity, n = 0
        for e in 0..<epochs {
            let t0 = monotonicSeconds()
            reader.start(epoch: e)
            n = 0
            while let b = try reader.nextBatch() { n += b.indices.count }
            best = min(best, monotonicSeconds() - t0)
        }
        return (Double(n), best)
    }

    /// One forward + backward (adapter-only) of AdaptedIPT(small, adaptir) on `batch` x4 patches: best of 2 after a warm-up.
    static func trainingStepSeconds(batch: Int) throws -> Double {
        let model = AdaptedIPT(preset: .small, method: .adaptir, seed: 1)
        model.training = true
        var rng = SplitMix64(seed: 7)
        let w = model.store.trainable.base
        for i in 0..<model.store.trainableCount { w[i] += 0.01 * rng.uniform(1) }
        let x = Tensor(shape: [batch, 3, 48, 48], (0..<(batch * 3 * 48 * 48)).map { _ in rng.unitFloat() })
        let y = Tensor(shape: [batch, 3, 192, 192], (0..<(batch * 3 * 192 * 192)).map { _ in rng.unitFloat() })
        var best = Double.infinity
        for _ in 0..<3 {
            model.store.zeroGrad()
            let t0 = monotonicSeconds()
            l1Loss(model(x, task: 2), y).backward()
            best = min(best, monotonicSeconds() - t0)
        }
        return best
    }

    /// A version-1 patch file (kind "patches") of `count` random patches, written with `PatchFile.write` in blocks
    /// of 64 patches (GT from `SplitMix64(1)`, LQ from `SplitMix64(2)`, 8 bytes per draw).
    static func writeRandomPatchFile(_ path: String, count: Int, scale: Int) throws {
        let p = 48, g = 48 * scale, block = 64
        var gtRNG = SplitMix64(seed: 1), lqRNG = SplitMix64(seed: 2)
        func fill(_ buf: inout [UInt8], _ r: inout SplitMix64) {
            buf.withUnsafeMutableBytes { raw in
                let words = raw.count / 8
                let w = raw.baseAddress!.bindMemory(to: UInt64.self, capacity: words)
                for i in 0..<words { w[i] = r.next() }
                for i in (words * 8)..<raw.count { raw[i] = UInt8(truncatingIfNeeded: r.next()) }
            }
        }
        let header = PatchFile.Header(task: "sr_\(scale)", scale: scale, patchSize: p,
                                      degradation: "{\"resize\":\"random_bench\",\"scale\":\(scale)}")
        try PatchFile.write(to: path, header: header) { w in
            var gt = [UInt8](repeating: 0, count: block * g * g * 3), lq = [UInt8](repeating: 0, count: block * p * p * 3)
            var done = 0
            while done < count {
                let n = min(block, count - done)
                if n < block { gt = Array(gt.prefix(n * g * g * 3)); lq = Array(lq.prefix(n * p * p * 3)) }
                fill(&gt, &gtRNG); fill(&lq, &lqRNG)
                try w.appendPatches(gt: gt, lq: lq, count: n)
                done += n
            }
        }
    }
}

/// Results of the per-rank threads.
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [(Double, Double)]
    private var errors: [String?]
    init(count: Int) { values = Array(repeating: (0, 1), count: count); errors = Array(repeating: nil, count: count) }
    func set(_ k: Int, _ v: (Double, Double)) { lock.lock(); values[k] = v; lock.unlock() }
    func get(_ k: Int) -> (Double, Double) { lock.lock(); defer { lock.unlock() }; return values[k] }
    func setError(_ k: Int, _ e: String) { lock.lock(); errors[k] = e; lock.unlock() }
    var firstError: String? { lock.lock(); defer { lock.unlock() }; return errors.compactMap { $0 }.first }
}
