import XCTest
import AdaptIRCore
import Foundation

final class PatchReaderTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "patchreader-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    static func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var r = SplitMix64(seed: seed)
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: r.next() >> 56) }
    }

    /// A version-1 patch file of kind "patches" with `n` random patches (LQ p x p, GT ps x ps), written with
    /// `PatchFile.write`. A `version`, `kind` or `gtShape` other than the default then breaks it by hand (HDF5File):
    /// that attribute is overwritten, or `gt` is replaced by a dataset of that shape.
    func writePatches(_ name: String, n: Int, p: Int = 8, s: Int = 2, version: Int = 1, kind: String = "patches",
                      gtShape: [Int]? = nil) throws -> (path: String, lq: [UInt8], gt: [UInt8]) {
        let path = dir + "/" + name
        let g = p * s
        let lq = Self.bytes(n * p * p * 3, seed: 1), gt = Self.bytes(n * g * g * 3, seed: 2)
        let header = PatchFile.Header(task: "sr_\(s)", scale: s, patchSize: p,
                                      degradation: "{\"resize\":\"matlab_bicubic\",\"scale\":\(s)}")
        try PatchFile.write(to: path, header: header) { try $0.appendPatches(gt: gt, lq: lq, count: n) }
        if version != 1 || kind != "patches" || gtShape != nil {
            let f = try HDF5File.open(path, readOnly: false)
            defer { f.close() }
            if version != 1 { try f.setAttribute("format_version", version) }
            if kind != "patches" { try f.setAttribute("kind", kind) }
            if let gs = gtShape {
                try f.writeUInt8("gt", bytes: Array(gt.prefix(gs.reduce(1, *))), shape: gs, chunk: [1] + gs.dropFirst())
            }
        }
        return (path, lq, gt)
    }

    /// A version-1 file of kind "images": `m` sub-images of side `side`, written with `PatchFile.write`.
    func writeImages(_ name: String, m: Int, side: Int, p: Int = 8, s: Int = 2) throws -> (path: String, images: [UInt8]) {
        let path = dir + "/" + name
        let img = Self.bytes(m * side * side * 3, seed: 3)
        let header = PatchFile.Header(kind: .images, task: "sr_\(s)", scale: s, patchSize: p, imageSize: side)
        try PatchFile.write(to: path, header: header) { try $0.appendImages(img, count: m) }
        return (path, img)
    }

    /// Box-filter downscale by 2 (mean of each 2x2 block, rounded half up): a simple stand-in degradation.
    static let box2: DegradeFunction = { im, rng in
        let w = im.width / 2, h = im.height / 2
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w { for c in 0..<3 {
            var sum = 0
            for dy in 0..<2 { for dx in 0..<2 { sum += Int(im.pixels[((2 * y + dy) * im.width + 2 * x + dx) * 3 + c]) } }
            out[(y * w + x) * 3 + c] = UInt8((sum + 2) / 4)
        } } }
        _ = rng.next32()  // draws from the sample's degrade stream, like noise would
        return RGBImage(width: w, height: h, pixels: out)
    }

    /// index -> (lq, gt) floats over one epoch of every rank.
    func collect(_ path: String, ranks: Int, batch: Int, epoch: Int, degrade: DegradeFunction? = nil)
        throws -> [Int: [Float]] {
        var map: [Int: [Float]] = [:]
        for r in 0..<ranks {
            let reader = try PatchReader(path: path, ranks: ranks, rank: r, batchSize: batch, seed: 11, prefetch: 2,
                                         degrade: degrade)
            reader.start(epoch: epoch)
            var seen = 0
            while let b = try reader.nextBatch() {
                let lq = b.lq.toArray(), gt = b.gt.toArray()
                let nl = lq.count / b.indices.count, ng = gt.count / b.indices.count
                for (k, i) in b.indices.enumerated() {
                    let v = Array(lq[k * nl..<(k + 1) * nl]) + Array(gt[k * ng..<(k + 1) * ng])
                    if let old = map[i] { XCTAssertEqual(old, v, "padded repeat of \(i) differs") }
                    map[i] = v
                }
                seen += b.indices.count
            }
            XCTAssertEqual(seen, reader.sampler.samplesPerRank)
        }
        return map
    }

    func testPatchesIdenticalForOneAndTwoRanks() throws {
        let f = try writePatches("p.h5", n: 13)
        let one = try collect(f.path, ranks: 1, batch: 4, epoch: 3)
        let two = try collect(f.path, ranks: 2, batch: 3, epoch: 3)
        let three = try collect(f.path, ranks: 3, batch: 5, epoch: 3)
        XCTAssertEqual(Set(one.keys), Set(0..<13))
        XCTAssertEqual(one, two)
        XCTAssertEqual(one, three)
        XCTAssertNotEqual(one, try collect(f.path, ranks: 1, batch: 4, epoch: 4), "a new epoch draws new modes")
    }

    /// Each sample is the stored patch under the mode drawn from (seed, epoch, index), divided by 255, in CHW.
    func testPixelsAreTheAugmentedStoredPatch() throws {
        let (p, g) = (8, 16)
        let f = try writePatches("p.h5", n: 40)
        let reader = try PatchReader(path: f.path, batchSize: 2, seed: 11)
        var modes = Set<Int>()
        for i in 0..<40 {
            var rng = SampleRNG(seed: 11, epoch: 2, index: i, stream: .augment)
            let mode = Augment.randomMode(&rng)
            modes.insert(mode)
            let b = try reader.sample(i, epoch: 2)
            XCTAssertEqual(b.lq.shape, [1, 3, p, p]); XCTAssertEqual(b.gt.shape, [1, 3, g, g])
            for (t, side, src) in [(b.lq, p, Array(f.lq[i * p * p * 3..<(i + 1) * p * p * 3])),
                                   (b.gt, g, Array(f.gt[i * g * g * 3..<(i + 1) * g * g * 3]))] {
                let aug = Augment.apply(mode: mode, src, height: side, width: side).pixels
                var want = [Float](repeating: 0, count: 3 * side * side)
                for y in 0..<side { for x in 0..<side { for c in 0..<3 {
                    want[(c * side + y) * side + x] = Float(aug[(y * side + x) * 3 + c]) / 255
                } } }
                XCTAssertEqual(t.toArray(), want, "sample \(i) mode \(mode)")
            }
        }
        XCTAssertEqual(modes, Set(1...7), "every mode exercised")
        let plain = try PatchReader(path: f.path, batchSize: 2, seed: 11, augment: false).sample(4, epoch: 0)
        XCTAssertEqual(plain.lq.toArray()[1], Float(f.lq[4 * p * p * 3 + 3]) / 255)  // c 0, y 0, x 1
    }

    func testImagesKindCropAugmentDegrade() throws {
        let side = 40, (p, g) = (8, 16)
        let f = try writeImages("i.h5", m: 5, side: side)
        let one = try collect(f.path, ranks: 1, batch: 2, epoch: 1, degrade: Self.box2)
        let two = try collect(f.path, ranks: 2, batch: 2, epoch: 1, degrade: Self.box2)
        XCTAssertEqual(one, two)
        XCTAssertEqual(Set(one.keys), Set(0..<5))
        for (i, v) in one {
            let lq = Array(v.prefix(3 * p * p)), gt = Array(v.dropFirst(3 * p * p))
            // gt back to HWC bytes
            var hr = [UInt8](repeating: 0, count: g * g * 3)
            for y in 0..<g { for x in 0..<g { for c in 0..<3 {
                let v: Float = gt[(c * g + y) * g + x] * 255
                hr[(y * g + x) * 3 + c] = UInt8(v.rounded())
            } } }
            var rng = SampleRNG(seed: 0, epoch: 0, index: 0, stream: .degrade)
            let low = try Self.box2(RGBImage(width: g, height: g, pixels: hr), &rng)
            for y in 0..<p { for x in 0..<p { for c in 0..<3 {
                XCTAssertEqual(lq[(c * p + y) * p + x], Float(low.pixels[(y * p + x) * 3 + c]) / 255)
            } } }
            // gt is an augmented crop at an even (scale-aligned) position of image i
            var found = false
            let img = Array(f.images[i * side * side * 3..<(i + 1) * side * side * 3])
            search: for top in stride(from: 0, through: side - g, by: 2) {
                for left in stride(from: 0, through: side - g, by: 2) {
                    var crop = [UInt8](); crop.reserveCapacity(g * g * 3)
                    for y in 0..<g {
                        let a: Int = ((top + y) * side + left) * 3
                        crop += img[a..<(a + g * 3)]
                    }
                    for m in 1...7 where Augment.apply(mode: m, crop, height: g, width: g).pixels == hr { found = true; break search }
                }
            }
            XCTAssert(found, "sample \(i): gt is not an aligned augmented crop")
        }
    }

    func assertRefused(_ path: String, _ fragment: String, degrade: DegradeFunction? = nil,
                       file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try PatchReader(path: path, batchSize: 2, seed: 1, degrade: degrade)
            XCTFail("\(path) was accepted", file: file, line: line)
        } catch let e as DataError {
            let d = e.description
            XCTAssert(d.hasPrefix(path + ": "), "names the file: \(d)", file: file, line: line)
            XCTAssert(d.contains(fragment), "'\(d)' should mention '\(fragment)'", file: file, line: line)
            XCTAssertFalse(d.contains("\n"), file: file, line: line)
        } catch {
            XCTFail("not a DataError: \(error)", file: file, line: line)
        }
    }

    func testRefusesBadFiles() throws {
        let good = try writePatches("good.h5", n: 4)
        // truncated
        let data = try Data(contentsOf: URL(fileURLWithPath: good.path))
        let cut = dir + "/cut.h5"
        try data.prefix(data.count / 3).write(to: URL(fileURLWithPath: cut))
        assertRefused(cut, "truncated")
        // foreign
        let foreign = dir + "/foreign.h5"
        try Data("hello, not hdf5\n".utf8).write(to: URL(fileURLWithPath: foreign))
        assertRefused(foreign, "not an HDF5 file")
        assertRefused(dir + "/missing.h5", "no such file")
        // HDF5 but no attributes
        let bare = dir + "/bare.h5"
        try HDF5File.writeAtomically(to: bare) { f in try f.write("x", floats: [1], shape: [1]) }
        assertRefused(bare, "format_version")
        assertRefused(try writePatches("v2.h5", n: 4, version: 2).path, "format_version")
        assertRefused(try writePatches("kind.h5", n: 4, kind: "tensors").path, "kind")
        assertRefused(try writePatches("shape.h5", n: 4, gtShape: [4, 15, 16, 3]).path, "dataset 'gt': shape [4, 15, 16, 3]")
        assertRefused(try writeImages("img.h5", m: 2, side: 20).path, "degradation")
    }

    /// A failure on the prefetch thread (here the degradation of sample 7) reaches the consumer as a DataError naming
    /// the file; stop mid-epoch and restart are clean.
    func testErrorPropagatesAndStopIsClean() throws {
        let f = try writePatches("p.h5", n: 40, p: 16)
        let reader = try PatchReader(path: f.path, batchSize: 4, seed: 3, shuffle: false, prefetch: 2)
        reader.start(epoch: 0)
        XCTAssertNotNil(try reader.nextBatch())
        reader.stop()
        reader.start(epoch: 1)
        var n = 0
        while let b = try reader.nextBatch() { n += b.indices.count }
        XCTAssertEqual(n, 40)
        XCTAssertNil(try reader.nextBatch())
        XCTAssertEqual(reader.batchesPerEpoch, 10)
        reader.start(epoch: 2)  // abandoned with a full queue: deinit must stop the thread

        struct Boom: Error, CustomStringConvertible { var description: String { "sample 7 exploded" } }
        let img = try writeImages("i.h5", m: 12, side: 24)
        let failing = try PatchReader(path: img.path, batchSize: 2, seed: 3, shuffle: false, prefetch: 2) { im, rng in
            if im.pixels.isEmpty { throw Boom() }
            var r = SampleRNG(seed: 3, epoch: 0, index: 7, stream: .degrade)
            if rng.next() == r.next() { throw Boom() }  // only sample 7's degrade stream matches
            return try PatchReaderTests.box2(im, &rng)
        }
        failing.start(epoch: 0)
        var thrown: Error?
        var got = 0
        do { while let b = try failing.nextBatch() { got += b.indices.count } } catch { thrown = error }
        guard let e = thrown as? DataError else { return XCTFail("expected a DataError, got \(String(describing: thrown))") }
        XCTAssertEqual(e.description, img.path + ": sample 7 exploded")
        XCTAssertEqual(got, 6, "batches before the failing one were delivered")
        XCTAssertNil(try failing.nextBatch(), "the epoch ends after the error")
    }

    /// A dataset of the right shape but a float type is refused at open (every attribute is present and valid).
    func testRefusesFloatDataset() throws {
        let path = dir + "/float.h5"
        try HDF5File.writeAtomically(to: path) { f in
            for (k, v) in [("format_version", 1), ("scale", 1), ("patch_size", 2), ("count", 1), ("seed", 0)] { try f.setAttribute(k, v) }
            for (k, v) in [("kind", "patches"), ("task", "denoise_30"), ("degradation", "{}"), ("sources", "[]"),
                           ("content_sha256", String(repeating: "0", count: 64))] { try f.setAttribute(k, v) }
            try f.write("gt", floats: [Float](repeating: 0, count: 12), shape: [1, 2, 2, 3])
            try f.write("lq", floats: [Float](repeating: 0, count: 12), shape: [1, 2, 2, 3])
        }
        assertRefused(path, "not an integer type")
    }
}
