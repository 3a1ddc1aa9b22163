import XCTest
import AdaptIRCore

final class LinearTests: XCTestCase {
    func testForwardMatchesNaive() {
        var rng = TestRNG(seed: 1)
        let x = rng.tensor([2, 3, 5]), w = rng.tensor([4, 5]), b = rng.tensor([4])
        let y = linear(x, w, b)
        XCTAssertEqual(y.shape, [2, 3, 4])
        for r in 0..<6 { for o in 0..<4 {
            var s = b.data[o]
            for i in 0..<5 { s += x.data[r * 5 + i] * w.data[o * 5 + i] }
            XCTAssertEqual(y.data[r * 4 + o], s, accuracy: 1e-5)
        } }
    }

    func testGradients() {
        var rng = TestRNG(seed: 2)
        checkGradients([rng.tensor([3, 5]), rng.tensor([4, 5]), rng.tensor([4])]) { linear($0[0], $0[1], $0[2]) }
        checkGradients([rng.tensor([2, 3, 5]), rng.tensor([4, 5])]) { linear($0[0], $0[1]) }
    }

    func testRowBlockGradientLandsInItsRows() {
        var rng = TestRNG(seed: 3)
        checkGradients([rng.tensor([3, 4]), rng.tensor([6, 4]), rng.tensor([6])]) { linear($0[0], $0[1], $0[2], rows: 2..<4) }
        let x = rng.tensor([3, 4]), w = rng.tensor([6, 4], requiresGrad: true)
        linear(x, w, rows: 4..<6).backward(seed: Tensor(shape: [3, 2], repeating: 1))
        XCTAssertEqual(w.grad!.toArray()[0..<16].allSatisfy { $0 == 0 }, true)
        XCTAssertNotEqual(w.grad!.toArray()[16..<24].filter { $0 != 0 }.count, 0)
    }

    func testFrozenWeightGetsNoGradient() {
        var rng = TestRNG(seed: 4)
        let x = rng.tensor([3, 4], requiresGrad: true), w = rng.tensor([2, 4])
        linear(x, w).backward(seed: Tensor(shape: [3, 2], repeating: 1))
        XCTAssertNil(w.grad)
        XCTAssertNotNil(x.grad)
    }
}

final class LinearReLUTests: XCTestCase {
    func testEqualsLinearThenReLU() {
        var rng = TestRNG(seed: 21)
        let x = rng.tensor([4, 5]), w = rng.tensor([6, 5]), b = rng.tensor([6])
        XCTAssertEqual(linearReLU(x, w, b).toArray(), relu(linear(x, w, b)).toArray())
        XCTAssertEqual(linearReLU(x, w).toArray(), relu(linear(x, w)).toArray())
    }

    func testGradients() {
        var rng = TestRNG(seed: 22)
        checkGradients([rng.tensor([3, 5]), rng.tensor([4, 5]), rng.tensor([4])]) { linearReLU($0[0], $0[1], $0[2]) }
        checkGradients([rng.tensor([2, 3, 5]), rng.tensor([4, 5])]) { linearReLU($0[0], $0[1]) }
    }

    /// The FFN's memory saving: linearReLU keeps a bit mask, not its output, and a linear layer with a frozen weight
    /// never reads its input in the backward, so the hidden activation between them can be released right after
    /// the forward (FeedForwardWeights) and every gradient stays bit-identical. Sizes leave a tail after the 8-lane
    /// blocks of the mask (3 x 11 = 33 outputs per row block).
    func testFrozenSecondLayerLetsTheHiddenActivationGo() {
        var rng = TestRNG(seed: 7)
        let x0 = rng.tensor([3, 5]), w1 = rng.tensor([11, 5]), b1 = rng.tensor([11]), w2 = rng.tensor([4, 11]), seed = rng.tensor([3, 4])
        func grads(release: Bool) -> [[Float]] {
            let x = x0.copy().requiringGrad(), a1 = w1.copy().requiringGrad(), c1 = b1.copy().requiringGrad()
            let h = linearReLU(x, a1, c1)
            let y = linear(h, w2)   // frozen weight
            if release { h.releaseStorage(); XCTAssertTrue(h.isReleased) }
            y.backward(seed: seed)
            return [x.grad!.toArray(), a1.grad!.toArray(), c1.grad!.toArray()]
        }
        XCTAssertEqual(grads(release: true), grads(release: false))
        // And the same as ReLU as its own op.
        let x = x0.copy().requiringGrad()
        linear(relu(linear(x, w1, b1)), w2).backward(seed: seed)
        let reference = x.grad!.toArray()
        let x2 = x0.copy().requiringGrad()
        linear(linearReLU(x2, w1, b1), w2).backward(seed: seed)
        XCTAssertEqual(x2.grad!.toArray(), reference)
    }

    /// TensorMemory counts every buffer while it lives, and a released tensor's storage leaves the count.
    func testLiveTensorStorageIsCounted() {
        let before = TensorMemory.liveBytes
        var t: Tensor? = Tensor(zeros: [1000, 3])
        XCTAssertEqual(TensorMemory.liveBytes - before, 12_000)
        TensorMemory.resetPeak()
        let u = Tensor(zeros: [500])
        XCTAssertGreaterThanOrEqual(TensorMemory.peakBytes, before + 14_000)
        u.releaseStorage()
        XCTAssertEqual(TensorMemory.liveBytes - before, 12_000)
        t = nil
        XCTAssertEqual(TensorMemory.liveBytes, before)
        XCTAssertNil(t)
    }

    func testGradientIsZeroWhereTheOutputIsZero() {
        // Pre-activation exactly 0 (x = 0, b = 0): no gradient, as PyTorch's ReLU.
        let x = Tensor(zeros: [1, 2]).requiringGrad(), w = Tensor(shape: [1, 2], [1, 1]).requiringGrad()
        let b = Tensor(zeros: [1]).requiringGrad()
        linearReLU(x, w, b).backward(seed: Tensor(shape: [1, 1], [1]))
        XCTAssertEqual(x.grad!.toArray(), [0, 0])
        XCTAssertEqual(b.grad!.toArray(), [0])
    }
}
