/// Training batches from a `PatchReader`: global step s is batch (s mod B) of epoch (s div B), B the batches per
/// epoch, so a resumed run replays exactly the data of an uninterrupted one. Every rank reads only its shard; the
/// sampler pads the shards so all ranks have the same number of steps per epoch.
public final class ReaderBatchSource: BatchSource {
    public let reader: PatchReader
    private var epoch = -1
    private var position = 0

    public init(reader: PatchReader) throws {
        guard reader.batchesPerEpoch > 0 else {
            throw DataError(file: reader.path, message: "\(reader.count) samples give no full batch of \(reader.batchSize) per rank")
        }
        self.reader = reader
    }

    public func batch(forStep step: Int) throws -> (lq: Tensor, gt: Tensor) {
        let perEpoch = reader.batchesPerEpoch
        let (e, pos) = (step / perEpoch, step % perEpoch)
        if e != epoch || pos != position {
            reader.start(epoch: e)
            epoch = e
            position = 0
            while position < pos {   // resume mid-epoch: replay the same order, skipping what was trained
                guard try reader.nextBatch() != nil else { break }
                position += 1
            }
        }
        guard let b = try reader.nextBatch() else {
            throw DataError(file: reader.path, message: "epoch \(e) ended after \(position) of \(perEpoch) batches")
        }
        position += 1
        return (b.lq, b.gt)
    }
}
