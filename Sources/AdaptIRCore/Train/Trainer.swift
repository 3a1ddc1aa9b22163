import Foundation

/// What one optimisation step did, for the logs and the CSV.
public struct StepStats: Sendable {
    public var step: Int
    /// L1 loss averaged over the global batch.
    public var loss: Double
    public var lr: Float
    public var forwardSeconds = 0.0
    public var backwardSeconds = 0.0
    /// The small loss + non-finite-flag allreduce after the backward: the first collective of the step, so it holds
    /// the wait for the slowest rank (load imbalance), not bandwidth.
    public var waitSeconds = 0.0
    /// This rank's scan of the trainable gradients for non-finite values.
    public var scanSeconds = 0.0
    /// The gradient allreduce of the flat buffer and its 1/p scaling: the exposed communication (with buckets
    /// overlapped with the backward, only the wait for them after it).
    public var allreduceSeconds = 0.0
    public var optimizerSeconds = 0.0
    /// Bytes of live tensor storage when the forward (and the loss) is done: what the graph holds for the backward.
    public var liveBytesAfterForward = 0
    /// Elements of the gradient allreduce (= trainable parameters) and their bytes on the wire.
    public var floatsReduced = 0
    public var wire: GradientWireType = .fp32
    public var bytesReduced: Int { floatsReduced * wire.bytesPerElement }
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case nonFinite(step: Int, ranks: [Int], tensors: [String])
    case halfOverflow(step: Int, wire: GradientWireType)
    case configuration(String)

    public var description: String {
        switch self {
        case let .nonFinite(step, ranks, tensors):
            return "step \(step): non-finite values on rank(s) \(ranks.map(String.init).joined(separator: ", ")) in \(tensors.joined(separator: "; "))"
        case let .halfOverflow(step, wire):
            return "step \(step): the \(wire.rawValue) gradient allreduce overflowed (a mean gradient beyond \(wire == .fp16 ? "65504" : "the float range")); train with --grad-dtype fp32 or bf16"
        case let .configuration(message):
            return message
        }
    }
}

/// Data-parallel training of the trainable part of a model over MPI ranks.
///
/// Every rank holds the whole model. Per step each rank runs forward and backward on its part of the global batch
/// (the loss is the mean over its local samples), the trainable gradients (one flat buffer: `ParameterStore`
/// keeps them contiguous) are summed in place by one allreduce and divided by the number of ranks, which gives the
/// gradient of the global-batch mean, and every rank applies the same AdamW update, so replicas stay identical.
/// Frozen tensors are never reduced. With synchronised batch norm, p ranks compute the same update as one rank
/// with the same global batch (up to the order of float sums).
public final class Trainer {
    public let model: AdaptedIPT
    public let comm: Communicator
    public let optimizer: AdamW
    public let schedule: MultiStepLR
    /// IPT task (head, query, tail) of the next step; multi-task pre-training changes it per step.
    public var task: Int
    public let globalBatch: Int
    public let syncBatchNorm: CommBatchNormReducer?
    /// Optimisation steps done (the next step's index).
    public internal(set) var step = 0
    /// How the gradient buffer travels in the allreduce (fp32, or fp16/bf16 with fp32 sums on each rank).
    public var gradWire: GradientWireType = .fp32 { didSet { reducer = nil } }
    /// Bytes of fp32 gradient per bucket of the allreduce overlapped with the backward (`BucketedReducer`, as
    /// PyTorch DDP's `bucket_cap_mb`); 0: one blocking allreduce of the whole buffer after the backward.
    public var bucketBytes = 0 { didSet { reducer = nil } }
    /// Called with the loss after the forward of each step, before the backward (memory accounting in `bench step`).
    public var afterForward: ((Tensor) -> Void)?
    private var wireScratch: [UInt16] = []
    private var reducer: BucketedReducer?

    public init(model: AdaptedIPT, comm: Communicator, task: Int, globalBatch: Int, totalSteps: Int,
                lr: Float = 1e-4, weightDecay: Float = 0.01, milestones: [Double] = [0.5, 0.8, 0.9, 0.95],
                gamma: Float = 0.5, syncBatchNorm sync: Bool = true) throws {
        guard globalBatch > 0, globalBatch % comm.size == 0 else {
            throw TrainingError.configuration("global batch \(globalBatch) is not a positive multiple of the \(comm.size) ranks")
        }
        guard model.store.trainableCount > 0 else {
            throw TrainingError.configuration("method '\(model.choice.name)' has no trainable parameters")
        }
        self.model = model
        self.comm = comm
        self.task = task
        self.globalBatch = globalBatch
        optimizer = AdamW(count: model.store.trainableCount, lr: lr, weightDecay: weightDecay)
        schedule = MultiStepLR(base: lr, totalSteps: totalSteps, fractions: milestones, gamma: gamma)
        syncBatchNorm = sync && comm.size > 1 ? CommBatchNormReducer(comm: comm) : nil
        model.method.reducer = self.syncBatchNorm
    }

    /// Samples per rank per step.
    public var localBatch: Int { globalBatch / comm.size }

    /// Makes every rank start from rank 0's trainable weights, running statistics and optimizer state (after a
    /// fresh initialisation or a resume on rank 0), as DDP and Horovod broadcast at start.
    public func broadcastState(root: Int = 0) throws {
        let s = model.store
        try comm.broadcast(UnsafeMutableBufferPointer(start: s.trainable.base, count: s.trainable.count), root: root)
        try comm.broadcast(UnsafeMutableBufferPointer(start: s.buffers.base, count: s.buffers.count), root: root)
        try comm.broadcast(optimizer.expAvg, root: root)
        try comm.broadcast(optimizer.expAvgSq, root: root)
        optimizer.stepCount = Int(try comm.broadcast(Int64(optimizer.stepCount), root: root))
        step = Int(try comm.broadcast(Int64(step), root: root))
    }

    /// One optimisation step on this rank's `localBatch` samples: lq [b, 3, 48, 48], gt [b, 3, 48s, 48s].
    @discardableResult
    public func trainStep(lq: Tensor, gt: Tensor) throws -> StepStats {
        precondition(lq.shape.first == localBatch && gt.shape.first == localBatch,
                     "trainStep: batches \(lq.shape) / \(gt.shape) for a local batch of \(localBatch)")
        let store = model.store
        var stats = StepStats(step: step, loss: 0, lr: schedule.rate(at: step), floatsReduced: store.trainableCount, wire: gradWire)
        model.training = true
        store.zeroGrad()

        var t = monotonicSeconds()
        let loss = l1Loss(model(lq, task: task), gt)
        stats.forwardSeconds = monotonicSeconds() - t
        stats.liveBytesAfterForward = TensorMemory.liveBytes
        afterForward?(loss)
        // Made on first use, dropped when the wire or the bucket size changes (their didSet).
        if bucketBytes > 0 && comm.size > 1 && reducer == nil {
            reducer = BucketedReducer(store: store, comm: comm, wire: gradWire, capBytes: bucketBytes)
        }
        let overlap = reducer
        t = monotonicSeconds()
        if let overlap {
            overlap.begin()
            loss.backward(leafReady: overlap.tensorReady)
        } else {
            loss.backward()
        }
        stats.backwardSeconds = monotonicSeconds() - t

        // Loss and a non-finite flag in one small collective; a NaN anywhere stops every rank at the same step.
        // With buckets, each bucket was scanned when its allreduce started.
        t = monotonicSeconds()
        let localLoss = Double(loss.item)
        let badTensor = overlap.map { o in loss.item.isFinite ? o.firstNonFinite : "loss (\(loss.item))" } ?? firstNonFinite(loss: loss.item)
        stats.scanSeconds = overlap?.scanSeconds ?? monotonicSeconds() - t
        t = monotonicSeconds()
        var summary: [Double] = [localLoss, badTensor == nil ? 0 : 1]
        try summary.withUnsafeMutableBufferPointer { try comm.allreduceSum($0) }
        stats.waitSeconds = monotonicSeconds() - t
        if summary[1] > 0 {
            _ = try overlap?.finish()   // complete the outstanding bucket allreduces before giving up the step
            let names = try comm.allgather(badTensor ?? "")
            let ranks = names.indices.filter { !names[$0].isEmpty }
            throw TrainingError.nonFinite(step: step, ranks: ranks, tensors: ranks.map { "rank \($0): \(names[$0])" })
        }
        stats.loss = summary[0] / Double(comm.size)
        t = monotonicSeconds()
        let grads = UnsafeMutableBufferPointer(start: store.trainableGrad.base, count: store.trainableCount)
        let finite = try overlap?.finish() ?? comm.allreduceMean(grads, wire: gradWire, scratch: &wireScratch)
        stats.allreduceSeconds = monotonicSeconds() - t
        if !finite { throw TrainingError.halfOverflow(step: step, wire: gradWire) }

        t = monotonicSeconds()
        optimizer.lr = stats.lr
        optimizer.step(params: store.trainable.base, grads: store.trainableGrad.base)
        stats.optimizerSeconds = monotonicSeconds() - t
        step += 1
        return stats
    }

    /// The name of the first non-finite quantity of this rank's step (the loss, or a trainable gradient).
    private func firstNonFinite(loss: Float) -> String? {
        if !loss.isFinite { return "loss (\(loss))" }
        let s = model.store
        for spec in s.specs where s.isTrainable(spec.key) {
            if let g = s[spec.key].grad, !g.allFinite() { return "gradient of \(spec.key)" }
        }
        return nil
    }
}
