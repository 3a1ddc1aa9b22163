/// An 8-bit RGB image, stored HWC (row-major rows, three interleaved channels per pixel): the byte of channel `c`
/// of pixel (y, x) is `pixels[(y * width + x) * 3 + c]`.
public struct RGBImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    /// Wraps existing pixels; `pixels.count` must be `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage: \(pixels.count) bytes for \(width)x\(height)x3")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A black image.
    public init(width: Int, height: Int) {
        self.init(width: width, height: height, pixels: [UInt8](repeating: 0, count: width * height * 3))
    }

    /// The byte of channel `c` at row `y`, column `x`.
    @inlinable public subscript(y: Int, x: Int, c: Int) -> UInt8 {
        get { pixels[(y * width + x) * 3 + c] }
        set { pixels[(y * width + x) * 3 + c] = newValue }
    }

    /// The sub-image of `width` x `height` pixels whose top-left corner is (`x`, `y`).
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> RGBImage {
        precondition(x >= 0 && y >= 0 && w >= 0 && h >= 0 && x + w <= width && y + h <= height,
                     "RGBImage.cropped: \(w)x\(h) at (\(x), \(y)) outside \(width)x\(height)")
        var out = [UInt8](repeating: 0, count: w * h * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for r in 0..<h {
                    let s = ((y + r) * width + x) * 3
                    for i in 0..<(w * 3) { dst[r * w * 3 + i] = src[s + i] }
                }
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }

    /// The top-left crop to a multiple of `s` in both sides (BasicSR's `mod_crop`): h - h % s by w - w % s.
    public func modCropped(_ s: Int) -> RGBImage {
        precondition(s >= 1, "RGBImage.modCropped: scale \(s)")
        return cropped(x: 0, y: 0, width: width - width % s, height: height - height % s)
    }
}
