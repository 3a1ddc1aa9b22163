import Foundation
import XCTest
import AdaptIRCore

/// A packed x2 file of `n` random 48x48 patches at `path` (the same bytes for the same `seed`).
func writeValidationPatches(_ path: String, n: Int, seed: UInt64 = 9) throws {
    var r = SplitMix64(seed: seed)
    let lq = (0..<(n * 48 * 48 * 3)).map { _ in UInt8(truncatingIfNeeded: r.next() >> 56) }
    let gt = (0..<(n * 96 * 96 * 3)).map { _ in UInt8(truncatingIfNeeded: r.next() >> 56) }
    let header = PatchFile.Header(task: "sr_2", scale: 2, patchSize: 48, degradation: "{\"resize\":\"matlab_bicubic\",\"scale\":2}")
    try PatchFile.write(to: path, header: header) { try $0.appendPatches(gt: gt, lq: lq, count: n) }
}

final class ValidatorTests: XCTestCase {
    /// The mean L1 over every patch, in eval mode, whatever the batch size; the model is left as it was.
    func testLossIsTheMeanOverEveryPatchInEvalMode() throws {
        let path = NSTemporaryDirectory() + "val-\(UUID().uuidString).h5"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeValidationPatches(path, n: 5)
        let model = perturbedTinyModel()
        let task = 0   // x2
        XCTAssertEqual(model.preset.scales[task], 2)
        model.training = true
        let v16 = try Validator(path: path, comm: .solo), v2 = try Validator(path: path, comm: .solo, batchSize: 2)
        let a = try v16.loss(model: model, task: task), b = try v2.loss(model: model, task: task)
        XCTAssertTrue(model.training, "the model's mode is restored")

        // By hand: one patch at a time, eval mode, no augmentation.
        let reader = try PatchReader(path: path, batchSize: 1, seed: 0, shuffle: false, augment: false)
        model.training = false
        var sum = 0.0
        for i in 0..<5 {
            let s = try reader.sample(i, epoch: 0)
            sum += Double(Autograd.withoutGrad { l1Loss(model(s.lq, task: task), s.gt).item })
        }
        XCTAssertEqual(a, sum / 5, accuracy: 1e-6 * sum)
        XCTAssertEqual(b, sum / 5, accuracy: 1e-6 * sum)
        // Batch norms in training mode would give another value: the validation really ran in eval mode.
        model.training = true
        let s = try reader.batch(of: [0, 1, 2, 3, 4], epoch: 0)
        let trainingMode = Double(Autograd.withoutGrad { l1Loss(model(s.lq, task: task), s.gt).item })
        XCTAssertNotEqual(trainingMode, a, accuracy: 1e-7)
    }

    /// val.csv: a row before the first step, every `validateEvery` steps and after the last; a resumed run keeps
    /// one row per validated step.
    func testRunWritesValidationRows() throws {
        let dir = NSTemporaryDirectory() + "valrun-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try writeValidationPatches(dir + "/val.h5", n: 3)
        let trainer = try Trainer(model: perturbedTinyModel(method: .full), comm: .solo, task: 0, globalBatch: 2, totalSteps: 4, lr: 1e-3)
        var o = TrainingRunOptions(steps: 4, checkpointEvery: 0, outputDirectory: dir + "/run")
        o.validator = try Validator(path: dir + "/val.h5", comm: .solo)
        o.validateEvery = 3
        XCTAssertEqual(try TrainingRun(trainer: trainer, source: SyntheticSource(trainer), options: o).run(), .finished)
        let rows = try String(contentsOfFile: o.validationCSVPath, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.first.map(String.init), TrainingRun.validationCSVHeader)
        XCTAssertEqual(rows.dropFirst().map { String($0.split(separator: ",")[0]) }, ["0", "3", "4"])
        let losses = rows.dropFirst().map { Double($0.split(separator: ",")[1])! }
        XCTAssertTrue(losses.allSatisfy { $0.isFinite && $0 > 0 })
        XCTAssertNotEqual(losses[0], losses[2], "training moved the validation loss")
    }
}
