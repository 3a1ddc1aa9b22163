import AdaptIRCore
import Foundation
import XCTest

/// `DatasetLayout.find` on empty placeholder trees shaped like the real sets (file contents are not read here).
final class DatasetLayoutTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "layouttests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    /// Creates empty files at the given paths under a fresh set folder and returns the folder.
    func tree(_ name: String, _ files: [String]) throws -> String {
        let d = (root as NSString).appendingPathComponent(name)
        for f in files {
            let p = (d as NSString).appendingPathComponent(f)
            try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: p, contents: Data())
        }
        return d
    }

    func testDIV2KWithOfficialLR() throws {
        let d = try tree("DIV2K", ["DIV2K_train_HR/0002.png", "DIV2K_train_HR/0001.png",
                                   "DIV2K_train_LR_bicubic/X4/0001x4.png", "DIV2K_train_LR_bicubic/X4/0002x4.png"])
        XCTAssertEqual(DatasetLayout.detect(d), .div2k)
        let p = try DatasetLayout.auto.find(input: d, scale: 4, wantLQ: true)
        XCTAssertEqual(p.map(\.name), ["DIV2K_train_HR/0001.png", "DIV2K_train_HR/0002.png"])
        XCTAssertEqual(p.map { ($0.lq! as NSString).lastPathComponent }, ["0001x4.png", "0002x4.png"])
        // Without LR wanted (denoising), only HR.
        XCTAssertNil(try DatasetLayout.div2k.find(input: d, scale: 4, wantLQ: false)[0].lq)
        // No X2 folder: synthetic LR (no pairs).
        XCTAssertNil(try DatasetLayout.div2k.find(input: d, scale: 2, wantLQ: true)[0].lq)
    }

    func testBenchmarkAndManga109() throws {
        let s = try tree("Set5", ["HR/baby.png", "HR/bird.png", "LR_bicubic/X2/babyx2.png", "LR_bicubic/X2/birdx2.png"])
        XCTAssertEqual(DatasetLayout.detect(s), .set5)
        XCTAssertEqual(try DatasetLayout.set5.find(input: s, scale: 2, wantLQ: true).map { ($0.lq! as NSString).lastPathComponent },
                       ["babyx2.png", "birdx2.png"])
        let m = try tree("Manga109", ["HR/ARMS.png", "LR_bicubic/X3/ARMS_LRBI_x3.png"])
        XCTAssertEqual(try DatasetLayout.manga109.find(input: m, scale: 3, wantLQ: true)[0].lq.map { ($0 as NSString).lastPathComponent },
                       "ARMS_LRBI_x3.png")
        let bad = try tree("Set14", ["HR/a.png", "HR/b.png", "LR_bicubic/X4/ax4.png"])
        XCTAssertThrowsError(try DatasetLayout.set14.find(input: bad, scale: 4, wantLQ: true)) { e in
            XCTAssertTrue((e as! DataError).file.hasSuffix("HR/b.png"), "\(e)")
        }
    }

    func testRainLayouts() throws {
        let l = try tree("RainTrainL", ["norain-1.png", "rain-1.png", "norain-2.png", "rain-2.png"])
        XCTAssertEqual(DatasetLayout.detect(l), .raintrainl)
        let p = try DatasetLayout.auto.find(input: l, scale: 1, wantLQ: true)
        XCTAssertEqual(p.map(\.name), ["norain-1.png", "norain-2.png"])
        XCTAssertEqual(p.map { ($0.lq! as NSString).lastPathComponent }, ["rain-1.png", "rain-2.png"])
        let h = try tree("Rain100H", ["norain-001.png", "rainy/rain-001.png"])
        XCTAssertEqual(DatasetLayout.detect(h), .rain100l)
        XCTAssertTrue(try DatasetLayout.rain100h.find(input: h, scale: 1, wantLQ: true)[0].lq!.hasSuffix("rainy/rain-001.png"))
        let bad = try tree("RainBad", ["norain-1.png", "rain-1.png", "norain-2.png"])
        XCTAssertThrowsError(try DatasetLayout.raintrainh.find(input: bad, scale: 1, wantLQ: true)) { e in
            XCTAssertTrue((e as! DataError).file.hasSuffix("norain-2.png"), "\(e)")
        }
    }

    func testLOL() throws {
        let a = try tree("LOL", ["our485/low/1.png", "our485/high/1.png", "eval15/low/9.png", "eval15/high/9.png"])
        XCTAssertEqual(DatasetLayout.detect(a), .lol)
        let p = try DatasetLayout.lol.find(input: a, scale: 1, wantLQ: true)
        XCTAssertEqual(p.map(\.name), ["our485/high/1.png"])
        XCTAssertTrue(p[0].lq!.hasSuffix("our485/low/1.png"))
        let b = try tree("LOLv1", ["Train/input/5.png", "Train/target/5.png", "Train/input/6.png"])
        XCTAssertThrowsError(try DatasetLayout.lol.find(input: b, scale: 1, wantLQ: true)) { e in
            XCTAssertTrue((e as! DataError).file.hasSuffix("Train/input/6.png"), "\(e)")
        }
    }

    func testPlainFoldersAndCBSD68() throws {
        let w = try tree("WED", ["00002.bmp", "00001.bmp", "readme.txt", ".hidden.png"])
        XCTAssertEqual(try DatasetLayout.wed.find(input: w, scale: 1, wantLQ: false).map(\.name), ["00001.bmp", "00002.bmp"])
        let c = try tree("CBSD68", ["original_png/0000.png", "noisy15/0000.png"])
        XCTAssertEqual(DatasetLayout.detect(c), .cbsd68)
        XCTAssertEqual(try DatasetLayout.cbsd68.find(input: c, scale: 1, wantLQ: false).map(\.name), ["original_png/0000.png"])
        let e = try tree("Empty", ["x.txt"])
        XCTAssertThrowsError(try DatasetLayout.folder.find(input: e, scale: 1, wantLQ: false)) { err in
            XCTAssertEqual((err as! DataError).file, e)
        }
        XCTAssertThrowsError(try DatasetLayout.folder.find(input: root + "/nope", scale: 1, wantLQ: false))
    }
}
