import XCTest
import AdaptIRCore

final class ReduceTests: XCTestCase {
    /// Naive sum over `axes` of a rank-r tensor, result in kept (keepDims) order.
    private func naiveSum(_ x: Tensor, _ axes: Set<Int>) -> [Float] {
        let r = x.rank
        let kept = (0..<r).map { axes.contains($0) ? 1 : x.shape[$0] }
        var out = [Double](repeating: 0, count: kept.product)
        for flat in 0..<x.count {
            var rem = flat, o = 0, m = 1
            for k in stride(from: r - 1, through: 0, by: -1) {
                let i = rem % x.shape[k]; rem /= x.shape[k]
                o += (axes.contains(k) ? 0 : i) * m; m *= kept[k]
            }
            out[o] += Double(x.data[flat])
        }
        return out.map { Float($0) }
    }

    let cases: [([Int], [Int])] = [
        ([2, 3, 4], [0]), ([2, 3, 4], [1]), ([2, 3, 4], [2]), ([2, 3, 4], [-1]),
        ([2, 3, 4], [0, 2]), ([2, 3, 4], [1, 2]), ([2, 3, 4], [0, 1, 2]), ([2, 3, 4, 5], [2, 3]),
        ([2, 3, 4, 5], [0, 2, 3]), ([5], [0]), ([3, 1, 4], [1]),
    ]

    func testSumAndMeanMatchNaive() {
        var rng = TestRNG(seed: 1)
        for (shape, axes) in cases {
            let x = rng.tensor(shape)
            let norm = Set(axes.map { $0 < 0 ? $0 + shape.count : $0 })
            let ref = naiveSum(x, norm)
            let n = Float(norm.map { shape[$0] }.product)
            let keptShape = (0..<shape.count).map { norm.contains($0) ? 1 : shape[$0] }
            let dropShape = (0..<shape.count).filter { !norm.contains($0) }.map { shape[$0] }
            let s = sum(x, axes: axes), sk = sum(x, axes: axes, keepDims: true)
            XCTAssertEqual(s.shape, dropShape)
            XCTAssertEqual(sk.shape, keptShape)
            XCTAssertLessThan(relErr(s.toArray(), ref), 1e-6, "sum \(shape) \(axes)")
            XCTAssertLessThan(relErr(sk.toArray(), ref), 1e-6)
            XCTAssertLessThan(relErr(mean(x, axes: axes).toArray(), ref.map { $0 / n }), 1e-6, "mean \(shape) \(axes)")
        }
    }

    func testGradients() {
        var rng = TestRNG(seed: 2)
        for (shape, axes) in cases {
            checkGradients([rng.tensor(shape)]) { sum($0[0], axes: axes) }
            checkGradients([rng.tensor(shape)]) { mean($0[0], axes: axes, keepDims: true) }
        }
    }

    func testSumAllMeanAll() {
        let x = Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6])
        let s = sumAll(x), m = meanAll(x)
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(s.count, 1)
        XCTAssertEqual(s.toArray(), [21])
        XCTAssertEqual(m.toArray(), [3.5])
        var rng = TestRNG(seed: 3)
        checkGradients([rng.tensor([3, 4])]) { sumAll($0[0]) }
        checkGradients([rng.tensor([3, 4])]) { meanAll($0[0]) }
        // A scalar loss backpropagates without a seed, and scalars broadcast against anything.
        let w = rng.tensor([2, 2], requiresGrad: true)
        meanAll(w).backward()
        XCTAssertEqual(w.grad!.toArray(), [0.25, 0.25, 0.25, 0.25])
        XCTAssertEqual(mul(s, x).toArray(), x.toArray().map { $0 * 21 })
        checkGradients([rng.tensor([3]), rng.tensor([2, 3])]) { mul(sumAll($0[0]), $0[1]) }
    }
}
