import AdaptIRCore
import Foundation
import XCTest

/// `PatchFile.open` refuses foreign, truncated, unknown-version and mis-shaped files with a `DataError` naming the
/// file and the attribute or dataset; `verify` catches one flipped pixel byte.
final class PatchFileTests: XCTestCase {
    var dir = ""
    var packed = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "patchfiletests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let src = (dir as NSString).appendingPathComponent("src")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        var rng = SplitMix64(seed: 11)
        let im = RGBImage(width: 120, height: 100, pixels: (0..<(120 * 100 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        try writePNG(im, to: (src as NSString).appendingPathComponent("a.png"))
        packed = (dir as NSString).appendingPathComponent("p.h5")
        var o = PackOptions(task: "sr_2", input: src, output: packed)
        o.patchesPerImage = 3
        _ = try Packer.pack(o)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func copy(_ name: String) throws -> String {
        let p = (dir as NSString).appendingPathComponent(name)
        try FileManager.default.copyItem(atPath: packed, toPath: p)
        return p
    }

    func expectOpenError(_ path: String, _ text: String, line: UInt = #line) {
        XCTAssertThrowsError(try PatchFile.open(path), line: line) { e in
            guard let d = e as? DataError else { return XCTFail("not a DataError: \(e)", line: line) }
            XCTAssertEqual(d.file, path, line: line)
            XCTAssertTrue(d.description.contains(text), "\(d) lacks '\(text)'", line: line)
        }
    }

    func testOpensAndVerifies() throws {
        let f = try PatchFile.open(packed)
        XCTAssertEqual(f.count, 3)
        XCTAssertEqual(f.scale, 2)
        XCTAssertEqual(f.gtPatchBytes, 96 * 96 * 3)
        try f.verify()
    }

    func testFlippedPixelByteFailsVerify() throws {
        let p = try copy("flip.h5")
        do {
            let h = try HDF5File.open(p, readOnly: false)
            var (shape, lq) = try h.readUInt8("lq")
            lq[1234] ^= 0x01
            try h.writeUInt8("lq", bytes: lq, shape: shape, chunk: [1, 48, 48, 3])
            h.close()
        }
        let f = try PatchFile.open(p)  // still well-formed
        XCTAssertThrowsError(try f.verify()) { e in
            let d = e as! DataError
            XCTAssertEqual(d.file, p)
            XCTAssertTrue(d.message.contains("content_sha256 mismatch"), d.message)
        }
    }

    func testForeignHDF5File() throws {
        let p = (dir as NSString).appendingPathComponent("ckpt.h5")
        try HDF5File.writeAtomically(to: p) { f in try f.write("weights/x", floats: [1, 2], shape: [2]) }
        expectOpenError(p, "attribute 'format_version': missing")
    }

    func testTruncatedAndNonHDF5Files() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: packed))
        let t = (dir as NSString).appendingPathComponent("trunc.h5")
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: t))
        XCTAssertThrowsError(try { let f = try PatchFile.open(t); try f.verify() }()) { e in
            XCTAssertEqual((e as? DataError)?.file, t, "\(e)")
        }
        let tiny = (dir as NSString).appendingPathComponent("tiny.h5")
        try data.prefix(100).write(to: URL(fileURLWithPath: tiny))
        expectOpenError(tiny, "not an HDF5 file or truncated")
        expectOpenError((dir as NSString).appendingPathComponent("missing.h5"), "no such file")
    }

    func testUnknownVersionAndKind() throws {
        let v = try copy("v2.h5")
        try HDF5File.open(v, readOnly: false).setAttribute("format_version", 2)
        expectOpenError(v, "attribute 'format_version': version 2 is not supported")
        let k = try copy("kind.h5")
        try HDF5File.open(k, readOnly: false).setAttribute("kind", "tensors")
        expectOpenError(k, "attribute 'kind': unknown kind 'tensors'")
    }

    func testMisshapedAndMissingDatasets() throws {
        let m = try copy("shape.h5")
        try HDF5File.open(m, readOnly: false).writeUInt8("lq", bytes: [UInt8](repeating: 0, count: 3 * 40 * 40 * 3), shape: [3, 40, 40, 3])
        expectOpenError(m, "dataset 'lq': shape [3, 40, 40, 3] expected [3, 48, 48, 3]")
        let c = try copy("count.h5")
        try HDF5File.open(c, readOnly: false).setAttribute("count", 4)
        expectOpenError(c, "dataset 'gt': shape [3, 96, 96, 3] expected [4, 96, 96, 3]")
        let s = try copy("sha.h5")
        try HDF5File.open(s, readOnly: false).setAttribute("content_sha256", "xyz")
        expectOpenError(s, "attribute 'content_sha256'")
    }

    /// Issue 14 item 8: an edited attribute (here the task, sr_2 -> sr_3, or the degradation) fails at open, before
    /// any training, through header_sha256; the pixel hash alone did not cover it.
    func testEditedAttributesFailAtOpen() throws {
        XCTAssertNotNil(try PatchFile.open(packed).headerSHA256)
        let t = try copy("task.h5")
        try HDF5File.open(t, readOnly: false).setAttribute("task", "sr_3")
        expectOpenError(t, "attribute 'header_sha256': the attributes changed after packing")
        let d = try copy("degradation.h5")
        try HDF5File.open(d, readOnly: false).setAttribute("degradation", "{}")
        expectOpenError(d, "attribute 'header_sha256'")
    }
}
