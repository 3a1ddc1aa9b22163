import Foundation
import XCTest
import AdaptIRCore

/// scripts/backbone/grow_depth.py (how the `deep` backbone of datasets/README.md's stage 7 was made): a `small`
/// backbone grown to 4 + 4 layers must compute exactly what it computed before (the added pre-norm layers have zero
/// output projections, so each adds exactly 0 to the residual stream), and the added layers must be trainable from
/// there (their input projections are the last layer's, not zero). Runs the script with the python of the converter
/// test (the torch venv has h5py); skipped loudly without it, failed under CI like that test.
final class GrowDepthTests: XCTestCase {
    func testGrownBackboneComputesTheSameFunction() throws {
        let py = ConvertWeightsTests.torchPython()
        let probe = try ConvertWeightsTests.python(py, ["-c", "import numpy, h5py"])
        guard probe.status == 0 else {
            let why = "numpy/h5py do not import with '\(py)': \(probe.output.suffix(300))"
            if ["true", "1", "yes"].contains(ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? "") { return XCTFail("CI: " + why) }
            FileHandle.standardError.write(Data("\n!!!!! GrowDepthTests SKIPPED: \(why)\n\n".utf8))
            throw XCTSkip("SKIPPED, NOT RUN: " + why)
        }
        let dir = NSTemporaryDirectory() + "grow-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let small = AdaptedIPT(preset: .small, method: .frozen, seed: 7)
        try Checkpoint.save(small, part: .backbone, to: dir + "/small.h5", step: 11000)
        let script = ConvertWeightsTests.repo.appendingPathComponent("scripts/backbone/grow_depth.py").path
        let run = try ConvertWeightsTests.python(py, [script, dir + "/small.h5", dir + "/deep.h5", "--preset", "deep",
                                                      "--encoder-layers", "4", "--decoder-layers", "4"])
        XCTAssertEqual(run.status, 0, run.output)
        guard run.status == 0 else { return }

        let deep = AdaptedIPT(preset: .deep, method: .frozen, seed: 99)
        let meta = try Checkpoint.load(dir + "/deep.h5", into: deep, part: .backbone)
        XCTAssertEqual(meta.preset, "deep")
        var rng = TestRNG(seed: 5)
        let x = rng.tensor([2, 3, 48, 48], 0, 255)
        for task in [0, 2, 4] {
            let a = Autograd.withoutGrad { small(x, task: task) }.toArray()
            let b = Autograd.withoutGrad { deep(x, task: task) }.toArray()
            let diff = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertEqual(diff, 0, "task \(task): the grown backbone computes something else (max |difference| \(diff))")
        }
        // The added layers: zero output projections, input projections copied from the last existing layer.
        for (stack, leaf) in [("encoder", "self_attn.out_proj.weight"), ("decoder", "multihead_attn.out_proj.weight"), ("decoder", "linear2.weight")] {
            XCTAssertEqual(deep.store["body.\(stack).layers.3.\(leaf)"].toArray().map(abs).max(), 0, "\(stack) \(leaf)")
        }
        for stack in ["encoder", "decoder"] {
            let copied = deep.store["body.\(stack).layers.2.self_attn.in_proj_weight"].toArray()
            XCTAssertTrue(copied == small.store["body.\(stack).layers.1.self_attn.in_proj_weight"].toArray(), "\(stack): not the last layer's")
            XCTAssertGreaterThan(copied.map(abs).max() ?? 0, 0, stack)
        }
        // A backbone cannot shrink: one clear line, non-zero exit.
        let shrink = try ConvertWeightsTests.python(py, [script, dir + "/deep.h5", dir + "/x.h5", "--preset", "small",
                                                         "--encoder-layers", "2", "--decoder-layers", "2"])
        XCTAssertNotEqual(shrink.status, 0)
        XCTAssertTrue(shrink.output.contains("has 4 encoder layers, cannot grow to 2"), shrink.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x.h5"))
    }
}
