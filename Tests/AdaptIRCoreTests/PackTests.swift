import AdaptIRCore
import Foundation
import XCTest

/// `Packer` end to end on the bundled sample photos (datasets/samples/train) and on bad inputs: determinism
/// (byte-identical files, same hash), validation on reopening, and one clear error naming the file per bad input,
/// with no output or temp file left behind.
final class PackTests: XCTestCase {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("datasets/samples/train").path
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "packtests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

    /// Files in `d` whose name contains ".tmp-" (leftover temp files).
    func temps(_ d: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).filter { $0.contains(".tmp-") }
    }

    func image(_ w: Int, _ h: Int, seed: UInt64) -> RGBImage {
        var rng = SplitMix64(seed: seed)
        return RGBImage(width: w, height: h, pixels: (0..<(w * h * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
    }

    func expectError(_ body: () throws -> Void, naming file: String, contains text: String,
                     line: UInt = #line) {
        do {
            try body()
            XCTFail("no error", line: line)
        } catch let e as DataError {
            XCTAssertTrue(e.file.hasSuffix(file) || e.description.contains(file), "\(e) does not name \(file)", line: line)
            XCTAssertTrue(e.description.contains(text), "\(e) lacks '\(text)'", line: line)
            XCTAssertFalse(e.description.contains("\n"), line: line)
        } catch {
            XCTFail("unexpected error \(error)", line: line)
        }
    }

    func testPackSamplesTwiceIsByteIdenticalAndReopens() throws {
        var o = PackOptions(task: "lr4_noise30", input: Self.samples, output: path("a.h5"))
        o.patchesPerImage = 3
        o.seed = 7
        let r1 = try Packer.pack(o)
        o.output = path("b.h5")
        let r2 = try Packer.pack(o)
        XCTAssertEqual(r1.count, 12)
        XCTAssertEqual(r1.contentSHA256, r2.contentSHA256)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("a.h5"))),
                       try Data(contentsOf: URL(fileURLWithPath: path("b.h5"))), "files differ byte-wise")
        XCTAssertEqual(temps(dir), [])

        let f = try PatchFile.open(path("a.h5"))
        XCTAssertEqual(f.kind, .patches)
        XCTAssertEqual(f.task, "lr4_noise30")
        XCTAssertEqual(f.scale, 4)
        XCTAssertEqual(f.patchSize, 48)
        XCTAssertEqual(f.count, 12)
        XCTAssertEqual(f.seed, 7)
        XCTAssertEqual(f.sources, ["astronaut.png", "coffee.png", "hubble_deep_field.png", "retina.png"])
        XCTAssertEqual(f.degradation, #"{"resize":"matlab_bicubic","scale":4,"noise_sigma":30,"noise":"uint8_trunc"}"#)
        XCTAssertEqual(f.contentSHA256, r1.contentSHA256)
        try f.verify()

        // The hash is SHA-256 of gt then lq bytes, recomputed here from reads through the public API.
        var gt = [UInt8](repeating: 0, count: 12 * f.gtPatchBytes), lq = [UInt8](repeating: 0, count: 12 * f.lqPatchBytes)
        try gt.withUnsafeMutableBufferPointer { g in
            try lq.withUnsafeMutableBufferPointer { l in try f.readPatches(0..<12, lq: l, gt: g) }
        }
        var h = SHA256()
        h.update(gt); h.update(lq)
        XCTAssertEqual(h.finalizeHex(), f.contentSHA256)
        // Patch 5 read alone equals its slice of the block read.
        var g5 = [UInt8](repeating: 0, count: f.gtPatchBytes), l5 = [UInt8](repeating: 0, count: f.lqPatchBytes)
        try g5.withUnsafeMutableBufferPointer { g in try l5.withUnsafeMutableBufferPointer { l in try f.readPatches(5, lq: l, gt: g) } }
        XCTAssertEqual(g5, Array(gt[(5 * f.gtPatchBytes)..<(6 * f.gtPatchBytes)]))
        XCTAssertEqual(l5, Array(lq[(5 * f.lqPatchBytes)..<(6 * f.lqPatchBytes)]))

        // A different seed gives different patches.
        o.seed = 8
        o.output = path("c.h5")
        XCTAssertNotEqual(try Packer.pack(o).contentSHA256, r1.contentSHA256)
    }

    /// Without noise, an sr_4 LQ patch is exactly the bicubic LR image cropped at the GT patch's position / 4.
    func testSRPatchesAreAlignedCropsOfTheBicubicImage() throws {
        let src = path("src")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        let im = image(203, 197, seed: 3)
        try writePNG(im, to: (src as NSString).appendingPathComponent("x.png"))
        var o = PackOptions(task: "sr_4", input: src, output: path("sr.h5"))
        o.patchesPerImage = 4
        _ = try Packer.pack(o)
        let f = try PatchFile.open(path("sr.h5"))
        let crop = im.modCropped(4)
        let lr = matlabBicubicDownscale(crop, by: 4)
        var gt = [UInt8](repeating: 0, count: f.gtPatchBytes), lq = [UInt8](repeating: 0, count: f.lqPatchBytes)
        for i in 0..<4 {
            try gt.withUnsafeMutableBufferPointer { g in try lq.withUnsafeMutableBufferPointer { l in try f.readPatches(i, lq: l, gt: g) } }
            // Find the LQ position by search, then check the GT patch sits at 4x that position.
            var found = false
            search: for y in 0...(lr.height - 48) {
                for x in 0...(lr.width - 48) where lr.cropped(x: x, y: y, width: 48, height: 48).pixels == lq {
                    XCTAssertEqual(crop.cropped(x: 4 * x, y: 4 * y, width: 192, height: 192).pixels, gt)
                    found = true
                    break search
                }
            }
            XCTAssertTrue(found, "patch \(i) is not a crop of the bicubic LR image")
        }
    }

    func testImagesKindCutsBasicSRGrid() throws {
        var o = PackOptions(task: "lr4_noise30", input: Self.samples, output: path("img.h5"))
        o.kind = .images
        o.imageSize = 240
        o.imageStep = 240
        let r = try Packer.pack(o)
        // astronaut 512x512 -> 0,240,272 -> 3x3; coffee 600x400 -> x 0,240,360; y 0,160 -> 3x2;
        // hubble 640x640 and retina 640x640 -> 0,240,400 -> 3x3 each.
        XCTAssertEqual(r.count, 9 + 6 + 9 + 9)
        let f = try PatchFile.open(path("img.h5"))
        XCTAssertEqual(f.kind, .images)
        XCTAssertEqual(f.imageSize, 240)
        try f.verify()
        var buf = [UInt8](repeating: 0, count: f.imageBytes)
        try buf.withUnsafeMutableBufferPointer { try f.readImage(0, into: $0) }
        let astro = try readImage((Self.samples as NSString).appendingPathComponent("astronaut.png"))
        XCTAssertEqual(buf, astro.cropped(x: 0, y: 0, width: 240, height: 240).pixels)
    }

    func testRefusesExistingOutputUnlessForced() throws {
        try Data("keep".utf8).write(to: URL(fileURLWithPath: path("out.h5")))
        var o = PackOptions(task: "denoise_30", input: Self.samples, output: path("out.h5"))
        o.patchesPerImage = 1
        expectError({ _ = try Packer.pack(o) }, naming: "out.h5", contains: "exists")
        XCTAssertEqual(try String(contentsOfFile: path("out.h5"), encoding: .utf8), "keep")
        o.force = true
        XCTAssertEqual(try Packer.pack(o).count, 4)
        XCTAssertNoThrow(try PatchFile.open(path("out.h5")))
    }

    func testEmptyFolder() throws {
        let empty = path("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: (empty as NSString).appendingPathComponent("notes.txt")))
        let o = PackOptions(task: "denoise_30", input: empty, output: path("e.h5"))
        expectError({ _ = try Packer.pack(o) }, naming: "empty", contains: "no images")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("e.h5")))
        XCTAssertEqual(temps(dir), [])
    }

    func testUnpairedFileInPairedFolder() throws {
        let rain = path("RainTrainL")
        try FileManager.default.createDirectory(atPath: rain, withIntermediateDirectories: true)
        for n in ["norain-1.png", "rain-1.png", "rain-2.png"] {
            try writePNG(image(64, 64, seed: 1), to: (rain as NSString).appendingPathComponent(n))
        }
        let o = PackOptions(task: "derain_l", input: rain, output: path("r.h5"))
        expectError({ _ = try Packer.pack(o) }, naming: "rain-2.png", contains: "unpaired")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("r.h5")))
        // Once paired it packs, with LQ from the rain-* files.
        try FileManager.default.removeItem(atPath: (rain as NSString).appendingPathComponent("rain-2.png"))
        var ok = o
        ok.patchesPerImage = 2
        XCTAssertEqual(try Packer.pack(ok).count, 2)
        XCTAssertEqual(try PatchFile.open(path("r.h5")).degradation, #"{"lq":"paired_files","crop":"center_mod16"}"#)
    }

    func testCorruptImageNamesTheFileAndLeavesNothing() throws {
        let src = path("src")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try writePNG(image(100, 100, seed: 2), to: (src as NSString).appendingPathComponent("a.png"))
        var png = try Data(contentsOf: URL(fileURLWithPath: (src as NSString).appendingPathComponent("a.png")))
        png = png.prefix(png.count / 2)
        try png.write(to: URL(fileURLWithPath: (src as NSString).appendingPathComponent("b.png")))
        let o = PackOptions(task: "denoise_30", input: src, output: path("c.h5"))
        expectError({ _ = try Packer.pack(o) }, naming: "b.png", contains: "b.png")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("c.h5")))
        XCTAssertEqual(temps(dir), [])
    }

    func testSmallImagesAreSkippedWithAWarningAndACount() throws {
        let src = path("src")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try writePNG(image(40, 90, seed: 4), to: (src as NSString).appendingPathComponent("small.png"))
        try writePNG(image(100, 80, seed: 5), to: (src as NSString).appendingPathComponent("big.png"))
        var o = PackOptions(task: "denoise_50", input: src, output: path("s.h5"))
        o.patchesPerImage = 3
        var warnings: [String] = []
        let r = try Packer.pack(o, warn: { warnings.append($0) })
        XCTAssertEqual(r.count, 3)
        XCTAssertEqual(r.skipped, ["small.png"])
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("small.png") && warnings[0].contains("skipped"), warnings[0])
        XCTAssertEqual(try PatchFile.open(path("s.h5")).sources, ["big.png"])
        // Only small images: an error, no file.
        try FileManager.default.removeItem(atPath: (src as NSString).appendingPathComponent("big.png"))
        o.output = path("t.h5")
        expectError({ _ = try Packer.pack(o, warn: { _ in }) }, naming: "src", contains: "1 skipped")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("t.h5")))
    }

    func testUnknownTask() {
        let o = PackOptions(task: "sr_5", input: Self.samples, output: path("u.h5"))
        expectError({ _ = try Packer.pack(o) }, naming: "train", contains: "unknown task 'sr_5'")
    }

    /// Every numeric option out of its range is refused up front, naming the flag and the range; nothing is created.
    func testNumericOptionsOutOfRangeAreRefusedUpFront() {
        let cases: [(String, Int, (inout PackOptions) -> Void)] = [
            ("--patches-per-image: 99999999999 is not in 1...100000", 0, { $0.patchesPerImage = 99_999_999_999 }),
            ("--patches-per-image: 0 is not in 1...100000", 0, { $0.patchesPerImage = 0 }),
            ("--patch-size: -5 is not in 1...1024", 0, { $0.patchSize = -5 }),
            ("--patch-size: 0 is not in 1...1024", 0, { $0.patchSize = 0 }),
            ("--image-size: 0 is not in 1...16384", 0, { $0.kind = .images; $0.imageSize = 0 }),
            ("--image-step: 0 is not in 1...16384", 0, { $0.kind = .images; $0.imageStep = 0 }),
            ("--max-pixels: 0 is not in 1...17179869184", 0, { $0.maxPixels = 0 }),
            ("--scale: 9 is not in 1...4", 0, { $0.scale = 9 }),
        ]
        for (message, _, change) in cases {
            var o = PackOptions(task: "denoise_30", input: Self.samples, output: path("v.h5"))
            change(&o)
            expectError({ _ = try Packer.pack(o) }, naming: String(message.prefix { $0 != ":" }), contains: message)
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("v.h5")), message)
            XCTAssertEqual(temps(dir), [], message)
        }
    }

    /// More patches of one image than fit in one 64 MiB append are written in several appends, with the same
    /// patches as a smaller run's first ones (positions and noise are one sequence per image).
    func testManyPatchesPerImageAreAppendedInParts() throws {
        let src = path("one")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: (Self.samples as NSString).appendingPathComponent("astronaut.png"),
                                         toPath: (src as NSString).appendingPathComponent("astronaut.png"))
        var o = PackOptions(task: "lr4_noise30", input: src, output: path("many.h5"))
        o.patchesPerImage = 700   // 700 x (192^2 + 48^2) x 3 bytes = 82 MB: two appends
        XCTAssertEqual(try Packer.pack(o).count, 700)
        o.patchesPerImage = 8; o.output = path("few.h5")
        _ = try Packer.pack(o)
        let many = try HDF5File.open(path("many.h5")), few = try HDF5File.open(path("few.h5"))
        XCTAssertEqual(try many.shape(of: "gt"), [700, 192, 192, 3])
        for name in ["gt", "lq"] {
            let n = try few.shape(of: name).dropFirst().reduce(1, *)
            XCTAssertEqual(try many.readUInt8(name, start: [0, 0, 0, 0], count: [8] + few.shape(of: name).dropFirst()),
                           try few.readUInt8(name).values, name)
            let last = try many.readUInt8(name, start: [699, 0, 0, 0], count: [1] + few.shape(of: name).dropFirst())
            XCTAssertEqual(last.count, n)
            XCTAssertTrue(last.contains { $0 != 0 }, "the second append's patches are written")
        }
    }

    /// Makes `dir/sub` holding 96x96 PNGs `names` (pixels seeded by the name's length and index).
    func folder(_ sub: String, _ names: [String]) throws -> String {
        let d = path(sub)
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        for (i, n) in names.enumerated() {
            try writePNG(image(96, 96, seed: UInt64(n.count * 10 + i)), to: (d as NSString).appendingPathComponent(n))
        }
        return d
    }

    func testSeveralInputFoldersPackIntoOneFileInTheOrderGiven() throws {
        let a = try folder("setA/photos", ["b.png", "a.png"]), b = try folder("setB", ["c.png"])
        var o = PackOptions(task: "denoise_30", inputs: [b, a, Self.samples], output: path("all.h5"))
        o.patchesPerImage = 2
        let r = try Packer.pack(o)
        XCTAssertEqual(r.count, 2 * 7)
        XCTAssertEqual(r.packedImages, 7)
        let f = try PatchFile.open(path("all.h5"))
        XCTAssertEqual(f.sources, ["setB/c.png", "photos/a.png", "photos/b.png", "train/astronaut.png", "train/coffee.png",
                                   "train/hubble_deep_field.png", "train/retina.png"])
        try f.verify()
        // Deterministic: the same call gives a byte-identical file.
        o.output = path("again.h5")
        XCTAssertEqual(try Packer.pack(o).contentSHA256, r.contentSHA256)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("all.h5"))), try Data(contentsOf: URL(fileURLWithPath: path("again.h5"))))
        // Patches are keyed by the prefixed name, not by the folder's place: another order gives the same patches
        // of each image, in another order (so another content hash).
        o.inputs = [a, b, Self.samples]; o.output = path("other.h5")
        let r2 = try Packer.pack(o)
        XCTAssertNotEqual(r2.contentSHA256, r.contentSHA256)
        let g = try PatchFile.open(path("other.h5"))
        XCTAssertEqual(g.sources.prefix(3), ["photos/a.png", "photos/b.png", "setB/c.png"])
        var p1 = [UInt8](repeating: 0, count: 2 * f.gtPatchBytes), l1 = [UInt8](repeating: 0, count: 2 * f.lqPatchBytes)
        var p2 = p1, l2 = l1
        try p1.withUnsafeMutableBufferPointer { gt in try l1.withUnsafeMutableBufferPointer { try f.readPatches(0..<2, lq: $0, gt: gt) } }
        try p2.withUnsafeMutableBufferPointer { gt in try l2.withUnsafeMutableBufferPointer { try g.readPatches(4..<6, lq: $0, gt: gt) } }
        XCTAssertEqual(p1, p2, "setB/c.png's patches differ with the folder order")
        // One folder keeps its plain names (the single-folder file of before).
        o.inputs = [b]; o.output = path("one.h5")
        _ = try Packer.pack(o)
        XCTAssertEqual(try PatchFile.open(path("one.h5")).sources, ["c.png"])
    }

    func testSeveralInputFoldersRefuseBadFoldersNamingThem() throws {
        let a = try folder("a", ["x.png"]), twin = try folder("other/a", ["x.png"]), missing = path("missing")
        var o = PackOptions(task: "denoise_30", inputs: [a, missing], output: path("m.h5"))
        expectError({ _ = try Packer.pack(o) }, naming: "missing", contains: "no such folder")
        o.inputs = [a, a + "/"]
        expectError({ _ = try Packer.pack(o) }, naming: "a/", contains: "given twice")
        o.inputs = [a, twin]
        expectError({ _ = try Packer.pack(o) }, naming: "other/a/x.png", contains: "source name a/x.png")
        o.inputs = [a, path("other")]
        expectError({ _ = try Packer.pack(o) }, naming: "other", contains: "no images")
        o.inputs = [a, twin]; o.inputLQ = a
        expectError({ _ = try Packer.pack(o) }, naming: "a", contains: "--input-lq pairs with a single --input")
        // Folders with LQ files (a rain set) and without cannot share one file.
        let rain = try folder("rain", ["norain-1.png", "rain-1.png"])
        o.inputLQ = nil; o.inputs = [rain, a]; o.task = "sr_2"
        expectError({ _ = try Packer.pack(o) }, naming: "/a", contains: "has no LQ images while \(rain) has")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("m.h5")))
        XCTAssertEqual(temps(dir), [])
    }
}
