import XCTest
import AdaptIRCore

/// Parity with the independent PyTorch implementation (Fixtures/golden, README there): outputs within 1e-4 and
/// gradients within 1e-3 of each reference tensor's magnitude.
final class ModelParityTests: XCTestCase {
    /// One AdaptIR module at full size (d = 576, h = 24) in training mode: output, every gradient, running stats.
    func testAdaptIRModuleAtFullSize() throws {
        let f = try Golden.open("adaptir_module_ipt.h5")
        defer { f.close() }
        let specs = AdaptIRModule.parameterSpecs(prefix: "m", embed: Preset.ipt.embed, hidden: 24)
        let store = ParameterStore(specs: specs) { $0.role == .adapter }
        try Golden.loadWeights(f, into: store, prefix: "m.")
        let module = AdaptIRModule(store, prefix: "m", grid: Preset.ipt.grid)
        let input = try f.readTensor("input").requiringGrad()
        let out = module(input, training: true)
        Golden.assertClose(out, try f.readTensor("output"), rtol: 1e-4, "output")
        out.backward(seed: try f.readTensor("r"))
        let (grads, gmax) = try Golden.readGroup(f, "grads")
        XCTAssertEqual(grads.count, 25, "24 parameter gradients and the input's")
        for (key, expected) in grads {
            let actual = key == "input" ? input.grad! : store["m.\(key)"].grad!
            // The biases in front of BN (head.bias) and of the softmax (compress.bias) have gradient exactly 0:
            // their references are round-off, so they are compared against the largest gradient.
            Golden.assertClose(actual, expected, rtol: 1e-3, floor: 1e-3 * gmax, "grad \(key)")
        }
        for key in ["BN.running_mean", "BN.running_var"] {
            Golden.assertClose(store["m.\(key)"], try f.readTensor("running/\(key)"), rtol: 1e-5, key)
        }
        XCTAssertEqual(store["m.BN.num_batches_tracked"].item, 1)
    }

    private func loadTiny(_ name: String, preset: Preset) throws -> (HDF5File, AdaptedIPT) {
        let f = try Golden.open(name)
        let model = AdaptedIPT(preset: preset, method: .adaptir)
        try Golden.loadWeights(f, into: model.store)
        return (f, model)
    }

    /// The whole adapted model in eval mode (running statistics), tasks 2 (x4) and 4 (x1), presets tiny and small.
    func testEvalOutputsTinyAndSmall() throws {
        for (file, preset) in [("ipt_tiny.h5", Preset.tiny), ("ipt_small.h5", Preset.small)] {
            let (f, model) = try loadTiny(file, preset: preset)
            defer { f.close() }
            model.training = false
            let x = try f.readTensor("input")
            for task in [2, 4] {
                let y = Autograd.withoutGrad { model(x, task: task) }
                Golden.assertClose(y, try f.readTensor("eval/t\(task)/output"), rtol: 1e-4, "\(preset.name) eval t\(task)")
            }
        }
    }

    /// Training mode: output, L1 loss, the gradient of every adapter tensor and of the input (backbone frozen).
    /// Also with the attention probabilities recomputed in the backward (`AttentionMemory`, what ipt at batch 16 does).
    func testTrainingOutputsLossAndGradientsTiny() throws {
        let budget = AttentionMemory.storeProbabilitiesUpToBytes
        defer { AttentionMemory.storeProbabilitiesUpToBytes = budget }
        for (task, keep) in [(2, budget), (4, budget), (2, 0), (4, 0)] {
            AttentionMemory.storeProbabilitiesUpToBytes = keep
            let (f, model) = try loadTiny("ipt_tiny.h5", preset: .tiny)
            defer { f.close() }
            model.training = true
            let x = try f.readTensor("input").requiringGrad()
            let y = model(x, task: task)
            Golden.assertClose(y, try f.readTensor("train/t\(task)/output"), rtol: 1e-4, "train t\(task) output")
            let loss = l1Loss(y, try f.readTensor("train/t\(task)/target"))
            let expected = try f.readTensor("train/t\(task)/loss").item
            XCTAssertEqual(loss.item, expected, accuracy: 1e-5 * max(1, abs(expected)), "loss t\(task)")
            loss.backward()
            let (grads, gmax) = try Golden.readGroup(f, "train/t\(task)/grads")
            XCTAssertEqual(grads.count, 2 * 24 + 1, "every adapter parameter of both layers and the input")
            for (key, expected) in grads {
                let actual = key == "input" ? x.grad! : model.store[key].grad!
                Golden.assertClose(actual, expected, rtol: 1e-3, floor: 1e-3 * gmax, "t\(task) grad \(key)")
            }
            // The backbone is frozen: no gradient was ever allocated for it.
            for spec in model.store.specs where spec.role == .backbone {
                XCTAssertNil(model.store[spec.key].grad, spec.key)
            }
        }
    }

    /// IPT's sliding-window chop of a 61x75 image with the tiny model (eval mode), tasks 2 (x4) and 4 (x1).
    func testChopTiny() throws {
        let (f, model) = try loadTiny("ipt_tiny.h5", preset: .tiny)
        defer { f.close() }
        model.training = false
        let image = try f.readTensor("chop/input")
        for task in [2, 4] {
            let y = Autograd.withoutGrad {
                forwardChop(image, scale: model.preset.scales[task], batchSize: 16) { model($0, task: task) }
            }
            Golden.assertClose(y, try f.readTensor("chop/output_t\(task)"), rtol: 1e-4, "chop t\(task)")
        }
    }
}
