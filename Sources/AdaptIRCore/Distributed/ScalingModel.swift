import Foundation

/// The cost of moving bytes over one kind of link: a latency per message and a time per byte (1 / bandwidth).
public struct LinkCost: Sendable, Equatable {
    public var latency: Double
    public var secondsPerByte: Double
    public init(latency: Double, secondsPerByte: Double) { self.latency = latency; self.secondsPerByte = secondsPerByte }

    /// A link of `gigabits` per second at `efficiency` of its line rate, with `latency` seconds per message.
    public static func network(gigabits: Double, efficiency: Double, latency: Double) -> LinkCost {
        LinkCost(latency: latency, secondsPerByte: 8 / (gigabits * 1e9 * efficiency))
    }

    /// Bytes per second.
    public var bandwidth: Double { secondsPerByte > 0 ? 1 / secondsPerByte : .infinity }
}

/// The allreduce cost model of the scaling study (Thakur, Rabenseifner and Gropp 2005; shared/notes/distributed.md
/// §4.1): OpenMPI 4.1 uses Rabenseifner's algorithm for the gradient sizes here (recursive-halving reduce-scatter,
/// recursive-doubling allgather: ring's bandwidth term 2(p-1)/p · n with a latency term 2 log2 p). With block
/// placement (`--map-by slot`) of q ranks on each of N nodes, the first log2 q halving steps stay inside a node and
/// the last log2 N cross the network, where the q ranks of a node together send 2(N-1)/N · n bytes over its link:
///
///     T(n, N, q) = 2 log2 q · α_shm + 2 (q-1)/q · n · β_shm  +  2 log2 N · α_net + 2 (N-1)/N · n · β_net
///
/// The reduction arithmetic is folded into the β terms (it moves with the bytes).
public enum AllreduceCostModel {
    /// The two regressors of one link: (latency terms, byte terms) for `bytes` over `parts` participants.
    public static func terms(bytes: Double, parts: Int) -> (latency: Double, bytes: Double) {
        guard parts > 1 else { return (0, 0) }
        let p = Double(parts)
        return (2 * log2(p), 2 * (p - 1) / p * bytes)
    }

    /// Predicted seconds of one allreduce of `bytes` over `nodes` x `ranksPerNode` ranks (block placement).
    public static func seconds(bytes: Double, nodes: Int, ranksPerNode: Int, intra: LinkCost, inter: LinkCost) -> Double {
        let a = terms(bytes: bytes, parts: ranksPerNode), b = terms(bytes: bytes, parts: nodes)
        return a.latency * intra.latency + a.bytes * intra.secondsPerByte + b.latency * inter.latency + b.bytes * inter.secondsPerByte
    }

    /// One measured allreduce: its regressors for the link being fitted and the measured seconds (with the other
    /// link's predicted share already subtracted).
    public struct Sample: Sendable {
        public var latencyTerms: Double, byteTerms: Double, seconds: Double
        public init(latencyTerms: Double, byteTerms: Double, seconds: Double) {
            self.latencyTerms = latencyTerms; self.byteTerms = byteTerms; self.seconds = seconds
        }
    }

    /// Least-squares latency and time per byte, with relative residuals ((t - model) / t), so a 30 KB allreduce
    /// counts as much as a 476 MB one; both are kept non-negative (a negative latency is refitted as zero).
    public static func fit(_ samples: [Sample]) -> LinkCost? {
        let usable = samples.filter { $0.seconds > 0 && ($0.latencyTerms > 0 || $0.byteTerms > 0) }
        guard !usable.isEmpty else { return nil }
        var sxx = 0.0, sxy = 0.0, syy = 0.0, sxt = 0.0, syt = 0.0
        for s in usable {
            let w = 1 / (s.seconds * s.seconds)
            sxx += w * s.latencyTerms * s.latencyTerms; sxy += w * s.latencyTerms * s.byteTerms; syy += w * s.byteTerms * s.byteTerms
            sxt += w * s.latencyTerms * s.seconds; syt += w * s.byteTerms * s.seconds
        }
        let det = sxx * syy - sxy * sxy
        if det > 1e-12 * sxx * syy {
            let a = (sxt * syy - syt * sxy) / det, b = (sxx * syt - sxy * sxt) / det
            if a >= 0 && b >= 0 { return LinkCost(latency: a, secondsPerByte: b) }
        }
        // One term alone (the other clamped at zero): the better of the two.
        let onlyBytes = syy > 0 ? LinkCost(latency: 0, secondsPerByte: max(0, syt / syy)) : nil
        let onlyLatency = sxx > 0 ? LinkCost(latency: max(0, sxt / sxx), secondsPerByte: 0) : nil
        func loss(_ c: LinkCost) -> Double {
            usable.reduce(0) { let r = ($1.seconds - c.latency * $1.latencyTerms - c.secondsPerByte * $1.byteTerms) / $1.seconds; return $0 + r * r }
        }
        return [onlyBytes, onlyLatency].compactMap { $0 }.min { loss($0) < loss($1) }
    }

    /// The time per byte alone, least squares on relative residuals with the latency held at `latency` (a shaped link:
    /// its latency comes from the allreduces small enough to pass the token bucket's burst, its bandwidth from the
    /// large ones, where a free latency would soak up the large ones' run-to-run spread).
    public static func fitBandwidth(_ samples: [Sample], latency: Double) -> LinkCost? {
        var sbb = 0.0, sbt = 0.0
        for s in samples where s.seconds > 0 && s.byteTerms > 0 {
            let w = 1 / (s.seconds * s.seconds)
            sbb += w * s.byteTerms * s.byteTerms; sbt += w * s.byteTerms * (s.seconds - latency * s.latencyTerms)
        }
        guard sbb > 0 else { return nil }
        return LinkCost(latency: latency, secondsPerByte: max(0, sbt / sbb))
    }
}

/// Time per training step of data-parallel training with a blocking gradient allreduce after the backward (what
/// `Trainer` does): compute scales with the patches per rank, the allreduce with the gradient bytes.
public struct StepCostModel: Sendable {
    /// Forward + backward seconds per patch of one rank.
    public var computePerPatch: Double
    /// Seconds per step that do not depend on the batch (optimizer, non-finite scan, loss allreduce).
    public var fixedSeconds: Double
    /// Bytes of the gradient allreduce.
    public var gradientBytes: Double
    public init(computePerPatch: Double, fixedSeconds: Double, gradientBytes: Double) {
        self.computePerPatch = computePerPatch; self.fixedSeconds = fixedSeconds; self.gradientBytes = gradientBytes
    }

    public struct Prediction: Sendable {
        public var stepSeconds: Double, allreduceSeconds: Double, patchesPerSecond: Double
        /// Step time without communication / step time (1: perfect weak scaling against one rank).
        public var efficiency: Double
        public var commFraction: Double { stepSeconds > 0 ? allreduceSeconds / stepSeconds : 0 }
    }

    /// Weak scaling: `batchPerRank` patches on each of `nodes` x `ranksPerNode` ranks, one core each.
    public func predict(batchPerRank: Int, nodes: Int, ranksPerNode: Int, intra: LinkCost, inter: LinkCost) -> Prediction {
        let compute = Double(batchPerRank) * computePerPatch + fixedSeconds
        let ar = AllreduceCostModel.seconds(bytes: gradientBytes, nodes: nodes, ranksPerNode: ranksPerNode, intra: intra, inter: inter)
        let step = compute + ar
        return Prediction(stepSeconds: step, allreduceSeconds: ar,
                          patchesPerSecond: Double(nodes * ranksPerNode * batchPerRank) / step, efficiency: compute / step)
    }

    /// The fewest nodes (powers of two up to `maxNodes`, then the exact count between the last two) whose predicted
    /// patches/s reaches `target`; nil when even `maxNodes` does not.
    public func nodesToReach(_ target: Double, batchPerRank: Int, ranksPerNode: Int, intra: LinkCost, inter: LinkCost, maxNodes: Int = 4096) -> Int? {
        func rate(_ n: Int) -> Double { predict(batchPerRank: batchPerRank, nodes: n, ranksPerNode: ranksPerNode, intra: intra, inter: inter).patchesPerSecond }
        var n = 1
        while n <= maxNodes {
            if rate(n) >= target {
                var lo = n / 2 + 1
                while lo < n && rate(lo) < target { lo += 1 }
                return n == 1 ? 1 : lo
            }
            n *= 2
        }
        return nil
    }
}
