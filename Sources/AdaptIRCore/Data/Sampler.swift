/// The semantics of `torch.utils.data.DistributedSampler`: every rank computes the same epoch permutation from
/// `(seed, epoch)`, pads it (or drops its tail) to a multiple of the rank count, and takes every `ranks`-th position
/// starting at its rank, so the shards are disjoint, equally long, and together cover the (padded) permutation.
///
/// The permutation is NOT torch's `randperm` (that would need torch's Mersenne-Twister generator): it is a
/// Fisher-Yates shuffle driven by Philox4x32-10 (`SampleRNG` with key `seed` and counter stream
/// `SampleStream`-independent value `DistributedSampler.shuffleStream`, index 0, `epoch`). Everything else
/// (padding by repeating the first indices, strided shards, `num_samples`, `total_size`) follows torch exactly.
public struct DistributedSampler: Sendable {
    /// Counter word used for the shuffle stream ("SHUF"), distinct from the per-sample streams 0, 1, 2.
    public static let shuffleStream: UInt32 = 0x5348_5546

    /// Dataset size.
    public let count: Int
    /// Number of ranks (torch's num_replicas).
    public let ranks: Int
    /// This rank in 0..<ranks.
    public let rank: Int
    /// Whether each epoch is a fresh permutation (else 0..<count in order).
    public let shuffle: Bool
    /// Seed of the permutation; must be the same on every rank.
    public let seed: UInt64
    /// Drop the tail that does not divide evenly (else pad by repeating the first indices).
    public let dropLast: Bool

    /// Indices per rank per epoch (torch's num_samples): `ceil((count - ranks) / ranks)` with `dropLast` when
    /// `count % ranks != 0`, else `ceil(count / ranks)`.
    public let samplesPerRank: Int
    /// `samplesPerRank * ranks`.
    public var totalSize: Int { samplesPerRank * ranks }
    /// How many positions repeat an earlier index (`totalSize - count`, 0 with `dropLast`).
    public var padding: Int { max(totalSize - count, 0) }
    /// How many indices are dropped per epoch (`count - totalSize` with `dropLast`, else 0).
    public var dropped: Int { max(count - totalSize, 0) }

    /// A sampler over `count` samples for `rank` of `ranks`.
    public init(count: Int, ranks: Int, rank: Int, shuffle: Bool = true, seed: UInt64, dropLast: Bool = false) {
        precondition(count >= 0 && count <= Int(UInt32.max), "DistributedSampler: count \(count) outside 0...2^32-1")
        precondition(ranks >= 1, "DistributedSampler: ranks must be >= 1, got \(ranks)")
        precondition(rank >= 0 && rank < ranks, "DistributedSampler: rank \(rank) outside 0..<\(ranks)")
        self.count = count
        self.ranks = ranks
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
        if dropLast && count % ranks != 0 {
            samplesPerRank = (count - ranks + ranks - 1) / ranks  // ceil((count - ranks) / ranks), count >= 0
        } else {
            samplesPerRank = (count + ranks - 1) / ranks
        }
    }

    /// The whole epoch order before sharding: the permutation of `0..<count` for `(seed, epoch)` (identity without
    /// shuffle), identical on every rank.
    public func permutation(epoch: Int) -> [Int] {
        var p = Array(0..<count)
        guard shuffle, count > 1 else { return p }
        var rng = SampleRNG(seed: seed, epoch: epoch, index: 0, rawStream: Self.shuffleStream)
        // Fisher-Yates (Durstenfeld): for i = n-1 down to 1, swap p[i] with p[j], j uniform in 0...i.
        var i = count - 1
        while i > 0 {
            let j = rng.below(i + 1)
            p.swapAt(i, j)
            i -= 1
        }
        return p
    }

    /// The padded (or truncated) epoch order of length `totalSize`, before taking this rank's positions.
    public func paddedPermutation(epoch: Int) -> [Int] {
        var p = permutation(epoch: epoch)
        if totalSize <= p.count {
            p.removeLast(p.count - totalSize)
        } else if !p.isEmpty {
            let base = p
            while p.count < totalSize { p.append(contentsOf: base.prefix(totalSize - p.count)) }
        }
        return p
    }

    /// This rank's global dataset indices for `epoch`: positions `rank, rank + ranks, rank + 2 ranks, ...` of the
    /// padded permutation; `samplesPerRank` of them.
    public func indices(epoch: Int) -> [Int] {
        let p = paddedPermutation(epoch: epoch)
        return stride(from: rank, to: p.count, by: ranks).map { p[$0] }
    }
}
