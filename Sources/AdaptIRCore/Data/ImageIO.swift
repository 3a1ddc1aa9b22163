import CJPEG
import CPNG
import Foundation

// Image files <-> RGBImage. All decoders produce 8-bit RGB; the libpng/libjpeg calls live in C helpers in the
// CPNG/CJPEG shim headers (their setjmp/longjmp error handling stays inside C), which return a message on failure.

/// The limit on an image file's width * height that `readImage` applies by default: 100 megapixels (300 MB as 8-bit
/// RGB, 1.2 GB as the float tensor eval makes of it). It is checked from the header, before any pixel memory is
/// allocated, so a small file whose header claims a huge size (a decompression bomb) is refused at once.
/// `--max-pixels` of pack, eval and restore raises or lowers it, within `maxImagePixelsRange`.
public let defaultMaxImagePixels = 100_000_000

/// The values `--max-pixels` accepts: 1 pixel up to 2^34 (16 gigapixels, 48 GiB as RGB).
public let maxImagePixelsRange = 1...(1 << 34)

/// Reads a PNG, JPEG or BMP file (the format is detected from the first bytes, not the extension) as 8-bit RGB.
/// PNG: palette, gray, gray+alpha, RGBA, 1..16-bit -> RGB (16-bit keeps the high byte; alpha is dropped, not
/// composited; no gamma correction). JPEG: gray or YCbCr -> RGB with libjpeg's defaults. BMP: uncompressed 24/32-bit.
/// An image whose header claims more than `maxPixels` pixels (width * height) is refused before anything is
/// allocated for it; the pixels are decoded straight into the returned image's storage (one full-size buffer).
/// Throws `DataError` naming `path` for a missing, unreadable, truncated, corrupt, too large or unknown file; a JPEG
/// warning about corrupt data (e.g. a scan cut short, ending in an EOI marker) is an error, not grey pixels.
public func readImage(_ path: String, maxPixels: Int = defaultMaxImagePixels) throws -> RGBImage {
    let data: Data
    do {
        data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
    } catch {
        let reason = FileManager.default.fileExists(atPath: path) ? "cannot read file" : "no such file"
        throw DataError(file: path, message: reason)
    }
    if data.count >= 8, data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
        return try readPNG(path, maxPixels: maxPixels)
    }
    if data.count >= 3, data.starts(with: [0xFF, 0xD8, 0xFF]) {
        return try decodeJPEG(data, name: path, maxPixels: maxPixels)
    }
    if data.count >= 2, data.starts(with: [0x42, 0x4D]) {
        return try decodeBMP(data, name: path, maxPixels: maxPixels)
    }
    if data.isEmpty { throw DataError(file: path, message: "empty file") }
    throw DataError(file: path, message: "not a PNG, JPEG or BMP image")
}

/// Runs a two-call C decoder (`decode(nil, &w, &h)` reads and checks the header, `decode(pixels, &w, &h)` decodes
/// into `pixels`) and returns the image, allocating its pixels once, uninitialised, between the two calls.
private func decodeTwoPass(name: String,
                           _ decode: (UnsafeMutablePointer<UInt8>?, inout UInt32, inout UInt32, inout [CChar]) -> Int32) throws -> RGBImage {
    var w: UInt32 = 0, h: UInt32 = 0
    var message = [CChar](repeating: 0, count: 256)
    guard decode(nil, &w, &h, &message) == 0 else { throw DataError(file: name, message: cMessage(message)) }
    guard w > 0, h > 0 else { throw DataError(file: name, message: "empty \(w)x\(h) image") }
    let count = Int(w) * Int(h) * 3
    let pixels = try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        guard decode(buffer.baseAddress!, &w, &h, &message) == 0 else { throw DataError(file: name, message: cMessage(message)) }
        initialized = count
    }
    return RGBImage(width: Int(w), height: Int(h), pixels: pixels)
}

/// Reads a PNG file as 8-bit RGB (conversions and `maxPixels` as `readImage`).
public func readPNG(_ path: String, maxPixels: Int = defaultMaxImagePixels) throws -> RGBImage {
    try decodeTwoPass(name: path) { pixels, w, h, message in
        adaptir_png_read_rgb(path, pixels, &w, &h, UInt64(maxPixels), &message, message.count)
    }
}

/// Writes `image` as an 8-bit RGB PNG at `path`, atomically: to `path.tmp-<pid>` first, then renamed over `path`,
/// so a reader never sees a partial file. Throws `DataError` naming `path`.
public func writePNG(_ image: RGBImage, to path: String) throws {
    let tmp = "\(path).tmp-\(getpid())"
    var message = [CChar](repeating: 0, count: 256)
    let rc = image.pixels.withUnsafeBufferPointer { px in
        adaptir_png_write_rgb(tmp, px.baseAddress, UInt32(image.width), UInt32(image.height), &message, message.count)
    }
    if rc != 0 {
        unlink(tmp)
        throw DataError(file: path, message: cMessage(message))
    }
    if rename(tmp, path) != 0 {
        let reason = String(cString: strerror(errno))
        unlink(tmp)
        throw DataError(file: path, message: "rename failed: \(reason)")
    }
}

/// Decodes JPEG bytes to 8-bit RGB (`maxPixels` and corrupt data as `readImage`); `name` is the file named in a
/// `DataError`.
public func decodeJPEG(_ data: Data, name: String, maxPixels: Int = defaultMaxImagePixels) throws -> RGBImage {
    try data.withUnsafeBytes { (buf: UnsafeRawBufferPointer) in
        let p = buf.bindMemory(to: UInt8.self).baseAddress
        return try decodeTwoPass(name: name) { pixels, w, h, message in
            adaptir_jpeg_decode_rgb(p, UInt(buf.count), pixels, &w, &h, UInt64(maxPixels), &message, message.count)
        }
    }
}

/// Encodes `image` as a baseline JPEG at `quality` 1...100 with libjpeg's defaults, as OpenCV's `imencode`
/// (standard tables scaled by `jpeg_set_quality`, YCbCr 4:2:0, islow DCT, no optimised Huffman tables).
public func encodeJPEG(_ image: RGBImage, quality: Int) throws -> Data {
    precondition((1...100).contains(quality), "encodeJPEG: quality \(quality) outside 1...100")
    precondition(image.width > 0 && image.height > 0, "encodeJPEG: empty \(image.width)x\(image.height) image")
    var out: UnsafeMutablePointer<UInt8>? = nil
    var size: UInt = 0
    var message = [CChar](repeating: 0, count: 256)
    let rc = image.pixels.withUnsafeBufferPointer { px in
        adaptir_jpeg_encode_rgb(px.baseAddress, UInt32(image.width), UInt32(image.height), Int32(quality),
                                &out, &size, &message, message.count)
    }
    guard rc == 0, let out else { throw DataError(file: "<jpeg encoder>", message: cMessage(message)) }
    defer { free(out) }
    return Data(bytes: out, count: Int(size))
}

/// JPEG compression artefacts: `decode(encode(image, quality))`, deterministic.
///
/// With `swapRedBlue` the image's R and B are exchanged before encoding and after decoding. This reproduces the
/// AdaptIR training code, which hands an RGB array to OpenCV's `imencode` (which expects BGR), so luma/chroma are
/// computed with R and B swapped (Y = 0.299 B + 0.587 G + 0.114 R); the channel order of the result is unchanged.
public func jpegRoundTrip(_ image: RGBImage, quality: Int, swapRedBlue: Bool = false) throws -> RGBImage {
    let input = swapRedBlue ? swappingRedBlue(image) : image
    let decoded = try decodeJPEG(try encodeJPEG(input, quality: quality), name: "<jpeg round trip>")
    return swapRedBlue ? swappingRedBlue(decoded) : decoded
}

/// The image with channels 0 and 2 exchanged (RGB <-> BGR).
public func swappingRedBlue(_ image: RGBImage) -> RGBImage {
    var out = image
    out.pixels.withUnsafeMutableBufferPointer { p in
        var i = 0
        while i + 2 < p.count {
            p.swapAt(i, i + 2)
            i += 3
        }
    }
    return out
}

/// The text of a NUL-terminated C message buffer.
func cMessage(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// Decodes an uncompressed Windows BMP (BI_RGB, 24 or 32 bits per pixel, bottom-up or top-down) to RGB, reading
/// the file's bytes in place; a header claiming more than `maxPixels` pixels is refused before allocating.
func decodeBMP(_ data: Data, name: String, maxPixels: Int = defaultMaxImagePixels) throws -> RGBImage {
    try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> RGBImage in
        let bytes = raw.bindMemory(to: UInt8.self)
        func u32(_ o: Int) -> UInt32 {
            UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
        }
        func u16(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
        guard bytes.count >= 54 else { throw DataError(file: name, message: "truncated BMP header") }
        let offset = Int(u32(10))
        let headerSize = Int(u32(14))
        guard headerSize >= 40 else { throw DataError(file: name, message: "unsupported BMP header (size \(headerSize))") }
        let width = Int(Int32(bitPattern: u32(18)))
        let rawHeight = Int(Int32(bitPattern: u32(22)))
        let bpp = u16(28)
        let compression = u32(30)
        guard compression == 0 || (compression == 3 && bpp == 32) else {
            throw DataError(file: name, message: "compressed BMP (compression \(compression)) is not supported")
        }
        guard bpp == 24 || bpp == 32 else {
            throw DataError(file: name, message: "\(bpp)-bit BMP is not supported (only 24 and 32)")
        }
        let height = abs(rawHeight)
        guard width > 0, height > 0, width <= 1 << 16, height <= 1 << 16 else {
            throw DataError(file: name, message: "bad BMP size \(width)x\(rawHeight)")
        }
        guard width * height <= maxPixels else {
            throw DataError(file: name, message: "BMP header claims \(width)x\(height) = \(width * height) pixels, more than the limit of \(maxPixels) (--max-pixels)")
        }
        let bytesPerPixel = bpp / 8
        let stride = (width * bytesPerPixel + 3) & ~3
        guard offset >= 54, offset + stride * (height - 1) + width * bytesPerPixel <= bytes.count else {
            throw DataError(file: name, message: "truncated BMP pixel data")
        }
        let out = [UInt8](unsafeUninitializedCapacity: width * height * 3) { o, initialized in
            for y in 0..<height {
                let srcRow = rawHeight > 0 ? height - 1 - y : y
                var s = offset + srcRow * stride
                var d = y * width * 3
                for _ in 0..<width {
                    o[d] = bytes[s + 2]
                    o[d + 1] = bytes[s + 1]
                    o[d + 2] = bytes[s]
                    s += bytesPerPixel
                    d += 3
                }
            }
            initialized = width * height * 3
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}
