import Foundation

// Image-quality metrics of the AdaptIR evaluation (spec 5.2, `utils/val_utils.py: compute_psnr_ssim`), in Double.

/// PSNR (dB) and SSIM of one restored image against its ground truth.
public struct ImageQuality: Sendable, Equatable {
    public var psnr: Double
    public var ssim: Double
    public init(psnr: Double, ssim: Double) {
        self.psnr = psnr
        self.ssim = ssim
    }
}

/// Images prepared for the metrics: `planes` channel planes of `height` x `width` Doubles on the 0..255 scale.
public struct MetricImage: Sendable {
    public let planes: [[Double]]
    public let height: Int
    public let width: Int
}

/// Spec 5.2 steps 1-3 for an HWC image [H, W, 3] in [0, 1]:
/// v = round(clip(x * 255, 0, 255)) with `x * 255` in Float (as the reference, which multiplies the float32 torch
/// tensor) and **round half to even** (the reference's `np.round`); clamping the output to [0, 1] first is the
/// same thing. With `yChannel`, Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 (MATLAB BT.601) as Double, not
/// re-rounded, evaluated in the reference's order (`rgb2ycbcr(v / 255) * 255`, which scales by 255 back and forth).
/// Then `border` pixels are cropped on every side.
public func metricImage(_ image: Tensor, yChannel: Bool, border: Int) -> MetricImage {
    precondition(image.rank == 3 && image.shape[2] == 3, "metricImage: image must be HWC [H, W, 3], got \(image.shape)")
    let H = image.shape[0], W = image.shape[1]
    precondition(border >= 0 && H > 2 * border && W > 2 * border,
                 "metricImage: border \(border) leaves nothing of a \(H)x\(W) image")
    let h = H - 2 * border, w = W - 2 * border
    let p = image.data
    var q = [[Double]](repeating: [Double](repeating: 0, count: h * w), count: 3)
    for c in 0..<3 {
        q[c].withUnsafeMutableBufferPointer { dst in
            for r in 0..<h {
                for x in 0..<w {
                    let v = min(max(p[((r + border) * W + x + border) * 3 + c] * 255, 0), 255)
                    dst[r * w + x] = Double(v).rounded(.toNearestOrEven)
                }
            }
        }
    }
    guard yChannel else { return MetricImage(planes: q, height: h, width: w) }
    var y = [Double](repeating: 0, count: h * w)
    for i in 0..<(h * w) {
        let R = q[0][i] / 255.0 * 255.0, G = q[1][i] / 255.0 * 255.0, B = q[2][i] / 255.0 * 255.0
        y[i] = ((R * 65.481 + G * 128.553 + B * 24.966) / 255.0 + 16.0) / 255.0 * 255.0
    }
    return MetricImage(planes: [y], height: h, width: w)
}

/// PSNR = 20 log10(255 / sqrt(MSE)) over every value of every plane; `.infinity` when MSE = 0.
public func psnr(_ a: MetricImage, _ b: MetricImage) -> Double {
    precondition(a.height == b.height && a.width == b.width && a.planes.count == b.planes.count,
                 "psnr: images differ in size")
    var sum = 0.0, n = 0
    for c in 0..<a.planes.count {
        let x = a.planes[c], y = b.planes[c]
        for i in 0..<x.count { let d = x[i] - y[i]; sum += d * d }
        n += x.count
    }
    let mse = sum / Double(n)
    if mse == 0 { return .infinity }
    return 20 * log10(255.0 / mse.squareRoot())
}

/// `cv2.getGaussianKernel(11, 1.5)`: g_i = exp(-(i-5)^2 / (2 * 1.5^2)), normalised to sum 1.
let ssimGaussian: [Double] = {
    let n = 11, sigma = 1.5
    let scale2 = -0.5 / (sigma * sigma)
    var g = (0..<n).map { i -> Double in let x = Double(i) - Double(n - 1) * 0.5; return exp(scale2 * x * x) }
    let s = 1.0 / g.reduce(0, +)
    for i in 0..<n { g[i] *= s }
    return g
}()

/// The 11x11 Gaussian filter (outer product of `ssimGaussian`) of one plane, kept only on [5, h-5) x [5, w-5).
/// The reference filters the whole plane (`cv2.filter2D`, BORDER_REFLECT_101) and then crops 5 px per side; every
/// kept pixel's 11x11 neighbourhood lies inside the plane, so the border mode never matters and the separable
/// 'valid' filter computes the same values (up to Double round-off).
private func gaussianValid(_ x: UnsafePointer<Double>, h: Int, w: Int, tmp: UnsafeMutablePointer<Double>,
                           out: UnsafeMutablePointer<Double>) {
    let oh = h - 10, ow = w - 10
    ssimGaussian.withUnsafeBufferPointer { gb in
        let g = gb.baseAddress!
        // rows: tmp[r, x] = sum_k g[k] x[r, x + k], for all r, x < ow
        for r in 0..<h {
            let src = x + r * w, dst = tmp + r * ow
            for c in 0..<ow {
                var s = 0.0
                for k in 0..<11 { s += g[k] * src[c + k] }
                dst[c] = s
            }
        }
        // columns: out[r, c] = sum_k g[k] tmp[r + k, c]
        for r in 0..<oh {
            let dst = out + r * ow
            for c in 0..<ow { dst[c] = 0 }
            for k in 0..<11 {
                let gk = g[k], src = tmp + (r + k) * ow
                for c in 0..<ow { dst[c] += gk * src[c] }
            }
        }
    }
}

/// Mean SSIM map of two planes (spec 5.2 step 5, BasicSR/`calculate_ssim`): with the Gaussian filter F,
/// mu1 = F(x), mu2 = F(y), s11 = F(x^2) - mu1^2, s22 = F(y^2) - mu2^2, s12 = F(xy) - mu1 mu2,
/// map = ((2 mu1 mu2 + C1)(2 s12 + C2)) / ((mu1^2 + mu2^2 + C1)(s11 + s22 + C2)), C1 = (0.01*255)^2,
/// C2 = (0.03*255)^2, on [5, h-5) x [5, w-5). Returns the sum of the map and its number of values.
private func ssimMapSum(_ a: [Double], _ b: [Double], h: Int, w: Int) -> (sum: Double, count: Int) {
    let C1 = (0.01 * 255) * (0.01 * 255), C2 = (0.03 * 255) * (0.03 * 255)
    let oh = h - 10, ow = w - 10, n = oh * ow
    let tmp = UnsafeMutablePointer<Double>.allocate(capacity: h * ow)
    let maps = UnsafeMutablePointer<Double>.allocate(capacity: 5 * n)
    let sq = UnsafeMutablePointer<Double>.allocate(capacity: h * w)
    defer { tmp.deallocate(); maps.deallocate(); sq.deallocate() }
    a.withUnsafeBufferPointer { ab in
        b.withUnsafeBufferPointer { bb in
            let x = ab.baseAddress!, y = bb.baseAddress!
            gaussianValid(x, h: h, w: w, tmp: tmp, out: maps)
            gaussianValid(y, h: h, w: w, tmp: tmp, out: maps + n)
            for i in 0..<(h * w) { sq[i] = x[i] * x[i] }
            gaussianValid(sq, h: h, w: w, tmp: tmp, out: maps + 2 * n)
            for i in 0..<(h * w) { sq[i] = y[i] * y[i] }
            gaussianValid(sq, h: h, w: w, tmp: tmp, out: maps + 3 * n)
            for i in 0..<(h * w) { sq[i] = x[i] * y[i] }
            gaussianValid(sq, h: h, w: w, tmp: tmp, out: maps + 4 * n)
        }
    }
    var sum = 0.0
    for i in 0..<n {
        let mu1 = maps[i], mu2 = maps[n + i]
        let mu1Sq = mu1 * mu1, mu2Sq = mu2 * mu2, mu12 = mu1 * mu2
        let s11 = maps[2 * n + i] - mu1Sq, s22 = maps[3 * n + i] - mu2Sq, s12 = maps[4 * n + i] - mu12
        sum += ((2 * mu12 + C1) * (2 * s12 + C2)) / ((mu1Sq + mu2Sq + C1) * (s11 + s22 + C2))
    }
    return (sum, n)
}

/// SSIM (spec 5.2 step 5): the mean of the SSIM map; for RGB each channel is filtered independently and the mean
/// is over H x W x 3. Needs planes of at least 11 x 11.
public func ssim(_ a: MetricImage, _ b: MetricImage) -> Double {
    precondition(a.height == b.height && a.width == b.width && a.planes.count == b.planes.count,
                 "ssim: images differ in size")
    precondition(a.height >= 11 && a.width >= 11, "ssim: needs at least 11x11 pixels, got \(a.height)x\(a.width)")
    var sum = 0.0, n = 0
    for c in 0..<a.planes.count {
        let r = ssimMapSum(a.planes[c], b.planes[c], h: a.height, w: a.width)
        sum += r.sum
        n += r.count
    }
    return sum / Double(n)
}

/// AdaptIR's `compute_psnr_ssim` (spec 5.2) for HWC images [H, W, 3] in [0, 1]: quantise both to 0..255
/// (round half to even), optionally convert to Y (BT.601, Double), crop `border` px per side, then
/// PSNR = 20 log10(255 / sqrt(MSE)) (infinite when equal) and the Gaussian SSIM (11x11, sigma 1.5).
public func psnrSSIM(output: Tensor, target: Tensor, yChannel: Bool, border: Int) -> ImageQuality {
    precondition(output.shape == target.shape, "psnrSSIM: output \(output.shape) vs target \(target.shape)")
    let a = metricImage(output, yChannel: yChannel, border: border)
    let b = metricImage(target, yChannel: yChannel, border: border)
    return ImageQuality(psnr: psnr(a, b), ssim: ssim(a, b))
}

/// [C, H, W] -> [H, W, C] copy (model outputs are CHW; the metrics take HWC like the reference).
public func chwToHWC(_ t: Tensor) -> Tensor {
    precondition(t.rank == 3, "chwToHWC: expected [C, H, W], got \(t.shape)")
    let C = t.shape[0], H = t.shape[1], W = t.shape[2]
    let out = Tensor(uninitialized: [H, W, C])
    let s = t.data, d = out.data
    for c in 0..<C { for i in 0..<(H * W) { d[i * C + c] = s[c * H * W + i] } }
    return out
}
