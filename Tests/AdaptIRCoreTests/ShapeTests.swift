import XCTest
import AdaptIRCore

final class ShapeTests: XCTestCase {
    func testReshapeSharesStorageAndInfers() {
        let x = Tensor(shape: [2, 6], (0..<12).map(Float.init))
        let y = reshape(x, [3, -1])
        XCTAssertEqual(y.shape, [3, 4])
        XCTAssertTrue(y.buffer === x.buffer)
        XCTAssertEqual(y.offset, x.offset)
        x.data[5] = 42
        XCTAssertEqual(y.data[5], 42)
        XCTAssertEqual(reshape(x, [-1]).shape, [12])
        XCTAssertEqual(reshape(x, [2, 1, 3, 2]).shape, [2, 1, 3, 2])
    }

    func testReshapeGradient() {
        var rng = TestRNG(seed: 1)
        checkGradients([rng.tensor([2, 3, 4])]) { reshape($0[0], [4, -1]) }
        // Two uses of the same input accumulate.
        checkGradients([rng.tensor([2, 6])]) { add(reshape($0[0], [12]), reshape($0[0], [3, 4]).flatView()) }
    }

    /// y[i] = x[j] where j[perm[k]] = i[k].
    private func naivePermute(_ x: Tensor, _ perm: [Int]) -> [Float] {
        let r = x.rank
        let outShape = perm.map { x.shape[$0] }
        var xStrides = [Int](repeating: 1, count: r)
        for i in stride(from: r - 2, through: 0, by: -1) { xStrides[i] = xStrides[i + 1] * x.shape[i + 1] }
        var out: [Float] = []
        for flat in 0..<x.count {
            var rem = flat, src = 0
            for k in stride(from: r - 1, through: 0, by: -1) {
                let i = rem % outShape[k]; rem /= outShape[k]
                src += i * xStrides[perm[k]]
            }
            out.append(x.data[src])
        }
        return out
    }

    let cases: [([Int], [Int])] = [
        ([3, 5], [1, 0]),
        ([40, 37], [1, 0]),                 // tiles with ragged edges
        ([2, 3, 4], [0, 2, 1]),             // (N, L, d) -> (N, d, L)
        ([2, 35, 33], [0, 2, 1]),           // same, several tiles
        ([2, 3, 4], [2, 0, 1]),
        ([2, 3, 4], [1, 0, 2]),             // row copies
        ([2, 3, 4], [0, 1, 2]),             // identity
        ([4, 4, 2, 5], [2, 3, 0, 1]),       // tokens (16,16,N,C) -> (N,C,16,16) pattern
        ([2, 5, 16], [2, 0, 1]),            // (N,C,HW) -> (HW,N,C)
        ([5, 2, 3, 4], [1, 2, 0, 3]),       // head split (L,N,h,dh) -> (N,h,L,dh)
        ([2, 3, 4, 5], [3, 1, 2, 0]),
        ([2, 1, 3, 1], [3, 2, 1, 0]),       // size-1 axes
    ]

    func testPermuteMatchesIndexFormula() {
        var rng = TestRNG(seed: 2)
        for (shape, perm) in cases {
            let x = rng.tensor(shape)
            let y = permute(x, perm)
            XCTAssertEqual(y.shape, perm.map { shape[$0] })
            XCTAssertEqual(y.toArray(), naivePermute(x, perm), "permute \(shape) by \(perm)")
        }
        let x = rng.tensor([2, 3, 4])
        XCTAssertEqual(permute(x, [0, -1, -2]).toArray(), permute(x, [0, 2, 1]).toArray())
    }

    func testPermuteGradient() {
        var rng = TestRNG(seed: 3)
        for (shape, perm) in cases where shape.product <= 400 {
            checkGradients([rng.tensor(shape)]) { permute($0[0], perm) }
        }
    }

    func testPermuteRoundTrip() {
        var rng = TestRNG(seed: 4)
        let x = rng.tensor([3, 40, 70])
        XCTAssertEqual(permute(permute(x, [0, 2, 1]), [0, 2, 1]).toArray(), x.toArray())
    }
}

private extension Tensor {
    func flatView() -> Tensor { reshape(self, [-1]) }
}
