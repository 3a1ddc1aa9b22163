import XCTest
import AdaptIRCore

final class AdamWTests: XCTestCase {
    /// torch.optim.AdamW's single-tensor update, in Double.
    private func reference(p0: [Double], grads: [[Double]], lr: Double, b1: Double, b2: Double, eps: Double,
                           wd: Double) -> (p: [Double], m: [Double], v: [Double]) {
        var p = p0, m = [Double](repeating: 0, count: p0.count), v = m
        for (t, g) in grads.enumerated() {
            let step = Double(t + 1)
            let bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step)
            for i in 0..<p.count {
                p[i] *= 1 - lr * wd
                m[i] = b1 * m[i] + (1 - b1) * g[i]
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                let denom = v[i].squareRoot() / bc2.squareRoot() + eps
                p[i] -= lr / bc1 * m[i] / denom
            }
        }
        return (p, m, v)
    }

    func testThreeStepsMatchTorchFormula() {
        let p0: [Float] = [0.5, -1.25, 2.0, 0.0, 3.5, -0.01]
        let grads: [[Float]] = [
            [0.1, -0.2, 0.3, 0.0, 1.5, -0.001],
            [-0.05, 0.4, 0.25, 1e-4, -2.0, 0.002],
            [0.2, 0.1, -0.3, -1e-3, 0.5, 0.0],
        ]
        for (lr, wd) in [(Float(1e-4), Float(0.01)), (Float(0.1), Float(0.5))] {
            let opt = AdamW(count: p0.count, lr: lr, betas: (0.9, 0.999), eps: 1e-8, weightDecay: wd)
            var p = p0
            for g in grads {
                p.withUnsafeMutableBufferPointer { pp in
                    g.withUnsafeBufferPointer { gp in opt.step(params: pp.baseAddress!, grads: gp.baseAddress!) }
                }
            }
            XCTAssertEqual(opt.stepCount, 3)
            let ref = reference(p0: p0.map(Double.init), grads: grads.map { $0.map(Double.init) },
                                lr: Double(lr), b1: 0.9, b2: 0.999, eps: 1e-8, wd: Double(wd))
            for i in 0..<p0.count {
                XCTAssertEqual(Double(p[i]), ref.p[i], accuracy: 1e-6 * max(1, abs(ref.p[i])), "p[\(i)] lr \(lr)")
                XCTAssertEqual(Double(opt.expAvg.data[i]), ref.m[i], accuracy: 1e-6, "m[\(i)]")
                XCTAssertEqual(Double(opt.expAvgSq.data[i]), ref.v[i], accuracy: 1e-7, "v[\(i)]")
            }
        }
    }

    func testFirstStepMovesByLrTimesSign() {
        // With bias correction the first update is lr * g / (|g| + eps') ~ lr * sign(g), plus decay.
        let opt = AdamW(count: 2, lr: 1e-4, weightDecay: 0.01)
        let p = Tensor(shape: [2], [1, -2]), g = Tensor(shape: [2], [3, -0.5])
        opt.step(params: p, grads: g)
        XCTAssertEqual(p.data[0], 1 * (1 - 1e-6) - 1e-4, accuracy: 1e-7)
        XCTAssertEqual(p.data[1], -2 * (1 - 1e-6) + 1e-4, accuracy: 1e-7)
    }
}
