import XCTest
import AdaptIRCore

/// The first gradient a tensor receives is stored into fresh, uninitialized storage (`Tensor.gradForOverwrite`);
/// every later one is added. An input read by two uses of the same op must get exactly twice one use's gradient,
/// and a gradient that already holds values must keep them.
final class GradAccumulationTests: XCTestCase {
    private func gradient(_ x: Tensor, uses: Int, _ op: (Tensor) -> Tensor, seed: Tensor) -> [Float] {
        let xi = x.copy()
        xi.setRequiresGrad(true)
        var y = op(xi)
        for _ in 1..<uses { y = y + op(xi) }
        y.backward(seed: seed)
        return xi.grad!.toArray()
    }

    func testSecondUseAddsToTheFirstUsesGradient() {
        var rng = TestRNG(seed: 81)
        let image = rng.tensor([2, 8, 6, 19]), rows = rng.tensor([5, 12])
        let lnW = rng.tensor([12]), lnB = rng.tensor([12]), toFewer = rng.tensor([3, 8, 3, 3]), other = rng.tensor([2, 8, 6, 19])
        let cases: [(String, Tensor, (Tensor) -> Tensor)] = [
            ("scale", image, { scale($0, 0.7) }),
            ("add", image, { $0 + other }),
            ("sub (second operand)", image, { other - $0 }),
            ("mul", image, { $0 * other }),
            ("add, broadcast operand", rng.tensor([1, 8, 1, 1]), { image + $0 }),
            ("pixelShuffle 2", image, { pixelShuffle($0, 2) }),
            ("pixelShuffle 2, wide rows", rng.tensor([1, 4, 3, 21]), { pixelShuffle($0, 2) }),
            ("unfold", rng.tensor([2, 2, 6, 9]), { unfold($0, patch: 3) }),
            ("fold", rng.tensor([2, 6, 18]), { fold($0, channels: 2, height: 6, width: 9, patch: 3) }),
            ("layerNorm", rows, { layerNorm($0, weight: lnW, bias: lnB) }),
            ("conv to fewer channels", image, { conv2d($0, toFewer) }),
            ("l1Loss", image, { l1Loss($0, other) }),
        ]
        for (name, x, op) in cases {
            let shape = op(x).shape
            let seed = rng.tensor(shape)
            let once = gradient(x, uses: 1, op, seed: seed)
            let twice = gradient(x, uses: 2, op, seed: seed)
            if name.contains("broadcast") {
                // A reduction over the broadcast dim: r0 + r1 + r0 + r1 rounds differently from 2 (r0 + r1).
                let scale = once.map { abs($0) }.max()!
                XCTAssertLessThan(zip(twice, once).map { abs($0 - 2 * $1) }.max()!, 1e-6 * scale, name)
            } else {
                XCTAssertEqual(twice, once.map { 2 * $0 }, name)
            }
            XCTAssertTrue(once.contains { $0 != 0 }, "\(name): a zero gradient proves nothing")
        }
    }

    /// a + a: the second parent is the first, whose gradient the first half of the backward just stored.
    func testSameTensorAsBothOperands() {
        var rng = TestRNG(seed: 82)
        let x = rng.tensor([3, 40000], requiresGrad: true)
        let g = rng.tensor([3, 40000])
        (x + x).backward(seed: g)
        XCTAssertEqual(x.grad!.toArray(), g.toArray().map { 2 * $0 })
        let y = rng.tensor([3, 40000], requiresGrad: true)
        (y * y).backward(seed: g)
        XCTAssertEqual(y.grad!.toArray(), zip(g.toArray(), y.toArray()).map { $0 * $1 + $0 * $1 })
    }
}
