import XCTest
import AdaptIRCore

final class UnfoldTests: XCTestCase {
    func testHandCheckedCase() {
        // N=1, C=2, H=2, W=4, p=2: two tokens (bj = 0, 1), 8 features c*4 + ki*2 + kj.
        let x = Tensor(shape: [1, 2, 2, 4], [
            0, 1, 2, 3,
            4, 5, 6, 7,
            10, 11, 12, 13,
            14, 15, 16, 17,
        ])
        let t = unfold(x, patch: 2)
        XCTAssertEqual(t.shape, [1, 2, 8])
        XCTAssertEqual(t.toArray(), [0, 1, 4, 5, 10, 11, 14, 15,
                                     2, 3, 6, 7, 12, 13, 16, 17])
    }

    func testMatchesIndexFormula() {
        var rng = TestRNG(seed: 31)
        let (n, c, h, w, p) = (2, 3, 6, 9, 3)
        let x = rng.tensor([n, c, h, w])
        let t = unfold(x, patch: p)
        let gw = w / p, d = c * p * p
        XCTAssertEqual(t.shape, [n, (h / p) * gw, d])
        for s in 0..<n { for ch in 0..<c { for bi in 0..<(h / p) { for bj in 0..<gw { for ki in 0..<p { for kj in 0..<p {
            let l = bi * gw + bj, f = ch * p * p + ki * p + kj
            XCTAssertEqual(t.data[(s * t.shape[1] + l) * d + f], x.data[((s * c + ch) * h + bi * p + ki) * w + bj * p + kj])
        } } } } } }
    }

    func testFoldInvertsUnfold() {
        var rng = TestRNG(seed: 32)
        let x = rng.tensor([2, 3, 6, 9])
        let y = fold(unfold(x, patch: 3), channels: 3, height: 6, width: 9, patch: 3)
        XCTAssertEqual(y.shape, x.shape)
        XCTAssertEqual(y.toArray(), x.toArray())
        let t = rng.tensor([2, 6, 27])
        XCTAssertEqual(unfold(fold(t, channels: 3, height: 6, width: 9, patch: 3), patch: 3).toArray(), t.toArray())
    }

    func testGradients() {
        var rng = TestRNG(seed: 33)
        checkGradients([rng.tensor([2, 3, 4, 6])]) { unfold($0[0], patch: 2) }
        checkGradients([rng.tensor([2, 6, 12])]) { fold($0[0], channels: 3, height: 4, width: 6, patch: 2) }
    }
}
