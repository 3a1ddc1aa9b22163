import Foundation
import XCTest
import AdaptIRCore

final class EvaluatorTests: XCTestCase {
    private func gradientImage(_ w: Int, _ h: Int) -> RGBImage {
        var img = RGBImage(width: w, height: h)
        for y in 0..<h { for x in 0..<w { for c in 0..<3 { img.pixels[(y * w + x) * 3 + c] = UInt8((x * 3 + y * 5 + c * 40) % 256) } } }
        return img
    }

    /// A fresh folder under the temporary directory (the caller removes it).
    private func temporaryFolder() throws -> String {
        let dir = NSTemporaryDirectory() + "eval-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func testTensorRoundTripIsExact() {
        let img = gradientImage(13, 7)
        XCTAssertEqual(RGBImage(tensor: img.tensor()), img)
    }

    func testTestPairsAreDeterministicAndDegradedAsTheTask() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writePNG(gradientImage(399, 282), to: dir + "/b.png")
        try writePNG(gradientImage(192, 192), to: dir + "/a.png")
        let e = Evaluator(task: .lr4Noise30)
        let p1 = try e.testPairs(folder: dir, warn: { XCTFail($0) }), p2 = try e.testPairs(folder: dir, warn: { XCTFail($0) })
        XCTAssertEqual(p1.map(\.name), ["a.png", "b.png"])
        XCTAssertEqual(p1[1].gt.width, 396)   // cropped to a multiple of 4
        XCTAssertEqual(p1[1].lq.width, 99)
        XCTAssertEqual(p1[1].lq.height, 70)
        XCTAssertEqual(p1.map(\.lq), p2.map(\.lq))
        XCTAssertNotEqual(p1[0].lq, matlabBicubicDownscale(p1[0].gt, by: 4), "noise was added")
    }

    /// The baseline row: bicubic enlargement for SR (near-perfect on a smooth image, far better than the noisy
    /// LR4&Noise30 input allows), the noisy input itself at scale 1 (about 20 log10(255/30) dB for sigma 30).
    func testBaselineIsBicubicForSRAndTheInputAtScaleOne() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var smooth = RGBImage(width: 192, height: 192)
        for y in 0..<192 { for x in 0..<192 { for c in 0..<3 { smooth.pixels[(y * 192 + x) * 3 + c] = UInt8(60 + x / 2 + y / 4 + c * 10) } } }
        try writePNG(smooth, to: dir + "/s.png")
        let sr = Evaluator(task: .sr4)
        XCTAssertEqual(sr.baselineName, "bicubic")
        let clean = sr.baseline(pairs: try sr.testPairs(folder: dir, warn: { XCTFail($0) }))
        XCTAssertGreaterThan(clean[0].quality.psnr, 40)
        let noisy = Evaluator(task: .lr4Noise30)
        let n = noisy.baseline(pairs: try noisy.testPairs(folder: dir, warn: { XCTFail($0) }))
        XCTAssertLessThan(n[0].quality.psnr, clean[0].quality.psnr - 5)
        let dn = Evaluator(task: .denoise30)
        XCTAssertEqual(dn.baselineName, "input")
        let pairs = try dn.testPairs(folder: dir, warn: { XCTFail($0) })
        let d = dn.baseline(pairs: pairs)
        XCTAssertEqual(d[0].quality.psnr, 20 * log10(255.0 / 30), accuracy: 1.0)
        XCTAssertEqual(d.mean.psnr, d[0].quality.psnr)
    }

    /// The adapted model at initialisation scores exactly like the bare backbone (same restored pixels).
    func testEvaluateOnTheTinyModel() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writePNG(gradientImage(200, 208), to: dir + "/img.png")
        let e = Evaluator(task: .lr4Noise30)
        let pairs = try e.testPairs(folder: dir, warn: { XCTFail($0) })
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

    /// The one size check of eval, train's evaluation and restore: both sides at least the 48-pixel window.
    func testChopSizeProblem() {
        XCTAssertNil(chopSizeProblem(width: 48, height: 48))
        XCTAssertNil(chopSizeProblem(width: 500, height: 48))
        XCTAssertEqual(chopSizeProblem(width: 60, height: 40), "60x40 is smaller than the 48x48 window of the sliding-window restoration")
        XCTAssertNotNil(chopSizeProblem(width: 47, height: 480))
    }

    /// Images whose LQ is smaller than the window (60x40, 10x10; 191x400 at x4 gives a 47-pixel side) are skipped
    /// with one warning each naming the file and its size; the others are kept. Only small ones: an error.
    func testTestPairsSkipImagesSmallerThanTheWindow() throws {
        let dir = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writePNG(gradientImage(60, 40), to: dir + "/a_small.png")
        try writePNG(gradientImage(10, 10), to: dir + "/b_tiny.png")
        try writePNG(gradientImage(64, 64), to: dir + "/c_ok.png")
        var warnings: [String] = []
        let pairs = try Evaluator(task: .denoise30).testPairs(folder: dir) { warnings.append($0) }
        XCTAssertEqual(pairs.map(\.name), ["c_ok.png"])
        XCTAssertEqual(warnings, ["warning: \(dir)/a_small.png: skipped: 60x40 is smaller than the 48x48 window of the sliding-window restoration",
                                  "warning: \(dir)/b_tiny.png: skipped: 10x10 is smaller than the 48x48 window of the sliding-window restoration"])
        warnings = []
        try writePNG(gradientImage(191, 400), to: dir + "/d.png")
        XCTAssertThrowsError(try Evaluator(task: .lr4Noise30).testPairs(folder: dir) { warnings.append($0) }) { error in
            XCTAssertEqual("\(error)", "\(dir): no test image is large enough: all 4 are smaller than the 48x48 window at their x4 LQ size")
        }
        XCTAssertEqual(warnings.count, 4, "\(warnings)")
        XCTAssertTrue(warnings[3].hasSuffix("d.png: skipped: image 191x400, its x4 LQ 47x100 is smaller than the 48x48 window of the sliding-window restoration"), warnings[3])
    }
}
