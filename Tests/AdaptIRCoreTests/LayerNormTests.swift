import XCTest
import AdaptIRCore

final class LayerNormTests: XCTestCase {
    func testForwardHandComputed() {
        // Row [1, 2, 3, 4]: mean 2.5, biased var 1.25.
        let x = Tensor(shape: [2, 4], [1, 2, 3, 4, -1, -1, -1, -1])
        let w = Tensor(shape: [4], [1, 2, 0.5, -1]), b = Tensor(shape: [4], [0, 1, 0, 0.5])
        let y = layerNorm(x, weight: w, bias: b).toArray()
        let rstd = 1 / (1.25 + 1e-5).squareRoot()
        let expected0 = [-1.5 * rstd * 1, -0.5 * rstd * 2 + 1, 0.5 * rstd * 0.5, 1.5 * rstd * -1 + 0.5]
        for i in 0..<4 { XCTAssertEqual(Double(y[i]), expected0[i], accuracy: 1e-5) }
        // A constant row normalises to 0, so the output is the bias.
        XCTAssertEqual(Array(y[4..<8]), [0, 1, 0, 0.5])
    }

    func testForwardMatchesNaiveDouble() {
        var rng = TestRNG(seed: 11)
        let x = rng.tensor([3, 5, 7], -3, 5), w = rng.tensor([7]), b = rng.tensor([7])
        let y = layerNorm(x, weight: w, bias: b, eps: 1e-5).toArray()
        let xs = x.toArray()
        for r in 0..<15 {
            let row = xs[(r * 7)..<(r * 7 + 7)].map(Double.init)
            let mean = row.reduce(0, +) / 7
            let v = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 7
            for i in 0..<7 {
                let e = (row[i] - mean) / (v + 1e-5).squareRoot() * Double(w.data[i]) + Double(b.data[i])
                XCTAssertEqual(Double(y[r * 7 + i]), e, accuracy: 1e-5)
            }
        }
    }

    func testGradients() {
        var rng = TestRNG(seed: 12)
        checkGradients([rng.tensor([2, 3, 6]), rng.tensor([6], 0.5, 1.5), rng.tensor([6])]) {
            layerNorm($0[0], weight: $0[1], bias: $0[2])
        }
    }

    func testFrozenAffineStillPassesInputGradient() {
        var rng = TestRNG(seed: 13)
        let x = rng.tensor([3, 4], requiresGrad: true), w = rng.tensor([4]), b = rng.tensor([4])
        layerNorm(x, weight: w, bias: b).backward(seed: rng.tensor([3, 4]))
        XCTAssertNil(w.grad)
        XCTAssertNil(b.grad)
        XCTAssertNotNil(x.grad)
    }
}
