/// Synchronised batch norm across data-parallel ranks: sums the per-channel statistics of every adapter batch norm
/// over all ranks (forward: sum x, sum x^2, count; backward: sum dy, sum dy * xhat), so p ranks normalise with the
/// statistics of the global batch, exactly as one rank would (torch.nn.SyncBatchNorm). Off reproduces the released
/// code, whose batch norms see only their GPU's batch.
public final class CommBatchNormReducer: BatchNormReducer {
    public let comm: Communicator
    /// Doubles reduced so far (statistics traffic, for the logs).
    public private(set) var valuesReduced = 0

    public init(comm: Communicator) { self.comm = comm }

    public func sum(_ values: UnsafeMutableBufferPointer<Double>) {
        valuesReduced += values.count
        do {
            try comm.allreduceSum(values)
        } catch {
            // Inside a forward or backward there is no way to unwind cleanly on every rank: end the whole job.
            FileHandle.standardError.write(Data("rank \(comm.rank): synchronised batch norm: \(error)\n".utf8))
            comm.abort(code: 3)
        }
    }
}

import Foundation
