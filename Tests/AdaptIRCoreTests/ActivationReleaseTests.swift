import XCTest
import AdaptIRCore

/// `Autograd.releasesUnsavedActivations`: the model frees, layer by layer during a training forward, the activations
/// no backward reads. For every adaptation method a training step must give the same bits (loss, output and every
/// trainable gradient) with and without it, hold less storage at the end of the forward, and a backward that reads
/// a released value would stop the process (the test run would crash, not pass).
final class ActivationReleaseTests: XCTestCase {
    override func tearDown() {
        Autograd.releasesUnsavedActivations = true
        super.tearDown()
    }

    private func step(_ method: String, release: Bool, x: Tensor, gt: Tensor) -> (values: [Float], liveAfterForward: Int) {
        Autograd.releasesUnsavedActivations = release
        let model = AdaptedIPT(preset: .small, method: MethodChoice(method), seed: 4)
        // Non-zero adapter weights everywhere (some methods start as the identity), so every path carries gradient.
        var rng = TestRNG(seed: 5)
        for i in 0..<model.store.trainableCount { model.store.trainable.base[i] += 0.01 * rng.uniform() }
        model.training = true
        model.store.zeroGrad()
        let y = model(x, task: 2)
        let loss = l1Loss(y, gt)
        let live = TensorMemory.liveBytes
        loss.backward()
        let s = model.store
        return ([loss.item] + y.toArray() + Array(UnsafeBufferPointer(start: s.trainableGrad.base, count: s.trainableCount)), live)
    }

    func testEveryMethodTrainsBitIdenticallyWithLessStorage() {
        var rng = TestRNG(seed: 71)
        let x = rng.tensor([2, 3, 48, 48], 0, 1), gt = rng.tensor([2, 3, 192, 192], 0, 1)
        for method in MethodRegistry.names where method != "frozen" {
            let kept = step(method, release: false, x: x, gt: gt)
            let freed = step(method, release: true, x: x, gt: gt)
            XCTAssertEqual(kept.values.count, freed.values.count, method)
            let first = kept.values.indices.first { kept.values[$0].bitPattern != freed.values[$0].bitPattern }
            XCTAssertNil(first, "\(method): value \(first ?? -1) differs with the activations released")
            XCTAssertLessThan(freed.liveAfterForward, kept.liveAfterForward, "\(method): nothing was released")
        }
    }

    /// The tail's frozen convolutions and pixel shuffles keep nothing for the backward: after an AdaptIR forward at
    /// x4 the graph holds no pixel-shuffled map, while the norms' outputs the adapters read are kept.
    func testReleasedActivationsAreGoneFromTheGraph() {
        var rng = TestRNG(seed: 72)
        let model = AdaptedIPT(preset: .small, method: .adaptir, seed: 4)
        model.training = true
        let y = model(rng.tensor([2, 3, 48, 48], 0, 1), task: 2)
        let loss = l1Loss(y, rng.tensor([2, 3, 192, 192], 0, 1))
        let held = Dictionary(uniqueKeysWithValues: Autograd.storageByOp(loss).map { ($0.op, $0.bytes) })
        XCTAssertNil(held["pixelShuffle"], "pixel-shuffled maps still held: \(held)")
        XCTAssertNotNil(held["layerNorm"], "the norms the adapters read must stay: \(held)")
    }
}
