import Foundation
import XCTest
import AdaptIRCore

final class EvaluatorTests: XCTestCase {
    private func gradientImage(_ w: Int, _ h: Int) -> RGBImage {
        var img = RGBImage(width: w, height: h)
        for y in 0..<h { for x in 0..<w { for c in 0..<3 { img.pixels[(y * w + x) * 3 + c] = UInt8((x * 3 + y * 5 + c * 40) % 256) } } }
        return img
    }

    func testTensorRoundTripIsExact() {
        let img = gradientImage(13, 7)
        XCTAssertEqual(RGBImage(tensor: img.tensor()), img)
    }

    func testTestPairsAreDeterministicAndDegradedAsTheTask() throws {
        let dir = NSTemporaryDirectory() + "eval-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writePNG(gradientImage(99, 70), to: dir + "/b.png")
        try writePNG(gradientImage(64, 64), to: dir + "/a.png")
        let e = Evaluator(task: .lr4Noise30)
        let p1 = try e.testPairs(folder: dir), p2 = try e.testPairs(folder: dir)
        XCTAssertEqual(p1.map(\.name), ["a.png", "b.png"])
        XCTAssertEqual(p1[1].gt.width, 96)   // cropped to a multiple of 4
        XCTAssertEqual(p1[1].lq.width, 24)
        XCTAssertEqual(p1[1].lq.height, 17)
        XCTAssertEqual(p1.map(\.lq), p2.map(\.lq))
        XCTAssertNotEqual(p1[0].lq, matlabBicubicDownscale(p1[0].gt, by: 4), "noise was added")
    }

    /// The adapted model at initialisation scores exactly like the bare backbone (same restored pixels).
    func testEvaluateOnTheTinyModel() throws {
        let dir = NSTemporaryDirectory() + "eval-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writePNG(gradientImage(200, 208), to: dir + "/img.png")
        let e = Evaluator(task: .lr4Noise30)
        let pairs = try e.testPairs(folder: dir)
        let adapted = AdaptedIPT(preset: .tiny, method: .adaptir, seed: 1)
        let bare = AdaptedIPT(preset: .tiny, method: .frozen, seed: 1)
        let r1 = try e.evaluate(model: adapted, pairs: pairs, outputFolder: dir + "/out")
        let r2 = try e.evaluate(model: bare, pairs: pairs)
        XCTAssertEqual(r1[0].quality, r2[0].quality)
        XCTAssertTrue(r1[0].quality.psnr.isFinite)
        let restored = try readImage(dir + "/out/img.png")
        XCTAssertEqual(restored.width, 200)
        XCTAssertEqual(restored.height, 208)
    }
}
