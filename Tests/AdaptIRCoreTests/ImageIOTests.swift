import AdaptIRCore
import Foundation
import XCTest

/// Fixtures written by Fixtures/make_imageio_fixtures.py (Pillow): input files and the expected RGB bytes.
enum ImageFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/imageio")

    static func path(_ file: String) -> String { directory.appendingPathComponent(file).path }

    /// The expected image `<name>.rgb` with its size from manifest.txt.
    static func expected(_ name: String) throws -> RGBImage {
        let manifest = try String(contentsOf: directory.appendingPathComponent("manifest.txt"), encoding: .utf8)
        for line in manifest.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 3, f[0] == name {
                let bytes = try Data(contentsOf: directory.appendingPathComponent("\(name).rgb"))
                return RGBImage(width: Int(f[1])!, height: Int(f[2])!, pixels: [UInt8](bytes))
            }
        }
        throw DataError(file: "manifest.txt", message: "no fixture \(name)")
    }

    /// A fresh temporary directory.
    static func tempDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("imageio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

func maxAbsDiff(_ a: RGBImage, _ b: RGBImage) -> Int {
    precondition(a.width == b.width && a.height == b.height)
    var m = 0
    for i in 0..<a.pixels.count { m = max(m, abs(Int(a.pixels[i]) - Int(b.pixels[i]))) }
    return m
}

final class ImageIOTests: XCTestCase {
    private func assertDecodesExactly(_ file: String, _ name: String, line: UInt = #line) throws {
        let got = try readImage(ImageFixtures.path(file))
        let want = try ImageFixtures.expected(name)
        XCTAssertEqual(got.width, want.width, file, line: line)
        XCTAssertEqual(got.height, want.height, file, line: line)
        XCTAssertEqual(got.pixels, want.pixels, "\(file) differs from Pillow's convert('RGB')", line: line)
    }

    func testPNGRGB8() throws { try assertDecodesExactly("rgb8.png", "rgb8") }
    func testPNGGray8() throws { try assertDecodesExactly("gray8.png", "gray8") }
    func testPNGGray1Bit() throws { try assertDecodesExactly("gray1.png", "gray1") }
    func testPNGRGBADropsAlpha() throws { try assertDecodesExactly("rgba8.png", "rgba8") }
    func testPNGGrayAlpha() throws { try assertDecodesExactly("la8.png", "la8") }
    func testPNGPalette4Bit() throws { try assertDecodesExactly("palette.png", "palette") }
    func testPNGPaletteWithTransparency() throws { try assertDecodesExactly("palette_trns.png", "palette_trns") }
    func testPNG16BitRGBKeepsHighByte() throws { try assertDecodesExactly("rgb16.png", "rgb16") }
    func testPNG16BitGrayKeepsHighByte() throws { try assertDecodesExactly("gray16.png", "gray16") }
    func testBMP24() throws { try assertDecodesExactly("rgb24.bmp", "rgb24_bmp") }

    func testPNGRoundTrip() throws {
        var rng = SplitMix64(seed: 7)
        let img = RGBImage(width: 17, height: 11, pixels: (0..<(17 * 11 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        let dir = try ImageFixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("out.png").path
        try writePNG(img, to: path)
        XCTAssertEqual(try readImage(path), img)
        // Atomic write: no temporary file is left behind; overwriting works.
        try writePNG(matlabBicubicDownscale(img, by: 2), to: path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["out.png"])
        XCTAssertEqual(try readImage(path).width, 9)
    }

    func testWritePNGIntoMissingDirectoryFails() throws {
        let path = "/nonexistent-dir-\(UUID().uuidString)/x.png"
        XCTAssertThrowsError(try writePNG(RGBImage(width: 2, height: 2), to: path)) { error in
            XCTAssertTrue("\(error)".hasPrefix(path + ": "), "\(error)")
        }
    }

    func testJPEGDecodeMatchesPillow() throws {
        let got = try readImage(ImageFixtures.path("photo.jpg"))
        let want = try ImageFixtures.expected("photo_jpg")
        XCTAssertEqual(got.width, want.width)
        XCTAssertEqual(got.height, want.height)
        XCTAssertLessThanOrEqual(maxAbsDiff(got, want), 2)
    }

    func testGrayJPEGDecodesToEqualChannels() throws {
        let got = try readImage(ImageFixtures.path("gray.jpg"))
        let want = try ImageFixtures.expected("gray_jpg")
        XCTAssertLessThanOrEqual(maxAbsDiff(got, want), 2)
        for i in stride(from: 0, to: got.pixels.count, by: 3) {
            XCTAssertTrue(got.pixels[i] == got.pixels[i + 1] && got.pixels[i] == got.pixels[i + 2])
        }
    }

    func testJPEGRoundTripQ30ChangesImageAndIsDeterministic() throws {
        let input = try readImage(ImageFixtures.path("q30_input.png"))
        let a = try jpegRoundTrip(input, quality: 30)
        let b = try jpegRoundTrip(input, quality: 30)
        XCTAssertEqual(a, b, "not deterministic")
        XCTAssertEqual(a.width, 48)
        XCTAssertGreaterThan(maxAbsDiff(a, input), 5, "q30 should visibly change the image")
        // Same codec settings as Pillow's quality=30, subsampling 4:2:0 (standard tables, libjpeg-turbo).
        XCTAssertLessThanOrEqual(maxAbsDiff(a, try ImageFixtures.expected("q30_pillow")), 2)
        // Higher quality is closer to the input.
        let q95 = try jpegRoundTrip(input, quality: 95)
        XCTAssertLessThan(meanAbsDiff(q95, input), meanAbsDiff(a, input))
        // The paper's BGR-as-RGB variant differs but keeps the channel order (red stays red).
        let swapped = try jpegRoundTrip(input, quality: 30, swapRedBlue: true)
        XCTAssertNotEqual(swapped, a)
        XCTAssertLessThan(meanAbsDiff(swapped, input), 2 * meanAbsDiff(a, input) + 1)
    }

    private func meanAbsDiff(_ a: RGBImage, _ b: RGBImage) -> Double {
        var s = 0
        for i in 0..<a.pixels.count { s += abs(Int(a.pixels[i]) - Int(b.pixels[i])) }
        return Double(s) / Double(a.pixels.count)
    }

    // ---- bad input: each gives a DataError naming the file ----

    private func assertDataError(_ path: String, contains word: String, maxPixels: Int = defaultMaxImagePixels,
                                 line: UInt = #line) {
        XCTAssertThrowsError(try readImage(path, maxPixels: maxPixels), line: line) { error in
            guard let e = error as? DataError else { return XCTFail("not a DataError: \(error)", line: line) }
            XCTAssertEqual(e.file, path, line: line)
            XCTAssertTrue("\(e)".hasPrefix("\(path): "), "\(e)", line: line)
            XCTAssertFalse("\(e)".contains("\n"), line: line)
            XCTAssertTrue(e.message.lowercased().contains(word), "\(e)", line: line)
        }
    }

    private func writeBytes(_ bytes: [UInt8], _ name: String) throws -> (URL, String) {
        let dir = try ImageFixtures.tempDir()
        let path = dir.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (dir, path)
    }

    private func fixtureBytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: ImageFixtures.path(file))))
    }

    func testMissingFile() {
        assertDataError("/nonexistent/\(UUID().uuidString).png", contains: "no such file")
    }

    func testEmptyFile() throws {
        let (dir, path) = try writeBytes([], "empty.png")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertDataError(path, contains: "empty")
    }

    func testUnknownFormat() throws {
        let (dir, path) = try writeBytes(Array("hello, not an image".utf8), "x.png")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertDataError(path, contains: "not a png, jpeg or bmp")
    }

    func testTruncatedPNG() throws {
        let b = try fixtureBytes("rgb8.png")
        let (dir, path) = try writeBytes(Array(b.prefix(b.count / 2)), "trunc.png")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertDataError(path, contains: "png")
    }

    func testCorruptPNGData() throws {
        var b = try fixtureBytes("palette.png")
        // Flip bytes inside the compressed image data (after the 8-byte signature and IHDR): CRC/zlib errors.
        let idat = b.indices.first { i in i + 4 <= b.count && b[i..<(i + 4)].elementsEqual(Array("IDAT".utf8)) }!
        for i in (idat + 6)..<(idat + 14) { b[i] ^= 0x5A }
        let (dir, path) = try writeBytes(b, "corrupt.png")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertDataError(path, contains: "corrupt png")
    }

    func testTruncatedJPEG() throws {
        let b = try fixtureBytes("photo.jpg")
        let (dir, path) = try writeBytes(Array(b.prefix(b.count * 2 / 3)), "trunc.jpg")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertDataError(path, contains: "jpeg")
    }

    func testCorruptJPEGHeader() throws {
        var b = try fixtureBytes("photo.jpg")
        for i in 4..<min(200, b.count) { b[i] = 0xFF &- b[i] }
        let (dir, path) = try writeBytes(b, "corrupt.jpg")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertDataError(path, contains: "corrupt jpeg")
    }

    func testTruncatedBMP() throws {
        let b = try fixtureBytes("rgb24.bmp")
        let (dir, path) = try writeBytes(Array(b.prefix(b.count - 10)), "trunc.bmp")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertDataError(path, contains: "truncated")
    }

    // ---- hostile files (issue: decompression bomb, scan cut short): refused from the header, or an error ----

    /// photo.jpg (56x40) with the size in its SOF marker replaced: the header claims `width` x `height`, the data
    /// is still the small image's.
    private func jpegClaiming(_ width: Int, _ height: Int) throws -> [UInt8] {
        var b = try fixtureBytes("photo.jpg")
        var i = 2
        while !(0xC0...0xC2).contains(b[i + 1]) { i += 2 + (Int(b[i + 2]) << 8 | Int(b[i + 3])) }
        b[i + 5] = UInt8(height >> 8); b[i + 6] = UInt8(height & 0xFF)
        b[i + 7] = UInt8(width >> 8); b[i + 8] = UInt8(width & 0xFF)
        return b
    }

    func testJPEGBombIsRefusedFromItsHeader() throws {
        let (dir, path) = try writeBytes(try jpegClaiming(60000, 60000), "bomb.jpg")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertDataError(path, contains: "60000x60000 = 3600000000 pixels, more than the limit of 100000000")
    }

    /// 10000x10000 is within the default limit; the data ends long before, at the EOI marker: corrupt, not grey.
    func testJPEGHeaderLargerThanItsDataIsCorrupt() throws {
        let (dir, path) = try writeBytes(try jpegClaiming(10000, 10000), "big.jpg")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertDataError(path, contains: "corrupt jpeg data")
    }

    func testJPEGCutMidScanEndingInEOIIsCorrupt() throws {
        let b = try fixtureBytes("photo.jpg")
        var i = 2
        while b[i + 1] != 0xDA { i += 2 + (Int(b[i + 2]) << 8 | Int(b[i + 3])) }
        let scan = i + 2 + (Int(b[i + 2]) << 8 | Int(b[i + 3]))
        let cut = Array(b.prefix(scan + (b.count - 2 - scan) / 2)) + [0xFF, 0xD9]
        let (dir, path) = try writeBytes(cut, "cut.jpg")
        defer { try? FileManager.default.removeItem(at: dir) }
        assertDataError(path, contains: "corrupt jpeg data")
    }

    /// The limit is on width * height, at the header, for each format; an image of exactly the limit decodes.
    func testPixelLimitOfEachFormat() throws {
        for (file, name, pixels) in [("rgb8.png", "rgb8", 13 * 7), ("photo.jpg", "photo_jpg", 56 * 40), ("rgb24.bmp", "rgb24_bmp", 7 * 5)] {
            let path = ImageFixtures.path(file)
            assertDataError(path, contains: "= \(pixels) pixels, more than the limit of \(pixels - 1) (--max-pixels)",
                            maxPixels: pixels - 1)
            let image = try readImage(path, maxPixels: pixels)
            XCTAssertEqual(image.width * image.height, pixels, file)
            if file != "photo.jpg" { XCTAssertEqual(image, try ImageFixtures.expected(name), file) }
        }
    }

    /// A PNG side alone above the limit is refused by libpng's user limits while it reads IHDR.
    func testPNGSideAboveTheLimit() throws {
        assertDataError(ImageFixtures.path("rgb8.png"), contains: "user limit", maxPixels: 12)
    }
}
