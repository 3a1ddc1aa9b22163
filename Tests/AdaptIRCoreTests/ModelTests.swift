import Foundation
import XCTest
import AdaptIRCore

final class ModelTests: XCTestCase {
    private func input(_ n: Int, seed: UInt64) -> Tensor {
        var rng = TestRNG(seed: seed)
        return rng.tensor([n, 3, 48, 48], 0, 1)
    }

    /// Spec 2.4: the up-projection starts at zero, so the adapted model IS the backbone at step 0, bit for bit,
    /// in training mode (batch statistics) and in eval mode, for every task.
    func testAdaptedModelEqualsBareBackboneAtInitialisation() {
        let adapted = AdaptedIPT(preset: .tiny, method: .adaptir, seed: 5)
        let bare = AdaptedIPT(preset: .tiny, method: .frozen, seed: 5)
        let x = input(2, seed: 1)
        for training in [true, false] {
            adapted.training = training
            for task in 0..<6 {
                let a = adapted(x, task: task).toArray(), b = bare(x, task: task).toArray()
                XCTAssertEqual(a.count, b.count)
                XCTAssertTrue(zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0 == 0 && $1 == 0) },
                              "task \(task) training \(training): adapted output differs from the backbone")
            }
        }
    }

    /// Spec 2.4: with amp_fuse and pha_fuse at identity, FAM returns exactly |x| (up to FFT round-off).
    func testFrequencyAffineAtInitialisationReturnsAbsoluteValue() {
        let model = AdaptedIPT(preset: .small, method: .adaptir)
        let fam = FrequencyAffine(model.store, "body.encoder.layers.0.adaptir")
        var rng = TestRNG(seed: 2)
        let x = rng.tensor([2, 6, 16, 16], -2, 2)
        let g = fam(x)
        XCTAssertEqual(g.shape, x.shape)
        for i in 0..<x.count { XCTAssertEqual(g[flat: i], abs(x[flat: i]), accuracy: 2e-6) }
    }

    /// Every task's head, query and tail give the right output size, and the output is finite.
    func testOutputShapesForEveryTask() {
        let model = AdaptedIPT(preset: .tiny, method: .adaptir)
        let x = input(1, seed: 3)
        for task in 0..<6 {
            let s = model.preset.scales[task]
            let y = Autograd.withoutGrad { model(x, task: task) }
            XCTAssertEqual(y.shape, [1, 3, 48 * s, 48 * s])
            XCTAssertTrue(y.allFinite())
        }
    }

    /// Finite differences through the whole adapted tiny model (training mode, batch statistics): every element of
    /// every adapter tensor, and a sample of input pixels, whose gradient flows through the frozen backbone.
    /// The backbone is the golden file's; the adapter weights are drawn in [-0.5, 0.5] so that every branch
    /// matters, and L = sum(y * r) with r in [0.5, 1.5]: a coherent loss keeps the gradients well above the Float
    /// round-off of the finite differences (with a zero-mean r most adapter gradients are ~1e-4, under that noise).
    func testWholeModelFiniteDifferences() throws {
        let f = try Golden.open("ipt_tiny.h5")
        defer { f.close() }
        let model = AdaptedIPT(preset: .tiny, method: .adaptir)
        try Golden.loadWeights(f, into: model.store)
        var rng = TestRNG(seed: 9)
        let w = model.store.trainable.base
        for i in 0..<model.store.trainableCount { w[i] = rng.uniform(-0.5, 0.5) }
        model.training = true
        // One image of the fixture's batch keeps the ~1,500 forwards quick; BN still sees 256 positions.
        let x = reshape(select(try f.readTensor("input"), index: 0), [1, 3, 48, 48])
        x.setRequiresGrad(true)
        let task = 4
        let y0 = model(x, task: task)
        let r = (0..<y0.count).map { _ in rng.uniform(0.5, 1.5) }
        y0.backward(seed: Tensor(shape: y0.shape, r))
        // Running statistics move on every training forward; they do not enter the training-mode output.
        func loss() -> Double {
            let y = Autograd.withoutGrad { model(x, task: task) }
            var s = 0.0
            for i in 0..<y.count { s += Double(y[flat: i]) * Double(r[i]) }
            return s
        }
        func check(_ t: Tensor, _ indices: [Int], _ what: String, eps: Float, atol: Float) {
            checkDifferenceQuotients(t, indices, what, eps: eps, atol: atol, loss: loss)
        }
        var checked = 0
        for spec in model.store.specs where model.store.isTrainable(spec.key) {
            check(model.store[spec.key], Array(0..<spec.count), spec.key, eps: 1e-2, atol: 3e-3)
            checked += spec.count
        }
        XCTAssertEqual(checked, model.store.trainableCount)
        let pixels = (0..<48).map { _ in Int(rng.next() % UInt64(x.count)) }
        // Pixels enter on the 0..255 scale: a smaller step keeps the ReLU kinks of the heads out of the difference.
        // Float round-off in L (~1e-5) over 2 eps gives ~5e-3 of noise; input gradients are of order 1.
        check(x, pixels, "input", eps: 1e-3, atol: 8e-3)
    }
}
