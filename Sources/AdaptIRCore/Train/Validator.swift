import Foundation

/// The validation loss of a training run, as BasicSR's periodic validation: the mean L1 loss of the model in eval
/// mode (batch norms on their running statistics, no graph) over every patch of a packed validation file, read
/// without augmentation. Each rank scores the patches i with i mod ranks == rank and the sums are allreduced, so the
/// value does not depend on the number of ranks (up to the order of float sums) and no patch counts twice.
public final class Validator {
    public let reader: PatchReader
    public let comm: Communicator
    public let batchSize: Int
    private let mine: [Int]

    /// `degrade`: the on-the-fly degradation of a file of kind "images" (its crops and noise are fixed by seed 0).
    public init(path: String, comm: Communicator, batchSize: Int = 16, degrade: DegradeFunction? = nil) throws {
        reader = try PatchReader(path: path, batchSize: batchSize, seed: 0, shuffle: false, augment: false, prefetch: 1, degrade: degrade)
        self.comm = comm
        self.batchSize = batchSize
        mine = Array(stride(from: comm.rank, to: reader.count, by: comm.size))
    }

    /// Patches in the file.
    public var count: Int { reader.count }

    /// The mean L1 loss over all patches (a collective: every rank must call it).
    public func loss(model: AdaptedIPT, task: Int) throws -> Double {
        let wasTraining = model.training
        model.training = false
        defer { model.training = wasTraining }
        var sums: [Double] = [0, 0]
        var k = 0
        while k < mine.count {
            let group = Array(mine[k..<min(k + batchSize, mine.count)])
            let b = try reader.batch(of: group, epoch: 0)
            let l = Autograd.withoutGrad { l1Loss(model(b.lq, task: task), b.gt).item }
            sums[0] += Double(l) * Double(group.count)
            sums[1] += Double(group.count)
            k += batchSize
        }
        try sums.withUnsafeMutableBufferPointer { try comm.allreduceSum($0) }
        return sums[0] / max(sums[1], 1)
    }
}
