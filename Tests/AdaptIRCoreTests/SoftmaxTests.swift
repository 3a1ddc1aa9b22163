import XCTest
import AdaptIRCore

final class SoftmaxTests: XCTestCase {
    private func naiveSoftmax(_ x: Tensor, axis: Int) -> [Float] {
        let len = x.shape[axis]
        let inner = x.shape[(axis + 1)...].reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
        var out = [Float](repeating: 0, count: x.count)
        for o in 0..<outer { for i in 0..<inner {
            let idx = (0..<len).map { o * len * inner + $0 * inner + i }
            let m = idx.map { Double(x.data[$0]) }.max()!
            let e = idx.map { exp(Double(x.data[$0]) - m) }
            let s = e.reduce(0, +)
            for (k, j) in idx.enumerated() { out[j] = Float(e[k] / s) }
        } }
        return out
    }

    func testForwardEveryAxis() {
        var rng = TestRNG(seed: 1)
        let x = rng.tensor([2, 3, 4, 5], -3, 3)
        for axis in 0..<4 {
            XCTAssertLessThan(relErr(softmax(x, axis: axis).toArray(), naiveSoftmax(x, axis: axis)), 1e-6)
        }
        XCTAssertEqual(softmax(x, axis: -1).toArray(), softmax(x, axis: 3).toArray())
    }

    func testRowsSumToOneAndStable() {
        let x = Tensor(shape: [2, 3], [1000, 1001, 1002, -1000, 0, 1000])
        let y = softmax(x, axis: 1)
        XCTAssertTrue(y.allFinite())
        let v = y.toArray()
        XCTAssertEqual(v[0] + v[1] + v[2], 1, accuracy: 1e-6)
        XCTAssertEqual(v[3] + v[4] + v[5], 1, accuracy: 1e-6)
        XCTAssertEqual(v[2], Float(1 / (1 + exp(-1.0) + exp(-2.0))), accuracy: 1e-6)
        XCTAssertEqual(v[5], 1, accuracy: 1e-6)
        // Columns (axis 0, inner > 1) too.
        let c = softmax(Tensor(shape: [2, 2], [1000, -5, 999, 5]), axis: 0).toArray()
        XCTAssertTrue(c.allSatisfy { $0.isFinite })
        XCTAssertEqual(c[0] + c[2], 1, accuracy: 1e-6)
        XCTAssertEqual(c[1] + c[3], 1, accuracy: 1e-6)
    }

    /// Small probabilities are accurate relatively too (checks the exp used inside) down to e^-80; below that
    /// they are exactly 0, so no probability is ever a denormal (which would slow the attention products).
    func testSmallProbabilitiesRelativeAccuracy() {
        let ds = (0..<2000).map { Float($0) * 0.0435 }          // 0 ... 87
        let x = Tensor(shape: [ds.count, 2], ds.flatMap { [0, -$0] })
        let y = softmax(x, axis: 1)
        let yc = softmax(Tensor(shape: [2, ds.count], ds.map { _ in Float(0) } + ds.map { -$0 }), axis: 0)
        for (i, d) in ds.enumerated() {
            let e = exp(-Double(d)), ref = d > 80 ? 0 : e / (1 + e)
            XCTAssertEqual(Double(y[flat: 2 * i + 1]), ref, accuracy: 1e-6 * ref, "d = \(d)")
            XCTAssertEqual(Double(y[flat: 2 * i]), 1 - ref, accuracy: 1e-6)
            XCTAssertEqual(Double(yc[flat: ds.count + i]), ref, accuracy: 1e-6 * ref, "d = \(d)")
            XCTAssertTrue(y[flat: 2 * i + 1] == 0 || y[flat: 2 * i + 1].isNormal, "d = \(d): denormal probability")
        }
    }

    func testGradients() {
        var rng = TestRNG(seed: 2)
        checkGradients([rng.tensor([3, 7], -2, 2)]) { softmax($0[0], axis: 1) }
        checkGradients([rng.tensor([2, 4, 3], -2, 2)]) { softmax($0[0], axis: 1) }
        checkGradients([rng.tensor([4, 2, 3], -2, 2)]) { softmax($0[0], axis: 0) }
        checkGradients([rng.tensor([2, 1, 4, 4], -2, 2)]) { softmax(reshape($0[0], [2, 16]), axis: -1) }
    }
}
