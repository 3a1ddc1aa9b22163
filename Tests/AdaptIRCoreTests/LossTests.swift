import XCTest
import AdaptIRCore

final class LossTests: XCTestCase {
    func testForward() {
        let p = Tensor(shape: [2, 2], [1, 2, 3, 4]), t = Tensor(shape: [2, 2], [0, 2, 5, 3.5])
        let l = l1Loss(p, t)
        XCTAssertEqual(l.shape, [])
        XCTAssertEqual(l.toArray()[0], (1 + 0 + 2 + 0.5) / 4, accuracy: 1e-7)
    }

    func testGradients() {
        var rng = TestRNG(seed: 1)
        // Keep |p - t| >= 0.1 so finite differences never cross the kink.
        let t = rng.tensor([2, 3, 4])
        let p = Tensor(shape: t.shape, t.toArray().map { v in
            let d = rng.uniform(0.1, 1)
            return rng.uniform() < 0 ? v - d : v + d
        })
        checkGradients([p, t]) { l1Loss($0[0], $0[1]) }
    }

    func testGradientIsSignOverCountAndZeroWhereEqual() {
        let p = Tensor(shape: [4], [1, 2, 3, 4]).requiringGrad()
        let t = Tensor(shape: [4], [0, 2, 5, 4]).requiringGrad()
        l1Loss(p, t).backward()
        XCTAssertEqual(p.grad!.toArray(), [0.25, 0, -0.25, 0])
        XCTAssertEqual(t.grad!.toArray(), [-0.25, 0, 0.25, 0])
    }

    func testFrozenTargetGetsNoGradient() {
        let p = Tensor(shape: [2], [1, 2]).requiringGrad(), t = Tensor(shape: [2], [0, 3])
        l1Loss(p, t).backward()
        XCTAssertNil(t.grad)
        XCTAssertEqual(p.grad!.toArray(), [0.5, -0.5])
    }
}
