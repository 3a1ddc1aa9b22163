import Foundation
import XCTest
import AdaptIRCore

/// scripts/convert_ipt_weights.py: a torch state_dict (here: the golden tiny backbone saved with torch.save) becomes a
/// backbone file that the strict loader accepts, with identical values. Runs where torch and h5py import.
final class ConvertWeightsTests: XCTestCase {
    func testConvertedTorchStateDictLoadsStrictly() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        func python(_ code: String, _ args: [String] = []) throws -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-c", code] + args
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run(); p.waitUntilExit()
            return p.terminationStatus
        }
        guard try python("import torch, h5py, numpy") == 0 else {
            throw XCTSkip("torch/h5py not importable here: the IPT weight conversion test is skipped")
        }
        let dir = NSTemporaryDirectory() + "convert-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let golden = Golden.path("ipt_tiny.h5")
        // A keys file for the tiny preset from the model itself.
        let keys = AdaptedIPT.parameterSpecs(preset: .tiny, method: .frozen)
            .map { "\($0.key)\t\($0.shape.map(String.init).joined(separator: ","))\tfloat32\t\($0.role == .buffer ? "buffer" : "param")" }
        try keys.joined(separator: "\n").write(toFile: dir + "/keys.txt", atomically: true, encoding: .utf8)
        let save = """
        import h5py, torch, sys
        f = h5py.File(sys.argv[1], "r"); sd = {}
        for k in f["weights"]:
            if ".adaptir." not in k: sd["module." + k] = torch.from_numpy(f["weights"][k][()])
        torch.save(sd, sys.argv[2])
        """
        XCTAssertEqual(try python(save, [golden, dir + "/w.pt"]), 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", repo.appendingPathComponent("scripts/convert_ipt_weights.py").path, dir + "/w.pt", dir + "/b.h5",
                       "--preset", "tiny", "--keys", dir + "/keys.txt"]
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let model = AdaptedIPT(preset: .tiny, method: .frozen)
        try Checkpoint.load(dir + "/b.h5", into: model, part: .backbone)
        let f = try Golden.open("ipt_tiny.h5")
        defer { f.close() }
        XCTAssertEqual(model.store["body.linear_encoding.weight"].toArray(), try f.readTensor("weights/body.linear_encoding.weight").toArray())
    }
}
