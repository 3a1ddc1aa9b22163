import Foundation

// Synthetic degradations of spec 4.2: MATLAB bicubic downscaling, Gaussian noise with uint8 truncation, JPEG, and
// their chains (LR4&Noise30, LR4&JPEG30: downsample first, then noise or JPEG on the LR image).

/// MATLAB's cubic kernel (Keys, a = -0.5): 1.5|x|^3 - 2.5|x|^2 + 1 for |x| <= 1,
/// -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 for 1 < |x| <= 2, else 0.
@inline(__always) private func matlabCubic(_ x: Double) -> Double {
    let a = abs(x), a2 = a * a, a3 = a2 * a
    if a <= 1 { return 1.5 * a3 - 2.5 * a2 + 1 }
    if a <= 2 { return -0.5 * a3 + 2.5 * a2 - 4 * a + 2 }
    return 0
}

/// MATLAB imresize `contributions` for a downscale by integer `s` along one axis of `n` samples: for output o
/// (1-based) the centre u = o*s + (1 - s)/2, taps at left = floor(u - 2s) + j, j = 0 ..< 4s + 2, weights
/// (1/s) cubic((u - i)/s) normalised to sum 1 (antialiasing: the kernel is stretched by s), indices mirrored at the
/// borders (symmetric padding). Returns (taps per output, flat 0-based indices, flat weights).
///
/// With `upscale` the same for an enlargement by s (no antialiasing, kernel width 4): u = o/s + (1 - 1/s)/2,
/// left = floor(u - 2), 6 taps, weights cubic(u - i), normalised and mirrored alike.
private func bicubicContributions(inLength n: Int, outLength m: Int, scale s: Int, upscale: Bool = false)
    -> (taps: Int, indices: [Int], weights: [Float]) {
    let sd = Double(s)
    let taps = upscale ? 6 : 4 * s + 2
    var indices = [Int](repeating: 0, count: m * taps)
    var weights = [Float](repeating: 0, count: m * taps)
    var w = [Double](repeating: 0, count: taps)
    for o in 0..<m {
        let u = upscale ? Double(o + 1) / sd + 0.5 * (1 - 1 / sd) : Double(o + 1) * sd + 0.5 * (1 - sd)
        let left = (upscale ? u - 2 : u - 2 * sd).rounded(.down)
        var sum = 0.0
        for j in 0..<taps {
            let x = u - (left + Double(j))
            w[j] = upscale ? matlabCubic(x) : matlabCubic(x / sd) / sd
            sum += w[j]
        }
        for j in 0..<taps {
            let i1 = Int(left) + j                                  // 1-based, may be outside 1...n
            var m0 = (i1 - 1) % (2 * n)
            if m0 < 0 { m0 += 2 * n }
            indices[o * taps + j] = m0 < n ? m0 : 2 * n - 1 - m0   // symmetric: ..., 2, 1, 1, 2, ..., n, n, ...
            weights[o * taps + j] = Float(w[j] / sum)
        }
    }
    return (taps, indices, weights)
}

/// MATLAB rounding of a resampled value to uint8: saturate to 0...255, round half away from zero.
@inline(__always) private func matlabUInt8(_ v: Float) -> UInt8 {
    if v <= 0 { return 0 }
    if v >= 255 { return 255 }
    return UInt8(v + 0.5)
}

/// MATLAB `imresize(img, 1/s, 'bicubic')` on a uint8 RGB image (antialiased cubic, see `bicubicContributions`).
/// Output size ceil(h/s) x ceil(w/s). As MATLAB (which resizes the dimension with the smaller scale first, rows on
/// a tie, and returns uint8 from each pass), rows are resampled first and rounded/saturated to uint8, then columns.
/// Images are normally cropped to a multiple of s first (`RGBImage.modCropped`), as for the official LR sets.
public func matlabBicubicDownscale(_ image: RGBImage, by scale: Int) -> RGBImage {
    precondition(scale >= 1, "matlabBicubicDownscale: scale \(scale) must be >= 1")
    precondition(image.width > 0 && image.height > 0, "matlabBicubicDownscale: empty image")
    if scale == 1 { return image }
    let h = image.height, w = image.width
    let oh = (h + scale - 1) / scale, ow = (w + scale - 1) / scale
    return bicubicResample(image, rows: bicubicContributions(inLength: h, outLength: oh, scale: scale),
                           cols: bicubicContributions(inLength: w, outLength: ow, scale: scale), outHeight: oh, outWidth: ow)
}

/// MATLAB `imresize(img, s, 'bicubic')` on a uint8 RGB image: the plain bicubic enlargement that SR papers report as
/// "Bicubic" (output h*s x w*s, rows first, uint8 after each pass, as `matlabBicubicDownscale`).
public func matlabBicubicUpscale(_ image: RGBImage, by scale: Int) -> RGBImage {
    precondition(scale >= 1, "matlabBicubicUpscale: scale \(scale) must be >= 1")
    precondition(image.width > 0 && image.height > 0, "matlabBicubicUpscale: empty image")
    if scale == 1 { return image }
    let oh = image.height * scale, ow = image.width * scale
    return bicubicResample(image, rows: bicubicContributions(inLength: image.height, outLength: oh, scale: scale, upscale: true),
                           cols: bicubicContributions(inLength: image.width, outLength: ow, scale: scale, upscale: true),
                           outHeight: oh, outWidth: ow)
}

/// The two separable passes of MATLAB's imresize with precomputed contributions: rows, rounded to uint8, then columns.
private func bicubicResample(_ image: RGBImage, rows: (taps: Int, indices: [Int], weights: [Float]),
                             cols: (taps: Int, indices: [Int], weights: [Float]), outHeight oh: Int, outWidth ow: Int) -> RGBImage {
    let w = image.width
    let rowLen = w * 3
    // Pass 1: rows. Each output row is a weighted sum of whole input rows (contiguous, vectorisable).
    var mid = [UInt8](repeating: 0, count: oh * rowLen)
    var acc = [Float](repeating: 0, count: rowLen)
    image.pixels.withUnsafeBufferPointer { src in
        mid.withUnsafeMutableBufferPointer { dst in
            acc.withUnsafeMutableBufferPointer { a in
                let taps = rows.taps
                for o in 0..<oh {
                    for i in 0..<rowLen { a[i] = 0 }
                    for j in 0..<taps {
                        let wt = rows.weights[o * taps + j]
                        if wt == 0 { continue }
                        let base = rows.indices[o * taps + j] * rowLen
                        for i in 0..<rowLen { a[i] += wt * Float(src[base + i]) }
                    }
                    let d = o * rowLen
                    for i in 0..<rowLen { dst[d + i] = matlabUInt8(a[i]) }
                }
            }
        }
    }
    // Pass 2: columns.
    var out = [UInt8](repeating: 0, count: oh * ow * 3)
    mid.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            cols.indices.withUnsafeBufferPointer { ci in
                cols.weights.withUnsafeBufferPointer { cw in
                    let taps = cols.taps
                    for y in 0..<oh {
                        let s = y * rowLen
                        for o in 0..<ow {
                            var r: Float = 0, g: Float = 0, b: Float = 0
                            for j in 0..<taps {
                                let wt = cw[o * taps + j]
                                let p = s + ci[o * taps + j] * 3
                                r += wt * Float(src[p]); g += wt * Float(src[p + 1]); b += wt * Float(src[p + 2])
                            }
                            let d = (y * ow + o) * 3
                            dst[d] = matlabUInt8(r); dst[d + 1] = matlabUInt8(g); dst[d + 2] = matlabUInt8(b)
                        }
                    }
                }
            }
        }
    }
    return RGBImage(width: ow, height: oh, pixels: out)
}

/// Adds per-value offsets as the training code does: out = uint8(clip(x + noise, 0, 255)), where the uint8
/// conversion TRUNCATES (numpy astype): 100.7 -> 100. `noise.count` must equal `image.pixels.count`.
public func addNoiseTruncating(_ image: RGBImage, noise: [Double]) -> RGBImage {
    precondition(noise.count == image.pixels.count,
                 "addNoiseTruncating: \(noise.count) noise values for \(image.pixels.count) bytes")
    var out = image
    out.pixels.withUnsafeMutableBufferPointer { p in
        noise.withUnsafeBufferPointer { n in
            for i in 0..<p.count {
                let v = min(max(Double(p[i]) + n[i], 0), 255)
                p[i] = UInt8(v)  // truncation toward zero; v >= 0
            }
        }
    }
    return out
}

/// Standard normal samples, two per Box-Muller draw from 53-bit uniforms:
/// z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2), u1 in (0, 1], u2 in [0, 1).
public func gaussianSamples<G: RandomNumberGenerator>(_ count: Int, rng: inout G) -> [Double] {
    var out = [Double](repeating: 0, count: count)
    var i = 0
    while i < count {
        let u1 = Double((rng.next() >> 11) + 1) * 0x1p-53
        let u2 = Double(rng.next() >> 11) * 0x1p-53
        let r = (-2 * Foundation.log(u1)).squareRoot()
        out[i] = r * Foundation.cos(2 * Double.pi * u2)
        if i + 1 < count { out[i + 1] = r * Foundation.sin(2 * Double.pi * u2) }
        i += 2
    }
    return out
}

/// Gaussian noise of standard deviation `sigma` on the 0-255 scale, clipped and truncated to uint8 as spec 4.2:
/// out = uint8(clip(x + sigma * n, 0, 255)), n ~ N(0, 1) i.i.d. per value (from `rng`, deterministic for a seed).
public func addGaussianNoise<G: RandomNumberGenerator>(_ image: RGBImage, sigma: Float, rng: inout G) -> RGBImage {
    precondition(sigma >= 0, "addGaussianNoise: sigma \(sigma) < 0")
    var n = gaussianSamples(image.pixels.count, rng: &rng)
    let s = Double(sigma)
    for i in 0..<n.count { n[i] *= s }
    return addNoiseTruncating(image, noise: n)
}

/// A synthetic degradation (spec 4.2), applied to a clean uint8 RGB image.
public enum Degradation: Sendable, Equatable {
    /// MATLAB antialiased bicubic downscale by `scale` (`matlabBicubicDownscale`).
    case bicubic(scale: Int)
    /// Gaussian noise of `sigma` on 0-255, clip, truncation to uint8 (`addGaussianNoise`).
    case noise(sigma: Float)
    /// JPEG at `quality`, with R and B swapped around the codec as the AdaptIR code does through OpenCV
    /// (`jpegRoundTrip(_:quality:swapRedBlue: true)`).
    case jpeg(quality: Int)
    /// The degradations applied in order (e.g. downsample, then noise on the LR image).
    case chain([Degradation])

    /// Applies the degradation; `rng` is used only by noise.
    public func apply<G: RandomNumberGenerator>(_ image: RGBImage, rng: inout G) throws -> RGBImage {
        switch self {
        case .bicubic(let s): return matlabBicubicDownscale(image, by: s)
        case .noise(let sigma): return addGaussianNoise(image, sigma: sigma, rng: &rng)
        case .jpeg(let q): return try jpegRoundTrip(image, quality: q, swapRedBlue: true)
        case .chain(let steps):
            var x = image
            for step in steps { x = try step.apply(x, rng: &rng) }
            return x
        }
    }

    /// The total downscale factor (LQ side = GT side / scale).
    public var scale: Int {
        switch self {
        case .bicubic(let s): return s
        case .noise, .jpeg: return 1
        case .chain(let steps): return steps.reduce(1) { $0 * $1.scale }
        }
    }

    /// The degradation of a synthetic task name: "sr_2", "sr_3", "sr_4" (bicubic); "denoise_30", "denoise_50" (any
    /// sigma: noise); "jpeg_30" (any quality 1...100); "lr4_noise30", "lr4_jpeg30" (and other "lr{s}_noise{sigma}",
    /// "lr{s}_jpeg{q}": downsample, then noise or JPEG). Nil for unknown names and for the real paired tasks
    /// (derain, low light), which have no synthetic degradation.
    public static func forTask(_ task: String) -> Degradation? {
        func number(_ s: Substring) -> Int? { s.isEmpty || !s.allSatisfy(\.isASCII) ? nil : Int(s) }
        let t = task.lowercased()
        if t.hasPrefix("sr_"), let s = number(t.dropFirst(3)), (2...4).contains(s) { return .bicubic(scale: s) }
        if t.hasPrefix("denoise_"), let sg = number(t.dropFirst(8)), sg > 0, sg <= 255 {
            return .noise(sigma: Float(sg))
        }
        if t.hasPrefix("jpeg_"), let q = number(t.dropFirst(5)), (1...100).contains(q) { return .jpeg(quality: q) }
        if t.hasPrefix("lr"), let us = t.firstIndex(of: "_"), let s = number(t[t.index(t.startIndex, offsetBy: 2)..<us]),
           (2...4).contains(s) {
            let rest = t[t.index(after: us)...]
            if rest.hasPrefix("noise"), let sg = number(rest.dropFirst(5)), sg > 0, sg <= 255 {
                return .chain([.bicubic(scale: s), .noise(sigma: Float(sg))])
            }
            if rest.hasPrefix("jpeg"), let q = number(rest.dropFirst(4)), (1...100).contains(q) {
                return .chain([.bicubic(scale: s), .jpeg(quality: q)])
            }
        }
        return nil
    }

    /// The parameters as a one-line JSON object with a fixed key order, for the patch file's `degradation`
    /// attribute, e.g. {"resize":"matlab_bicubic","scale":4,"noise_sigma":30,"noise":"uint8_trunc"}.
    public var parametersJSON: String {
        var fields: [String] = []
        func collect(_ d: Degradation) {
            switch d {
            case .bicubic(let s): fields += ["\"resize\":\"matlab_bicubic\"", "\"scale\":\(s)"]
            case .noise(let sg):
                let v = sg == sg.rounded() ? String(Int(sg)) : String(sg)
                fields += ["\"noise_sigma\":\(v)", "\"noise\":\"uint8_trunc\""]
            case .jpeg(let q): fields += ["\"jpeg_quality\":\(q)", "\"jpeg_channels\":\"rgb_as_bgr\""]
            case .chain(let steps): steps.forEach(collect)
            }
        }
        collect(self)
        return "{" + fields.joined(separator: ",") + "}"
    }
}
