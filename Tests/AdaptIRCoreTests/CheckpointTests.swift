import Foundation
import XCTest
import AdaptIRCore

final class CheckpointTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    private func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// A model whose adapter is not at its zero init (so the adapter really changes the output).
    private func trainedLikeModel(seed: UInt64) -> AdaptedIPT {
        let m = AdaptedIPT(preset: .tiny, method: .adaptir, seed: seed)
        var rng = TestRNG(seed: seed)
        let p = m.store.trainable.base
        for i in 0..<m.store.trainableCount { p[i] += 0.05 * rng.uniform() }
        return m
    }

    func testSaveLoadForwardIsIdentical() throws {
        let a = trainedLikeModel(seed: 1)
        a.training = false
        try Checkpoint.save(a, part: .all, to: path("all.h5"), task: 2, step: 17)
        let b = AdaptedIPT(preset: .tiny, method: .adaptir, seed: 99)
        b.training = false
        let meta = try Checkpoint.load(path("all.h5"), into: b, part: .all)
        XCTAssertEqual(meta, CheckpointMetadata(formatVersion: 1, preset: "tiny", method: "adaptir", methodOptions: ["hidden": 2], part: "all", task: 2, step: 17))
        var rng = TestRNG(seed: 3)
        let x = rng.tensor([2, 3, 48, 48], 0, 1)
        let ya = Autograd.withoutGrad { a(x, task: 2) }.toArray()
        let yb = Autograd.withoutGrad { b(x, task: 2) }.toArray()
        XCTAssertEqual(ya, yb)
    }

    /// One backbone file serves many adapter files: loading them separately gives the same model.
    func testBackboneAndAdapterLoadSeparately() throws {
        let a = trainedLikeModel(seed: 4)
        try Checkpoint.save(a, part: .backbone, to: path("backbone.h5"))
        try Checkpoint.save(a, part: .adapter, to: path("adapter.h5"), task: 4, step: 3)
        let b = AdaptedIPT(preset: .tiny, method: .adaptir, seed: 5)
        try Checkpoint.load(path("backbone.h5"), into: b, part: .backbone)
        try Checkpoint.load(path("adapter.h5"), into: b, part: .adapter)
        for key in a.store.keys { XCTAssertEqual(a.store[key].toArray(), b.store[key].toArray(), key) }
        // A bare backbone model loads the same backbone file.
        let bare = AdaptedIPT(preset: .tiny, method: .frozen, seed: 6)
        try Checkpoint.load(path("backbone.h5"), into: bare, part: .backbone)
        XCTAssertEqual(bare.store["body.linear_encoding.weight"].toArray(), a.store["body.linear_encoding.weight"].toArray())
        // The adapter file alone does not pass as a backbone.
        XCTAssertThrowsError(try Checkpoint.load(path("adapter.h5"), into: b, part: .backbone)) { error in
            XCTAssertTrue("\(error)".contains("missing from checkpoint"), "\(error)")
        }
    }

    /// Writes a checkpoint of `model` by hand with `edit` applied to its (key, tensor) list.
    private func writeEdited(_ model: AdaptedIPT, _ file: String, _ edit: ([(String, Tensor)]) -> [(String, Tensor)]) throws {
        let entries = edit(model.store.specs.map { ($0.key, model.store[$0.key]) })
        try HDF5File.writeAtomically(to: file) { f in
            for (k, t) in entries { try f.write(k, tensor: t) }
            try f.setAttribute("format_version", 1)
            try f.setAttribute("preset", "tiny")
            try f.setAttribute("method", "adaptir")
            try f.setAttribute("part", "all")
        }
    }

    private func assertRefused(_ file: String, mentions words: [String], line: UInt = #line) {
        let model = AdaptedIPT(preset: .tiny, method: .adaptir, seed: 7)
        let before = model.store.trainable.base[0]
        XCTAssertThrowsError(try Checkpoint.load(file, into: model, part: .all), line: line) { error in
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", line: line)
            XCTAssertTrue(text.contains(file), "names the file: \(text)", line: line)
            for w in words { XCTAssertTrue(text.contains(w), "mentions \(w): \(text)", line: line) }
        }
        XCTAssertEqual(model.store.trainable.base[0], before, "a refused load changes nothing", line: line)
    }

    func testRenamedTensorIsRefusedByName() throws {
        let m = trainedLikeModel(seed: 8)
        let file = path("renamed.h5")
        try writeEdited(m, file) { $0.map { $0.0 == "body.encoder.layers.0.norm1.weight" ? ("body.encoder.layers.0.norm_1.weight", $0.1) : $0 } }
        assertRefused(file, mentions: ["body.encoder.layers.0.norm1.weight", "missing"])
    }

    func testExtraTensorIsRefusedByName() throws {
        let m = trainedLikeModel(seed: 8)
        let file = path("extra.h5")
        try writeEdited(m, file) { $0 + [("body.encoder.layers.0.lora_A", Tensor(zeros: [2, 36]))] }
        assertRefused(file, mentions: ["body.encoder.layers.0.lora_A", "unexpected"])
    }

    func testMisShapedTensorIsRefusedByName() throws {
        let m = trainedLikeModel(seed: 8)
        let file = path("shape.h5")
        try writeEdited(m, file) { $0.map { $0.0 == "body.decoder.layers.0.adaptir.conv_weight_B" ? ($0.0, Tensor(zeros: [9, 1])) : $0 } }
        assertRefused(file, mentions: ["body.decoder.layers.0.adaptir.conv_weight_B", "[9, 1]", "[1, 9]"])
    }

    func testNaNTensorIsRefusedByName() throws {
        let m = trainedLikeModel(seed: 8)
        let file = path("nan.h5")
        try writeEdited(m, file) { entries in
            entries.map { $0.0 == "tail.2.1.bias" ? ($0.0, Tensor(shape: [3], [0, .nan, 0])) : $0 }
        }
        assertRefused(file, mentions: ["tail.2.1.bias", "NaN"])
    }

    func testWrongPresetAndForeignFileAreRefused() throws {
        let small = AdaptedIPT(preset: .small, method: .adaptir)
        try Checkpoint.save(small, part: .adapter, to: path("small.h5"))
        let tiny = AdaptedIPT(preset: .tiny, method: .adaptir)
        XCTAssertThrowsError(try Checkpoint.load(path("small.h5"), into: tiny, part: .adapter)) { error in
            XCTAssertTrue("\(error)".contains("preset 'small'"), "\(error)")
        }
        // The golden fixture is HDF5 but not a checkpoint.
        XCTAssertThrowsError(try Checkpoint.load(Golden.path("ipt_tiny.h5"), into: tiny, part: .all)) { error in
            XCTAssertTrue("\(error)".contains("not an adaptir-dist checkpoint"), "\(error)")
        }
    }

    func testInspectInfoOfAnAdapterFile() throws {
        let m = AdaptedIPT(preset: .tiny, method: .adaptir)
        try Checkpoint.save(m, part: .adapter, to: path("a.h5"), task: 2, step: 5)
        let info = try CheckpointInfo.read(path("a.h5"))
        XCTAssertEqual(info.metadata.step, 5)
        let trainable = info.entries.filter { $0.role == "trainable" }.reduce(0) { $0 + $1.shape.product }
        XCTAssertEqual(trainable, m.store.trainableCount)
        XCTAssertEqual(info.entries.count, 2 * 27)
    }
}
