import Foundation

/// One batch of training samples: `lq` [B, 3, p, p] and `gt` [B, 3, p*s, p*s], float CHW in [0, 1] (`byte / 255`),
/// and the GLOBAL dataset index of each sample (row b of the tensors is sample `indices[b]`).
public struct Batch: @unchecked Sendable {
    public let indices: [Int]
    public let lq: Tensor
    public let gt: Tensor
}

/// The on-the-fly degradation of a clean HR crop (kind "images"): returns the LQ image (p x p for scale s), drawing
/// any randomness (noise) from the sample's `.degrade` stream, keyed by (seed, epoch, global index).
public typealias DegradeFunction = @Sendable (RGBImage, inout SampleRNG) throws -> RGBImage

/// Rank-local reader of a patch file (format version 1): it opens the file read-only, reads only this rank's shard
/// of each epoch (a `DistributedSampler` built from the file's `count`), one hyperslab per patch, turns uint8 HWC
/// into float CHW batches, and applies the training augmentation (modes 1...7, `Augment`). Kind "images" adds a
/// random aligned crop (48s on the HR sub-image, i.e. a 48x48 LR window at (i, j) and HR at (s i, s j)) and the
/// caller's `degrade`. Every random draw comes from `SampleRNG(seed, epoch, global index, stream)`, so a sample's
/// pixels do not depend on the number of ranks, the shard, or the order of reading.
///
/// A background thread prefetches up to `prefetch` batches into a bounded queue; `nextBatch()` hands them over,
/// rethrows a read failure as a `DataError` naming the file, and returns nil at the end of the epoch.
/// Usage: `start(epoch: e)`, then `while let b = try reader.nextBatch() { ... }`. `stop()` (also run by `deinit`
/// and by the next `start`) cancels the thread and waits for it. Not for concurrent use from several threads.
/// Opening, validation and reading go through `PatchFile` (one per reader, used by one thread at a time).
public final class PatchReader: @unchecked Sendable {
    /// Validated header of the file.
    public let path: String
    public let kind: String
    public let task: String
    public let scale: Int
    /// LQ patch side (48).
    public let patchSize: Int
    /// Side of the stored sub-images (kind "images"), else nil.
    public let imageSize: Int?
    /// Number of samples in the file (patches or sub-images).
    public let count: Int
    /// This rank's sampler over `count`.
    public let sampler: DistributedSampler
    /// Samples per batch on this rank.
    public let batchSize: Int
    /// Whether the last, smaller batch of a rank's epoch is dropped.
    public let dropLastBatch: Bool
    /// Seed of the permutation and of every per-sample draw.
    public let seed: UInt64
    /// Whether to augment (training) or not (mode 0; e.g. validation patches).
    public let augment: Bool
    /// Bounded queue depth of the prefetcher.
    public let prefetch: Int

    private let core: ReaderCore
    private var pipe: Pipe?

    /// Batches per epoch on this rank: `ceil(samplesPerRank / batchSize)` (floor with `dropLastBatch`).
    public var batchesPerEpoch: Int {
        dropLastBatch ? sampler.samplesPerRank / batchSize : (sampler.samplesPerRank + batchSize - 1) / batchSize
    }

    /// Opens and validates `path` with `PatchFile.open` (format_version 1, kind, attributes, dataset shapes and
    /// types) and refuses an empty file; throws a one-line `DataError` naming the file otherwise. `degrade` is
    /// required for kind "images" and ignored for "patches".
    public init(path: String, ranks: Int = 1, rank: Int = 0, batchSize: Int, seed: UInt64, shuffle: Bool = true,
                dropLast: Bool = false, dropLastBatch: Bool = false, augment: Bool = true, prefetch: Int = 3,
                degrade: DegradeFunction? = nil) throws {
        precondition(batchSize >= 1, "PatchReader: batchSize must be >= 1, got \(batchSize)")
        precondition(prefetch >= 1, "PatchReader: prefetch must be >= 1, got \(prefetch)")
        let file = try PatchFile.open(path)
        guard file.count >= 1 else { throw DataError(file: path, message: "attribute 'count' is 0: no samples") }
        if file.kind == .images && degrade == nil {
            throw DataError(file: path, message: "kind 'images' needs a degradation function (task '\(file.task)')")
        }
        self.path = path
        kind = file.kind.rawValue
        task = file.task
        scale = file.scale
        patchSize = file.patchSize
        imageSize = file.imageSize
        count = file.count
        sampler = DistributedSampler(count: file.count, ranks: ranks, rank: rank, shuffle: shuffle, seed: seed,
                                     dropLast: dropLast)
        self.batchSize = batchSize
        self.dropLastBatch = dropLastBatch
        self.seed = seed
        self.augment = augment
        self.prefetch = prefetch
        core = ReaderCore(file: file, seed: seed, augment: augment, degrade: degrade)
    }

    deinit { stop() }

    /// Starts prefetching the batches of `epoch` on a background thread (stopping any previous epoch first).
    public func start(epoch: Int) {
        stop()
        let order = sampler.indices(epoch: epoch)
        var groups: [[Int]] = []
        var k = 0
        while k < order.count {
            let g = Array(order[k..<min(k + batchSize, order.count)])
            if g.count == batchSize || !dropLastBatch { groups.append(g) }
            k += batchSize
        }
        let batches = groups
        let p = Pipe(depth: prefetch)
        pipe = p
        let core = self.core
        let thread = Thread {
            defer { p.finish() }
            for g in batches {
                if p.isCancelled { return }
                let item: Result<Batch, Error>
                do { item = .success(try core.makeBatch(g, epoch: epoch)) } catch { item = .failure(core.dataError(error)) }
                guard p.put(item) else { return }
                if case .failure = item { return }
            }
        }
        thread.name = "PatchReader prefetch"
        thread.start()
    }

    /// The next batch of the running epoch, nil after the last one. Rethrows a read or validation failure (a
    /// `DataError` naming the file); after an error the epoch is over.
    public func nextBatch() throws -> Batch? {
        guard let p = pipe else { preconditionFailure("PatchReader.nextBatch: call start(epoch:) first") }
        switch p.take() {
        case nil: return nil
        case .success(let b)?: return b
        case .failure(let e)?: throw e
        }
    }

    /// Cancels the prefetch thread and waits until it has exited (idempotent).
    public func stop() {
        pipe?.cancelAndWait()
        pipe = nil
    }

    /// Reads, crops and augments one sample outside the prefetcher (same result as in a batch): lq [3, p, p] and
    /// gt [3, ps, ps] floats. For tests and debugging; do not call while an epoch is running.
    public func sample(_ index: Int, epoch: Int) throws -> Batch {
        try batch(of: [index], epoch: epoch)
    }

    /// The samples `indices` as one batch, outside the prefetcher (validation reads its fixed subset this way).
    public func batch(of indices: [Int], epoch: Int) throws -> Batch {
        do { return try core.makeBatch(indices, epoch: epoch) } catch { throw core.dataError(error) }
    }
}

/// The bounded queue between the prefetch thread and the consumer.
private final class Pipe: @unchecked Sendable {
    private let cond = NSCondition()
    private var queue: [Result<Batch, Error>] = []
    private var finished = false, cancelled = false, exited = false
    let depth: Int

    init(depth: Int) { self.depth = depth }

    var isCancelled: Bool { cond.lock(); defer { cond.unlock() }; return cancelled }

    /// Producer: waits for room; false when cancelled.
    func put(_ item: Result<Batch, Error>) -> Bool {
        cond.lock(); defer { cond.unlock() }
        while queue.count >= depth && !cancelled { cond.wait() }
        if cancelled { return false }
        queue.append(item)
        cond.broadcast()
        return true
    }

    /// Producer: no more items (called when the thread exits).
    func finish() {
        cond.lock(); finished = true; exited = true; cond.broadcast(); cond.unlock()
    }

    /// Consumer: the next item, or nil once the producer has finished and the queue is empty.
    func take() -> Result<Batch, Error>? {
        cond.lock(); defer { cond.unlock() }
        while queue.isEmpty && !finished { cond.wait() }
        if queue.isEmpty { return nil }
        let item = queue.removeFirst()
        cond.broadcast()
        return item
    }

    func cancelAndWait() {
        cond.lock(); defer { cond.unlock() }
        cancelled = true
        queue.removeAll()
        cond.broadcast()
        while !exited { cond.wait() }
    }
}

/// File access and per-sample work, used only by one thread at a time (the prefetcher, or `sample` when idle).
final class ReaderCore: @unchecked Sendable {
    let file: PatchFile
    let path: String
    let images: Bool
    let scale: Int, p: Int, g: Int
    let imageSize: Int
    let seed: UInt64
    let augment: Bool
    let degrade: DegradeFunction?
    // Scratch buffers, reused across samples.
    var lqBuf: [UInt8], gtBuf: [UInt8], imgBuf: [UInt8], tmp: [UInt8]

    init(file: PatchFile, seed: UInt64, augment: Bool, degrade: DegradeFunction?) {
        self.file = file
        path = file.path
        images = file.kind == .images
        scale = file.scale
        p = file.patchSize
        g = file.patchSize * file.scale
        imageSize = file.imageSize ?? 0
        self.seed = seed
        self.augment = augment
        self.degrade = degrade
        lqBuf = [UInt8](repeating: 0, count: p * p * 3)
        gtBuf = [UInt8](repeating: 0, count: g * g * 3)
        imgBuf = [UInt8](repeating: 0, count: imageSize * imageSize * 3)
        tmp = [UInt8](repeating: 0, count: g * g * 3)
    }

    /// Any error as a one-line DataError naming the file (`PatchFile` and the reader already throw those; a
    /// `degrade` function may throw anything).
    func dataError(_ error: Error) -> DataError {
        if let d = error as? DataError { return d }
        return DataError(file: path, message: "\(error)".replacingOccurrences(of: "\n", with: " "))
    }

    /// Builds the batch of the global indices `idx` for `epoch`.
    func makeBatch(_ idx: [Int], epoch: Int) throws -> Batch {
        let b = idx.count
        let lq = Tensor(uninitialized: [b, 3, p, p])
        let gt = Tensor(uninitialized: [b, 3, g, g])
        for (k, i) in idx.enumerated() {
            var m = 0
            if images { try loadImageSample(i, epoch: epoch) } else { m = try loadPatch(i, epoch: epoch) }
            Self.toCHW(lqBuf, side: p, mode: m, into: lq.data + k * 3 * p * p)
            Self.toCHW(gtBuf, side: g, mode: m, into: gt.data + k * 3 * g * g)
        }
        return Batch(indices: idx, lq: lq, gt: gt)
    }

    private func mode(_ i: Int, epoch: Int) -> Int {
        guard augment else { return 0 }
        var rng = SampleRNG(seed: seed, epoch: epoch, index: i, stream: .augment)
        return Augment.randomMode(&rng)
    }

    /// In-place augmentation of a square side x side x 3 buffer.
    private func augmentInPlace(_ buf: inout [UInt8], side: Int, mode: Int) {
        guard mode != 0 else { return }
        buf.withUnsafeBufferPointer { s in
            tmp.withUnsafeMutableBufferPointer { d in
                Augment.apply(mode: mode, src: s, height: side, width: side, channels: 3, dst: d)
            }
        }
        let n = side * side * 3
        buf.withUnsafeMutableBufferPointer { d in tmp.withUnsafeBufferPointer { s in
            d.baseAddress!.update(from: s.baseAddress!, count: n)
        } }
    }

    /// Reads patch `i` into the scratch buffers; returns its augmentation mode (applied during the conversion).
    private func loadPatch(_ i: Int, epoch: Int) throws -> Int {
        try lqBuf.withUnsafeMutableBufferPointer { lq in
            try gtBuf.withUnsafeMutableBufferPointer { gt in try file.readPatches(i, lq: lq, gt: gt) }
        }
        return mode(i, epoch: epoch)
    }

    /// Random aligned crop of the HR sub-image (LR window (i, j) of p x p on the s-times smaller grid, HR at (s i, s j)),
    /// augmentation, then the degradation to the LQ patch.
    private func loadImageSample(_ i: Int, epoch: Int) throws {
        let S = imageSize
        try imgBuf.withUnsafeMutableBufferPointer { try file.readImage(i, into: $0) }
        var crop = SampleRNG(seed: seed, epoch: epoch, index: i, stream: .crop)
        let positions = S / scale - p + 1
        let top = scale * crop.below(positions), left = scale * crop.below(positions)
        imgBuf.withUnsafeBufferPointer { src in
            gtBuf.withUnsafeMutableBufferPointer { dst in
                for y in 0..<g {
                    (dst.baseAddress! + y * g * 3).update(from: src.baseAddress! + ((top + y) * S + left) * 3, count: g * 3)
                }
            }
        }
        augmentInPlace(&gtBuf, side: g, mode: mode(i, epoch: epoch))
        var rng = SampleRNG(seed: seed, epoch: epoch, index: i, stream: .degrade)
        let lq = try degrade!(RGBImage(width: g, height: g, pixels: gtBuf), &rng)
        guard lq.width == p, lq.height == p, lq.pixels.count == p * p * 3 else {
            throw DataError(file: path, message: "degradation for sample \(i) returned \(lq.width)x\(lq.height), expected \(p)x\(p)")
        }
        lqBuf = lq.pixels
    }

    /// uint8 HWC (side x side x 3) under augmentation `mode` -> float CHW in [0, 1], in one pass:
    /// `out[c, i, j] = aug(in)[i, j, c] / 255` (torchvision ToTensor's division), `aug` as `Augment.apply`.
    static func toCHW(_ src: [UInt8], side: Int, mode: Int, into out: UnsafeMutablePointer<Float>) {
        let plane = side * side
        let m = Augment.sourceMap(h: side, w: side, mode: mode)
        let step = (m.aj * side + m.bj) * 3
        src.withUnsafeBufferPointer { sb in
            let s = sb.baseAddress!
            let r = out, gch = out + plane, b = out + 2 * plane
            for i in 0..<side {
                var q = ((m.a0 + m.ai * i) * side + m.b0 + m.bi * i) * 3
                let o = i * side
                if step == 3 {
                    let row = s + q
                    for j in 0..<side {
                        r[o + j] = Float(row[3 * j]) / 255
                        gch[o + j] = Float(row[3 * j + 1]) / 255
                        b[o + j] = Float(row[3 * j + 2]) / 255
                    }
                } else {
                    for j in 0..<side {
                        r[o + j] = Float(s[q]) / 255
                        gch[o + j] = Float(s[q + 1]) / 255
                        b[o + j] = Float(s[q + 2]) / 255
                        q += step
                    }
                }
            }
        }
    }
}
