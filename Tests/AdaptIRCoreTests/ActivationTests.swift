import XCTest
import AdaptIRCore

final class ActivationTests: XCTestCase {
    /// Values at least 0.1 away from 0, so finite differences never straddle a kink.
    private func awayFromZero(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = TestRNG(seed: seed)
        return Tensor(shape: shape, (0..<shape.product).map { _ in
            let m = rng.uniform(0.1, 2)
            return rng.uniform() < 0 ? -m : m
        })
    }

    func testReluForwardAndGradient() {
        let x = Tensor(shape: [5], [-2, -0.5, 0, 0.5, 3])
        XCTAssertEqual(relu(x).toArray(), [0, 0, 0, 0.5, 3])
        checkGradients([awayFromZero([3, 7], seed: 1)]) { relu($0[0]) }
    }

    func testReluGradientAtZeroIsZero() {
        let x = Tensor(shape: [3], [0, 1, -1]).requiringGrad()
        relu(x).backward(seed: Tensor(shape: [3], repeating: 1))
        XCTAssertEqual(x.grad!.toArray(), [0, 1, 0])
    }

    func testGeluKnownValues() {
        let x = Tensor(shape: [6], [1, -0.5, 3, 0, -3, 0.25])
        let y = gelu(x).toArray()
        // Exact erf GELU (PyTorch default) values, computed in double precision.
        let ref: [Float] = [0.8413447460685429, -0.15426876936299344, 2.99595030590511, 0,
                            -0.00404969409489031, 0.14967658142073093]
        for i in 0..<6 { XCTAssertEqual(y[i], ref[i], accuracy: 1e-6, "gelu(\(x.data[i]))") }
        // Dense grid against the double-precision formula: within a few float ulps everywhere.
        let grid = Tensor(shape: [2401], (0..<2401).map { Float($0 - 1200) / 200 })
        let g = gelu(grid)
        for i in 0..<grid.count {
            let v = Double(grid.data[i])
            let r = 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
            XCTAssertEqual(Double(g.data[i]), r, accuracy: 1e-6 * max(1, Swift.abs(r)), "gelu(\(v))")
        }
    }

    func testGeluGradient() {
        var rng = TestRNG(seed: 2)
        checkGradients([rng.tensor([4, 6], -3, 3)]) { gelu($0[0]) }
        // Derivative against Phi(x) + x phi(x) in double precision at a few points.
        let x = Tensor(shape: [4], [-1.5, 0, 0.7, 2.2]).requiringGrad()
        gelu(x).backward(seed: Tensor(shape: [4], repeating: 1))
        for i in 0..<4 {
            let v = Double(x.data[i])
            let d = 0.5 * (1 + erf(v / 2.0.squareRoot())) + v * exp(-0.5 * v * v) / (2 * Double.pi).squareRoot()
            XCTAssertEqual(Double(x.grad!.data[i]), d, accuracy: 1e-6)
        }
    }

    func testSigmoid() {
        let x = Tensor(shape: [5], [0, 2, -2, 100, -100])
        let y = sigmoid(x).toArray()
        XCTAssertEqual(y[0], 0.5)
        XCTAssertEqual(y[1], Float(1 / (1 + exp(-2.0))), accuracy: 1e-7)
        XCTAssertEqual(y[2], Float(1 / (1 + exp(2.0))), accuracy: 1e-7)
        XCTAssertEqual(y[3], 1)
        XCTAssertEqual(y[4], 0, accuracy: 1e-30)
        XCTAssertTrue(sigmoid(x).allFinite())
        var rng = TestRNG(seed: 3)
        checkGradients([rng.tensor([3, 5], -4, 4)]) { sigmoid($0[0]) }
    }

    func testAbsolute() {
        let x = Tensor(shape: [4], [-2, 0, 1.5, -0.25])
        XCTAssertEqual(absolute(x).toArray(), [2, 0, 1.5, 0.25])
        checkGradients([awayFromZero([3, 7], seed: 4)]) { absolute($0[0]) }
    }

    func testAbsoluteGradientAtZeroIsZero() {
        let x = Tensor(shape: [3], [0, 2, -2]).requiringGrad()
        absolute(x).backward(seed: Tensor(shape: [3], [5, 5, 5]))
        XCTAssertEqual(x.grad!.toArray(), [0, 5, -5])
    }
}
