import XCTest
import Foundation
import AdaptIRCore

/// In-process stand-in for an MPI all-reduce between 2 "ranks" running on 2 threads in lock-step.
final class ThreadAllReduce: @unchecked Sendable {
    private let cond = NSCondition()
    private var slots: [[Double]] = [[], []]
    private var result: [Double] = []
    private var arrived = 0
    private var generation = 0

    func allReduce(rank: Int, _ values: UnsafeMutableBufferPointer<Double>) {
        cond.lock()
        defer { cond.unlock() }
        slots[rank] = Array(values)
        arrived += 1
        if arrived == 2 {
            precondition(slots[0].count == slots[1].count, "ranks reduce different lengths")
            result = zip(slots[0], slots[1]).map { $0 + $1 }
            arrived = 0
            generation += 1
            cond.broadcast()
        } else {
            let g = generation
            while generation == g { cond.wait() }
        }
        for i in 0..<values.count { values[i] = result[i] }
    }
}

final class RankReducer: BatchNormReducer, @unchecked Sendable {
    let rank: Int
    let comm: ThreadAllReduce
    var calls = 0
    init(rank: Int, comm: ThreadAllReduce) { self.rank = rank; self.comm = comm }
    func sum(_ values: UnsafeMutableBufferPointer<Double>) { calls += 1; comm.allReduce(rank: rank, values) }
}

final class BatchNormTests: XCTestCase {
    /// Per-channel (mean, biased var) over N, H, W in Double.
    private func channelStats(_ x: Tensor) -> [(Double, Double)] {
        let n = x.shape[0], c = x.shape[1], hw = x.shape[2] * x.shape[3]
        return (0..<c).map { ch in
            var vals: [Double] = []
            for i in 0..<n { for j in 0..<hw { vals.append(Double(x.data[(i * c + ch) * hw + j])) } }
            let m = vals.reduce(0, +) / Double(vals.count)
            return (m, vals.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(vals.count))
        }
    }

    func testTrainingForwardMatchesNaive() {
        var rng = TestRNG(seed: 21)
        let x = rng.tensor([3, 4, 2, 5], -2, 3), w = rng.tensor([4]), b = rng.tensor([4])
        let state = BatchNormState(channels: 4)
        let y = batchNorm2d(x, weight: w, bias: b, state: state, training: true)
        let stats = channelStats(x)
        for i in 0..<3 { for ch in 0..<4 { for j in 0..<10 {
            let idx = (i * 4 + ch) * 10 + j
            let e = (Double(x.data[idx]) - stats[ch].0) / (stats[ch].1 + 1e-5).squareRoot() * Double(w.data[ch]) + Double(b.data[ch])
            XCTAssertEqual(Double(y.data[idx]), e, accuracy: 1e-5)
        } } }
    }

    func testRunningStatsAfterThreeSteps() {
        var rng = TestRNG(seed: 22)
        let state = BatchNormState(channels: 3)
        XCTAssertEqual(state.runningMean.toArray(), [0, 0, 0])
        XCTAssertEqual(state.runningVar.toArray(), [1, 1, 1])
        let w = Tensor(shape: [3], repeating: 1), b = Tensor(zeros: [3])
        var rm = [Double](repeating: 0, count: 3), rv = [Double](repeating: 1, count: 3)
        for step in 0..<3 {
            let x = rng.tensor([2, 3, 3, 2], Float(step) - 1, Float(2 * step) + 1)
            _ = batchNorm2d(x, weight: w, bias: b, state: state, training: true)
            let n = 2.0 * 3 * 2
            for (ch, (m, v)) in channelStats(x).enumerated() {
                rm[ch] = 0.9 * rm[ch] + 0.1 * m
                rv[ch] = 0.9 * rv[ch] + 0.1 * v * n / (n - 1)
            }
        }
        XCTAssertEqual(state.numBatchesTracked, 3)
        for ch in 0..<3 {
            XCTAssertEqual(Double(state.runningMean.data[ch]), rm[ch], accuracy: 1e-6)
            XCTAssertEqual(Double(state.runningVar.data[ch]), rv[ch], accuracy: 1e-6)
        }
        // Eval mode uses (and does not change) the running statistics.
        let x = rng.tensor([1, 3, 2, 2])
        let y = batchNorm2d(x, weight: w, bias: b, state: state, training: false)
        XCTAssertEqual(state.numBatchesTracked, 3)
        for ch in 0..<3 { for j in 0..<4 {
            let e = (Double(x.data[ch * 4 + j]) - rm[ch]) / (rv[ch] + 1e-5).squareRoot()
            XCTAssertEqual(Double(y.data[ch * 4 + j]), e, accuracy: 1e-5)
        } }
    }

    func testTrainingGradients() {
        var rng = TestRNG(seed: 23)
        let state = BatchNormState(channels: 3)
        checkGradients([rng.tensor([2, 3, 2, 3]), rng.tensor([3], 0.5, 1.5), rng.tensor([3])]) {
            batchNorm2d($0[0], weight: $0[1], bias: $0[2], state: state, training: true)
        }
    }

    func testEvalGradients() {
        var rng = TestRNG(seed: 24)
        let state = BatchNormState(channels: 3)
        state.runningMean.copy(from: Tensor(shape: [3], [0.3, -0.2, 1.0]))
        state.runningVar.copy(from: Tensor(shape: [3], [0.5, 2.0, 1.3]))
        checkGradients([rng.tensor([2, 3, 2, 2]), rng.tensor([3]), rng.tensor([3])]) {
            batchNorm2d($0[0], weight: $0[1], bias: $0[2], state: state, training: false)
        }
        XCTAssertEqual(state.numBatchesTracked, 0)
    }

    /// Two "ranks" on two threads each hold part of the batch (2 and 3 samples); with the all-reduce hook the
    /// outputs, input gradients, summed weight gradients and running stats equal BN over the full batch of 5.
    func testSynchronisedTwoRanksMatchFullBatch() {
        var rng = TestRNG(seed: 25)
        let c = 3, hw = 4, split = 2, total = 5
        let full = rng.tensor([total, c, 2, 2], -1, 2)
        let dy = rng.tensor([total, c, 2, 2])
        let w0 = rng.tensor([c], 0.5, 1.5), b0 = rng.tensor([c])
        let steps = 2

        // Reference: the full batch on one rank.
        let fullState = BatchNormState(channels: c)
        let xf = full.copy().requiringGrad(), wf = w0.copy().requiringGrad(), bf = b0.copy().requiringGrad()
        var yFull: [Float] = []
        for _ in 0..<steps {
            let y = batchNorm2d(xf, weight: wf, bias: bf, state: fullState, training: true)
            yFull = y.toArray()
            y.backward(seed: dy)
        }

        let comm = ThreadAllReduce()
        final class RankResult: @unchecked Sendable {
            var y: [Float] = [], dx: [Float] = [], dw: [Float] = [], db: [Float] = []
            var state: BatchNormState? = nil
            var calls = 0
        }
        let results = [RankResult(), RankResult()]
        let done = DispatchSemaphore(value: 0)
        for rank in 0..<2 {
            let lo = rank == 0 ? 0 : split, hi = rank == 0 ? split : total
            let per = c * hw
            let x = Tensor(shape: [hi - lo, c, 2, 2], Array(full.toArray()[(lo * per)..<(hi * per)])).requiringGrad()
            let seed = Tensor(shape: [hi - lo, c, 2, 2], Array(dy.toArray()[(lo * per)..<(hi * per)]))
            let w = w0.copy().requiringGrad(), b = b0.copy().requiringGrad()
            let out = results[rank]
            Thread {
                let state = BatchNormState(channels: c)
                let reducer = RankReducer(rank: rank, comm: comm)
                for _ in 0..<steps {
                    let y = batchNorm2d(x, weight: w, bias: b, state: state, training: true, reducer: reducer)
                    out.y = y.toArray()
                    y.backward(seed: seed)
                }
                out.dx = x.grad!.toArray(); out.dw = w.grad!.toArray(); out.db = b.grad!.toArray()
                out.state = state
                out.calls = reducer.calls
                done.signal()
            }.start()
        }
        done.wait()
        done.wait()

        XCTAssertEqual(results[0].calls, 2 * steps)
        XCTAssertLessThan(relErr(results[0].y + results[1].y, yFull), 1e-5)
        XCTAssertLessThan(relErr(results[0].dx + results[1].dx, xf.grad!.toArray()), 1e-5)
        XCTAssertLessThan(relErr(zip(results[0].dw, results[1].dw).map { $0 + $1 }, wf.grad!.toArray()), 1e-5)
        XCTAssertLessThan(relErr(zip(results[0].db, results[1].db).map { $0 + $1 }, bf.grad!.toArray()), 1e-5)
        for r in results {
            XCTAssertEqual(r.state!.numBatchesTracked, steps)
            XCTAssertLessThan(relErr(r.state!.runningMean.toArray(), fullState.runningMean.toArray()), 1e-6)
            XCTAssertLessThan(relErr(r.state!.runningVar.toArray(), fullState.runningVar.toArray()), 1e-6)
        }
        // Without the reducer the halves would differ from the full batch (sanity: the test can fail).
        let alone = batchNorm2d(Tensor(shape: [split, c, 2, 2], Array(full.toArray()[0..<(split * c * hw)])),
                                weight: w0, bias: b0, state: BatchNormState(channels: c), training: true)
        XCTAssertGreaterThan(relErr(alone.toArray(), Array(yFull[0..<(split * c * hw)])), 1e-3)
    }
}
