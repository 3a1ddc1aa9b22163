import XCTest
import AdaptIRCore

final class PixelShuffleTests: XCTestCase {
    func testForwardMatchesFormula() {
        var rng = TestRNG(seed: 21)
        for r in [2, 3] {
            let (n, c, h, w) = (2, 3, 2, 3)
            let x = rng.tensor([n, c * r * r, h, w])
            let y = pixelShuffle(x, r)
            XCTAssertEqual(y.shape, [n, c, h * r, w * r])
            for s in 0..<n { for ch in 0..<c { for hh in 0..<h { for ww in 0..<w { for i in 0..<r { for j in 0..<r {
                let src = x.data[((s * c * r * r + ch * r * r + i * r + j) * h + hh) * w + ww]
                let dst = y.data[((s * c + ch) * h * r + hh * r + i) * w * r + ww * r + j]
                XCTAssertEqual(dst, src)
            } } } } } }
        }
    }

    /// Rows wider than 8 (the factor-2 path interleaves 8 floats at a time, then the rest): forward and the
    /// accumulating backward element by element.
    func testFactorTwoWideRowsForwardAndBackward() {
        var rng = TestRNG(seed: 23)
        let (n, c, h, w) = (2, 3, 3, 19)
        let x = rng.tensor([n, c * 4, h, w], requiresGrad: true)
        let y = pixelShuffle(x, 2)
        let g = rng.tensor(y.shape)
        y.backward(seed: g)
        for s in 0..<n { for ch in 0..<c { for hh in 0..<h { for ww in 0..<w { for i in 0..<2 { for j in 0..<2 {
            let xi = ((s * c * 4 + ch * 4 + i * 2 + j) * h + hh) * w + ww
            let yi = ((s * c + ch) * h * 2 + hh * 2 + i) * w * 2 + ww * 2 + j
            XCTAssertEqual(y.data[yi], x.data[xi])
            XCTAssertEqual(x.grad!.data[xi], g.data[yi])
        } } } } } }
    }

    func testHandCheckedCase() {
        // One output channel, r = 2, 1x1 input: the 4 input channels become the 2x2 block in row-major order.
        let x = Tensor(shape: [1, 4, 1, 1], [1, 2, 3, 4])
        XCTAssertEqual(pixelShuffle(x, 2).toArray(), [1, 2, 3, 4])
        // 1x2 input: channel k holds (k, 10+k); output rows are [c0 c1 | c0' c1'], [c2 c3 | c2' c3'].
        let x2 = Tensor(shape: [1, 4, 1, 2], [0, 10, 1, 11, 2, 12, 3, 13])
        XCTAssertEqual(pixelShuffle(x2, 2).toArray(), [0, 1, 10, 11, 2, 3, 12, 13])
    }

    func testGradients() {
        var rng = TestRNG(seed: 22)
        checkGradients([rng.tensor([2, 8, 2, 3])]) { pixelShuffle($0[0], 2) }
        checkGradients([rng.tensor([2, 9, 2, 2])]) { pixelShuffle($0[0], 3) }
    }
}
