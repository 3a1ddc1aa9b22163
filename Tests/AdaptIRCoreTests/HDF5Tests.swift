import AdaptIRCore
import Foundation
import XCTest

final class HDF5Tests: XCTestCase {
    static let fixtures = "/work/shared/fixtures"
    static let tinyPath = fixtures + "/ipt_tiny.h5"
    static let metricsPath = fixtures + "/metrics.h5"

    private var tmpDir: String!

    override func setUpWithError() throws {
        tmpDir = (NSTemporaryDirectory() as NSString).appendingPathComponent("h5tests-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: tmpDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let tmpDir { try? FileManager.default.removeItem(atPath: tmpDir) }
    }

    private func tmp(_ name: String) -> String { (tmpDir as NSString).appendingPathComponent(name) }

    private func requireFixture(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("fixture \(path) is absent (see /work/shared/fixtures/README.md)")
        }
    }

    /// Runs `body`, expecting an HDF5Error whose description contains every string of `contains`.
    private func expectError(_ contains: [String], file: StaticString = #filePath, line: UInt = #line,
                             _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected an HDF5Error containing \(contains)", file: file, line: line)
        } catch let e as HDF5Error {
            let d = e.description
            if ProcessInfo.processInfo.environment["H5TEST_PRINT"] != nil { print("HDF5Error:", d) }
            XCTAssertFalse(d.contains("\n"), "error must be one line: \(d)", file: file, line: line)
            for s in contains { XCTAssertTrue(d.contains(s), "'\(d)' should contain '\(s)'", file: file, line: line) }
        } catch {
            XCTFail("expected HDF5Error, got \(error)", file: file, line: line)
        }
    }

    // MARK: Fixtures

    func testFixtureListingAndShapes() throws {
        try requireFixture(Self.tinyPath)
        let f = try HDF5File.open(Self.tinyPath)
        defer { f.close() }
        let names = try f.datasetNames()
        XCTAssertEqual(names.count, 281)  // h5ls -r ipt_tiny.h5 | grep -c Dataset
        XCTAssertTrue(names.contains("weights/head.0.0.weight"))
        XCTAssertTrue(names.contains("train/t2/grads/body.decoder.layers.0.adaptir.conv_weight_B"))
        XCTAssertTrue(names.contains("input"))
        XCTAssertFalse(names.contains("weights"))  // groups are not datasets
        XCTAssertEqual(try f.datasetNames(under: "weights").count, 171)
        XCTAssertTrue(try f.datasetNames(under: "/weights").allSatisfy { $0.hasPrefix("weights/") })
        XCTAssertEqual(try f.datasetNames(under: "train/t2", recursive: false).sorted(),
                       ["train/t2/loss", "train/t2/output", "train/t2/target"])
        XCTAssertEqual(try f.groups, ["chop", "eval", "eval/t2", "eval/t4", "train", "train/t2", "train/t2/grads",
                                      "train/t4", "train/t4/grads", "weights"])
        XCTAssertEqual(try f.shape(of: "weights/head.0.0.weight"), [4, 3, 3, 3])
        XCTAssertEqual(try f.shape(of: "/input"), [2, 3, 48, 48])
        XCTAssertEqual(try f.shape(of: "train/t2/loss"), [])
        XCTAssertTrue(f.exists("weights/head.0.0.bias"))
        XCTAssertFalse(f.exists("weights/nope/deeper"))
        XCTAssertEqual(f.openObjectCount, 0)
    }

    func testFixtureValuesMatchH5dump() throws {
        try requireFixture(Self.tinyPath)
        let f = try HDF5File.open(Self.tinyPath)
        // h5dump -m %.9g -d /weights/head.0.0.bias ipt_tiny.h5
        let (bShape, b) = try f.readFloats("weights/head.0.0.bias")
        XCTAssertEqual(bShape, [4])
        let expectedB: [Float] = [-0.0785905495, -0.171634793, 0.0745994523, 0.0973457098]
        for i in 0..<4 { XCTAssertEqual(b[i], expectedB[i], accuracy: 1e-9) }
        // h5dump -m %.9g -d /weights/head.0.0.weight -s 0,0,0,0 -c 1,1,1,3 and -s 3,2,2,0 -c 1,1,1,3
        let w = try f.readTensor("weights/head.0.0.weight")
        XCTAssertEqual(w.shape, [4, 3, 3, 3])
        XCTAssertEqual(w.name, "weights/head.0.0.weight")
        let wv = w.toArray()
        XCTAssertEqual(wv[0], -0.0182961393, accuracy: 1e-9)
        XCTAssertEqual(wv[1], 0.0506755374, accuracy: 1e-9)
        XCTAssertEqual(wv[2], -0.00923831109, accuracy: 1e-9)
        let base = ((3 * 3 + 2) * 3 + 2) * 3
        XCTAssertEqual(wv[base], -0.168675989, accuracy: 1e-9)
        XCTAssertEqual(wv[base + 1], -0.130434647, accuracy: 1e-9)
        XCTAssertEqual(wv[base + 2], 0.0599672832, accuracy: 1e-9)
        // Scalar dataset: h5dump -d /train/t2/loss -> 0.259462804
        let loss = try f.readTensor("train/t2/loss")
        XCTAssertEqual(loss.shape, [])
        XCTAssertEqual(loss.toArray()[0], 0.259462804, accuracy: 1e-8)
    }

    func testFixtureAttributes() throws {
        try requireFixture(Self.tinyPath)
        let f = try HDF5File.open(Self.tinyPath)
        // Variable-length UTF-8 strings written by h5py (h5dump -A).
        let desc = try XCTUnwrap(try f.attributeString("description"))
        XCTAssertTrue(desc.hasPrefix("IPT preset tiny with AdaptIR"), desc)
        let config = try XCTUnwrap(try f.attributeString("config", on: "/"))
        XCTAssertTrue(config.contains("\"n_feats\": 4"), config)
        XCTAssertNil(try f.attributeString("no_such_attribute"))
        expectError([Self.tinyPath, "attribute 'x' on 'nope'", "no such object"]) {
            _ = try f.attributeString("x", on: "nope")
        }
        expectError([Self.tinyPath, "attribute 'description' on '/'", "stored type string does not convert to Double"]) { _ = try f.attributeDouble("description") }
        try requireFixture(Self.metricsPath)
        let m = try HDF5File.open(Self.metricsPath)
        // h5dump -m %.17g -a /y_border4/psnr metrics.h5 (float64 attribute on a group)
        XCTAssertEqual(try XCTUnwrap(try m.attributeDouble("psnr", on: "y_border4")), 30.842691575792259, accuracy: 1e-12)
    }

    func testMissingDatasetAndShapeMismatchErrors() throws {
        try requireFixture(Self.tinyPath)
        let f = try HDF5File.open(Self.tinyPath)
        expectError([Self.tinyPath, "dataset 'weights/missing.weight'", "no such dataset"]) {
            _ = try f.readFloats("weights/missing.weight")
        }
        expectError(["dataset 'weights'", "is not a dataset"]) { _ = try f.shape(of: "weights") }
        expectError(["dataset 'weights/head.0.0.weight': shape [4, 3, 3, 3] expected [3, 4, 3, 3]"]) {
            _ = try f.readTensor("weights/head.0.0.weight", expectedShape: [3, 4, 3, 3])
        }
        expectError([Self.tinyPath, "read-only"]) { try f.write("x", floats: [1], shape: [1]) }
        f.close()
        XCTAssertFalse(f.isOpen)
        expectError(["file is closed"]) { _ = try f.datasetNames() }
    }

    // MARK: Opening errors

    func testBadFilesNameThePath() throws {
        let missing = tmp("missing.h5")
        expectError([missing, "no such file"]) { _ = try HDF5File.open(missing) }

        let text = tmp("notes.txt")
        try "hello, this is not HDF5\n".write(toFile: text, atomically: true, encoding: .utf8)
        expectError([text, "not an HDF5 file or truncated"]) { _ = try HDF5File.open(text) }

        // A truncated copy: the first 1000 bytes of a valid file (a fixture if present, else one written here).
        var source = Self.tinyPath
        if !FileManager.default.fileExists(atPath: source) {
            source = tmp("big.h5")
            let f = try HDF5File.create(source)
            try f.write("a", floats: [Float](repeating: 1, count: 10_000), shape: [100, 100])
            f.close()
        }
        let head = try XCTUnwrap(FileHandle(forReadingAtPath: source)).readData(ofLength: 1000)
        XCTAssertEqual(head.count, 1000)
        let truncated = tmp("truncated.h5")
        try head.write(to: URL(fileURLWithPath: truncated))
        expectError([truncated, "not an HDF5 file or truncated"]) { _ = try HDF5File.open(truncated) }

        expectError([tmp("no/such/dir/x.h5"), "cannot create"]) { _ = try HDF5File.create(tmp("no/such/dir/x.h5")) }
    }

    // MARK: Round trips

    func testFloatRoundTrip() throws {
        let path = tmp("floats.h5")
        let values: [Float] = (0..<24).map { Float($0) * 0.25 - 3 }
        let t = Tensor(shape: [2, 3, 4], values)
        do {
            let f = try HDF5File.create(path)
            try f.write("weights/body.encoder.layers.0.linear1.weight", tensor: t)  // intermediate group created
            try f.write("weights/head.0.0.bias", floats: [1.5, -2.5], shape: [2])
            try f.write("scalar", floats: [7], shape: [])
            try f.write("empty", floats: [], shape: [0, 3])
            try f.write("weights/head.0.0.bias", floats: [4, 5, 6], shape: [3])  // replace
            try f.writeUInt8("bytes", bytes: [0, 1, 255], shape: [3])
            expectError([path, "dataset 'bad'", "shape [2, 2] needs 4 values, got 3"]) {
                try f.write("bad", floats: [1, 2, 3], shape: [2, 2])
            }
            f.close()
        }
        let f = try HDF5File.open(path)
        XCTAssertEqual(try f.datasetNames(), ["bytes", "empty", "scalar", "weights/body.encoder.layers.0.linear1.weight",
                                              "weights/head.0.0.bias"])
        XCTAssertEqual(try f.groups, ["weights"])
        let r = try f.readTensor("weights/body.encoder.layers.0.linear1.weight")
        XCTAssertEqual(r.shape, [2, 3, 4])
        XCTAssertEqual(r.toArray(), values)
        XCTAssertEqual(try f.readFloats("weights/head.0.0.bias").values, [4, 5, 6])
        XCTAssertEqual(try f.readFloats("scalar").shape, [])
        XCTAssertEqual(try f.readFloats("scalar").values, [7])
        XCTAssertEqual(try f.readFloats("empty").shape, [0, 3])
        XCTAssertEqual(try f.readFloats("empty").values, [])
        // Integer storage converted to Float by HDF5.
        XCTAssertEqual(try f.readFloats("bytes").values, [0, 1, 255])
        expectError(["dataset 'weights/body.encoder.layers.0.linear1.weight': shape [2, 3, 4] expected [4, 3, 2]"]) {
            _ = try f.readTensor("weights/body.encoder.layers.0.linear1.weight", expectedShape: [4, 3, 2])
        }
    }

    func testUInt8ChunkedHyperslab() throws {
        let path = tmp("patches.h5")
        let shape = [5, 3, 8, 6]  // N, C, H, W
        let n = shape.reduce(1, *)
        let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let f = try HDF5File.create(path)
        try f.writeUInt8("gt", bytes: bytes, shape: shape, chunk: [1, 3, 8, 6])
        expectError(["dataset 'bad'", "chunk"]) { try f.writeUInt8("bad", bytes: bytes, shape: shape, chunk: [1, 3, 9, 6]) }
        expectError(["dataset 'bad'", "chunk"]) { try f.writeUInt8("bad", bytes: bytes, shape: shape, chunk: [1, 3]) }
        try f.setAttribute("scale", 2, on: "gt")
        f.close()

        let r = try HDF5File.open(path)
        XCTAssertEqual(try r.shape(of: "gt"), shape)
        XCTAssertEqual(try r.readUInt8("gt").values, bytes)
        XCTAssertEqual(try r.attributeInt("scale", on: "gt"), 2)
        let start = [2, 1, 3, 1], count = [2, 2, 4, 3]
        let got = try r.readUInt8("gt", start: start, count: count)
        var expected: [UInt8] = []
        for i in 0..<count[0] { for c in 0..<count[1] { for y in 0..<count[2] { for x in 0..<count[3] {
            let idx = (((start[0] + i) * shape[1] + start[1] + c) * shape[2] + start[2] + y) * shape[3] + start[3] + x
            expected.append(bytes[idx])
        } } } }
        XCTAssertEqual(got, expected)
        // One whole patch, into a caller buffer.
        var patch = [UInt8](repeating: 0, count: 3 * 8 * 6)
        try patch.withUnsafeMutableBufferPointer { try r.readUInt8("gt", start: [4, 0, 0, 0], count: [1, 3, 8, 6], into: $0) }
        XCTAssertEqual(patch, Array(bytes[(4 * 144)..<(5 * 144)]))
        expectError([path, "dataset 'gt'", "outside shape [5, 3, 8, 6]"]) {
            _ = try r.readUInt8("gt", start: [4, 0, 0, 0], count: [2, 3, 8, 6])
        }
        expectError(["dataset 'gt'", "wrong rank"]) { _ = try r.readUInt8("gt", start: [0], count: [1]) }
        XCTAssertEqual(r.openObjectCount, 0)
        r.close()
        let w = try HDF5File.open(path, readOnly: false)
        try w.write("floats", floats: [1, 2], shape: [2])
        expectError([path, "dataset 'floats'", "stored type float is not an integer type"]) { _ = try w.readUInt8("floats") }
    }

    func testAttributesRoundTrip() throws {
        let path = tmp("attrs.h5")
        let f = try HDF5File.create(path)
        try f.write("weights/w", floats: [1, 2], shape: [2])
        try f.setAttribute("description", "naïve UTF-8 text ✓")
        try f.setAttribute("fixed", "fixed-length", fixedLength: true)
        try f.setAttribute("step", 123_456_789_012)
        try f.setAttribute("lr", 2e-4)
        try f.setAttribute("note", "on a group", on: "weights")
        try f.setAttribute("note", "on a dataset", on: "weights/w")
        try f.setAttribute("step", 5)  // replace
        expectError([path, "attribute 'a' on 'missing'", "no such object"]) { try f.setAttribute("a", 1, on: "missing") }
        f.close()

        let r = try HDF5File.open(path)
        XCTAssertEqual(try r.attributeString("description"), "naïve UTF-8 text ✓")
        XCTAssertEqual(try r.attributeString("fixed"), "fixed-length")
        XCTAssertEqual(try r.attributeInt("step"), 5)
        XCTAssertEqual(try r.attributeDouble("step"), 5)
        XCTAssertEqual(try r.attributeDouble("lr"), 2e-4)
        XCTAssertEqual(try r.attributeString("note", on: "weights"), "on a group")
        XCTAssertEqual(try r.attributeString("note", on: "/weights/w"), "on a dataset")
        XCTAssertNil(try r.attributeInt("absent"))
        XCTAssertEqual(r.openObjectCount, 0)
        expectError(["attribute 'lr' on '/'", "stored type float does not convert to Int"]) { _ = try r.attributeInt("lr") }
    }

    // MARK: Atomic writing

    func testWriteAtomically() throws {
        let path = tmp("ckpt.h5")
        try HDF5File.writeAtomically(to: path) { f in
            try f.write("weights/a", floats: [1, 2, 3], shape: [3])
            try f.setAttribute("step", 1)
        }
        struct Boom: Error {}
        XCTAssertThrowsError(try HDF5File.writeAtomically(to: path) { f in
            try f.write("weights/a", floats: [9, 9, 9], shape: [3])
            try f.setAttribute("step", 2)
            throw Boom()
        }) { XCTAssertTrue($0 is Boom) }
        // An HDF5 failure inside the body also leaves the old file.
        XCTAssertThrowsError(try HDF5File.writeAtomically(to: path) { f in
            try f.write("weights/a", floats: [9], shape: [3])
        }) { XCTAssertTrue($0 is HDF5Error) }

        let leftovers = try FileManager.default.contentsOfDirectory(atPath: tmpDir).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
        let r = try HDF5File.open(path)
        XCTAssertEqual(try r.readFloats("weights/a").values, [1, 2, 3])
        XCTAssertEqual(try r.attributeInt("step"), 1)
        r.close()

        // A successful rewrite replaces the content.
        try HDF5File.writeAtomically(to: path) { f in try f.write("b", floats: [4], shape: [1]) }
        let r2 = try HDF5File.open(path)
        XCTAssertEqual(try r2.datasetNames(), ["b"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmpDir), ["ckpt.h5"])
    }

    /// A writer killed mid-write leaves `path.tmp-<pid>`; the next atomic write of the same path removes it when that
    /// process is gone, and leaves a live process's temporary (and other files' temporaries) alone.
    func testWriteAtomicallyRemovesTemporariesOfDeadWriters() throws {
        let path = tmp("ckpt.h5")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run(); child.waitUntilExit()
        let dead = "ckpt.h5.tmp-\(child.processIdentifier)", live = "ckpt.h5.tmp-\(getppid())"
        let other = "other.h5.tmp-\(child.processIdentifier)"
        for name in [dead, live, other] {
            XCTAssertTrue(FileManager.default.createFile(atPath: (tmpDir as NSString).appendingPathComponent(name), contents: Data([1, 2])))
        }
        try HDF5File.writeAtomically(to: path) { f in try f.write("a", floats: [1], shape: [1]) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmpDir).sorted(), ["ckpt.h5", live, other].sorted())
    }
}
