import Foundation
import XCTest
import AdaptIRCore

/// The training configuration: the paper's recipe as defaults, the embedded demonstration's departures from it,
/// the config-file keys, and one error per bad field that names the field.
final class TrainConfigTests: XCTestCase {
    func testDefaultsAreThePaperRecipe() {
        let c = TrainConfig()
        XCTAssertEqual(c.lr, 1e-4)
        XCTAssertEqual(c.weightDecay, 0.01)
        XCTAssertEqual(c.milestones, [0.5, 0.8, 0.9, 0.95])
        XCTAssertEqual(c.gamma, 0.5)
        XCTAssertEqual(c.globalBatch, 16)
        XCTAssertEqual(c.method, "adaptir")
        XCTAssertEqual(c.task, "lr4_noise30")
        XCTAssertTrue(c.syncBN)
        XCTAssertNoThrow(try c.validate())
    }

    func testEmbeddedDefaultChangesOnlyStepsLearningRateAndPatches() throws {
        var e = TrainConfig.embeddedDefault(method: "adaptir", corpus: nil)
        XCTAssertEqual(e.steps, 500)
        XCTAssertEqual(e.lr, 1e-2)
        XCTAssertEqual(e.patchesPerImage, 256)
        XCTAssertNoThrow(try e.validate())
        let d = TrainConfig()
        e.steps = d.steps; e.lr = d.lr; e.patchesPerImage = d.patchesPerImage
        XCTAssertEqual(e, d, "the embedded default departs from the recipe in more than steps, lr and patches per image")
        let full = TrainConfig.embeddedDefault(method: "full", corpus: nil)
        XCTAssertEqual(full.method, "full")
        XCTAssertEqual(full.lr, d.lr, "full fine-tuning keeps the recipe's learning rate")
        XCTAssertEqual(full.steps, 500)
        XCTAssertEqual(full.patchesPerImage, 256)
    }

    func testEmbeddedDefaultTrainsOnTheFetchedCorpusAndScoresItsTestSplit() throws {
        let e = TrainConfig.embeddedDefault(method: "adaptir", corpus: (train: "/d/photos/train", test: "/d/photos/test"))
        XCTAssertEqual(e.trainDirs, ["/d/photos/train"])
        XCTAssertEqual(e.testData, "/d/photos/test")
        XCTAssertEqual(e.patchesPerImage, 64)
        XCTAssertEqual(e.steps, 500)
        XCTAssertEqual(e.lr, 1e-2)
        XCTAssertNoThrow(try e.validate())
        XCTAssertEqual(try e.resolvedTestData(), "/d/photos/test")
    }

    func testPhotoCorpusNeedsTheCompleteStamp() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("corpus-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/datasets/photos/train", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/datasets/photos/test", withIntermediateDirectories: true)
        let places = DataLocations(environment: [:], currentDirectory: root, executable: "/nowhere/bin/adaptir-dist")
        XCTAssertNil(TrainConfig.photoCorpus(places), "folders without the stamp (an interrupted fetch) are not the corpus")
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/datasets/" + TrainConfig.photoCorpusStamp, contents: Data()))
        let corpus = try XCTUnwrap(TrainConfig.photoCorpus(places))
        XCTAssertEqual(corpus.train, root + "/datasets/photos/train")
        XCTAssertEqual(corpus.test, root + "/datasets/photos/test")
    }

    func testConfigFileKeysAndDefaultsForMissingKeys() throws {
        // YAML files are decoded through the same Codable keys (the CLI uses Yams); JSON exercises them here.
        let text = #"{"preset": "tiny", "global_batch": 8, "lr": 0.0005, "weight_decay": 0, "sync_bn": false,"#
            + #" "checkpoint_every": 7, "train_data": "a.h5", "patches_per_image": 3, "milestones": [0.5]}"#
        let c = try JSONDecoder().decode(TrainConfig.self, from: Data(text.utf8))
        XCTAssertEqual(c.preset, "tiny")
        XCTAssertEqual(c.globalBatch, 8)
        XCTAssertEqual(c.lr, 5e-4)
        XCTAssertEqual(c.weightDecay, 0)
        XCTAssertFalse(c.syncBN)
        XCTAssertEqual(c.checkpointEvery, 7)
        XCTAssertEqual(c.trainData, "a.h5")
        XCTAssertEqual(c.patchesPerImage, 3)
        XCTAssertEqual(c.milestones, [0.5])
        XCTAssertEqual(c.gamma, 0.5, "a missing key keeps its default")
        XCTAssertEqual(c.steps, TrainConfig().steps)
    }

    func testCanonicalJSONIsSortedAndRoundTrips() throws {
        var c = TrainConfig()
        c.seed = 9
        let json = c.canonicalJSON
        XCTAssertTrue(json.hasPrefix(#"{"attention_memory_mib":1024,"backbone":"#), json)
        XCTAssertEqual(try JSONDecoder().decode(TrainConfig.self, from: Data(json.utf8)), c)
        c.lr = 2e-4
        XCTAssertNotEqual(c.canonicalJSON, json)
    }

    func testEveryBadFieldIsNamed() {
        let cases: [(String, (inout TrainConfig) -> Void)] = [
            ("preset", { $0.preset = "huge" }),
            ("method", { $0.method = "frozen" }),
            ("method", { $0.method = "lora2" }),
            ("task", { $0.task = "sr_5x" }),
            ("global_batch", { $0.globalBatch = 1 }),
            ("steps", { $0.steps = 0 }),
            ("lr", { $0.lr = .nan }),
            ("lr", { $0.lr = -1 }),
            ("weight_decay", { $0.weightDecay = .infinity }),
            ("milestones", { $0.milestones = [0.5, 1.5] }),
            ("gamma", { $0.gamma = 0 }),
            ("checkpoint_every", { $0.checkpointEvery = -1 }),
            ("threads", { $0.threads = 0 }),
            ("patches_per_image", { $0.patchesPerImage = 0 }),
            ("output", { $0.output = "" }),
            ("attention_memory_mib", { $0.attentionMemoryMiB = -1 }),
            ("attention_memory_mib", { $0.attentionMemoryMiB = 1 << 21 }),
        ]
        for (field, spoil) in cases {
            var c = TrainConfig()
            spoil(&c)
            XCTAssertThrowsError(try c.validate(), field) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("'\(field)'"), "error for \(field) does not name it: \(text)")
                XCTAssertFalse(text.contains("\n"), "error for \(field) is not one line: \(text)")
            }
        }
    }

    /// Unknown YAML keys get the closest known one: an alias users bring from PyTorch/BasicSR, or a near spelling.
    func testUnknownKeysGetTheClosestKnownOne() {
        XCTAssertEqual(TrainConfig.suggestion(for: "learning_rate"), "lr")
        XCTAssertEqual(TrainConfig.suggestion(for: "batch_size"), "global_batch")
        XCTAssertEqual(TrainConfig.suggestion(for: "stpes"), "steps")
        XCTAssertEqual(TrainConfig.suggestion(for: "val_evry"), "val_every")
        XCTAssertNil(TrainConfig.suggestion(for: "completely_unrelated"))
        XCTAssertTrue(Set(["lr", "steps", "method_options", "val_data", "val_every"]).isSubset(of: Set(TrainConfig.keys)))
    }
}
