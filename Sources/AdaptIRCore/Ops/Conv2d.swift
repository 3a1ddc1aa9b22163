/// 2-D convolution, PyTorch layout, stride 1, "same" zero padding k/2 (odd k):
///
///     y[n, o, h, w] = b[o] + sum_{c, ki, kj} W[o, c, ki, kj] * x[n, c, h + ki - k/2, w + kj - k/2]
///
/// with x read as 0 outside the image. x is [N, Cin, H, W], weight [Cout, Cin, k, k], bias [Cout], y [N, Cout, H, W].
///
/// Per image, im2col builds cols[Cin*k*k, H*W] (cols[(c*k + ki)*k + kj, h*W + w] = x[c, h+ki-k/2, w+kj-k/2]) in one
/// scratch buffer shared by the images of a call, then one GEMM y_n[Cout, HW] = W[Cout, Cin*k*k] * cols (+ bias,
/// prefilled, beta = 1). A 1x1 conv uses the image itself as the [Cin, HW] matrix.
///
/// Backward, per image: dW += dY_n * cols^T (cols recomputed; only when weight.requiresGrad), db[o] += sum dY[n, o, :, :],
/// dX_n += col2im(W^T * dY_n) (only when x.requiresGrad).
public func conv2d(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) -> Tensor {
    precondition(x.rank == 4, "conv2d: input must be [N, Cin, H, W], got \(x.shape)")
    precondition(weight.rank == 4 && weight.shape[2] == weight.shape[3] && weight.shape[2] % 2 == 1,
                 "conv2d: weight must be [Cout, Cin, k, k] with odd k, got \(weight.shape)")
    precondition(weight.shape[1] == x.shape[1], "conv2d: input channels \(x.shape[1]) (input \(x.shape)) != weight \(weight.shape)")
    let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let cout = weight.shape[0], k = weight.shape[2]
    if let bias { precondition(bias.rank == 1 && bias.count == cout, "conv2d: bias \(bias.shape) does not match weight \(weight.shape)") }
    let hw = h * w, kdim = cin * k * k
    let out = Tensor(uninitialized: [n, cout, h, w])
    let xp = x.data, wp = weight.data, yp = out.data
    // One im2col scratch per call, reused by every image (none for 1x1).
    let scratch: Buffer? = k == 1 ? nil : Buffer(count: kdim * hw, zeroed: false)
    for i in 0..<n {
        let xi = xp + i * cin * hw, yi = yp + i * cout * hw
        if let bias {
            let b = bias.data
            for o in 0..<cout { (yi + o * hw).update(repeating: b[o], count: hw) }
        }
        let cols: UnsafePointer<Float>
        if let scratch {
            convIm2col(xi, channels: cin, height: h, width: w, k: k, cols: scratch.base)
            cols = UnsafePointer(scratch.base)
        } else {
            cols = UnsafePointer(xi)
        }
        BLAS.gemm(transA: false, transB: false, m: cout, n: hw, k: kdim, a: wp, lda: kdim, b: cols, ldb: hw,
                  beta: bias == nil ? 0 : 1, c: yi, ldc: hw)
    }
    Autograd.record(out, op: "conv2d", parents: bias.map { [x, weight, $0] } ?? [x, weight]) { g in
        let gp = g.data
        if let bias, bias.requiresGrad {
            let gb = bias.gradData()
            for i in 0..<n {
                for o in 0..<cout {
                    let row = gp + (i * cout + o) * hw
                    var s: Float = 0
                    for j in 0..<hw { s += row[j] }
                    gb[o] += s
                }
            }
        }
        let needW = weight.requiresGrad, needX = x.requiresGrad
        guard needW || needX else { return }
        let scratch: Buffer? = k == 1 ? nil : Buffer(count: kdim * hw, zeroed: false)
        let xp = x.data, wp = weight.data
        let gw = needW ? weight.gradData() : nil
        let gx = needX ? x.gradData() : nil
        for i in 0..<n {
            let gi = gp + i * cout * hw
            if let gw {
                let cols: UnsafePointer<Float>
                if let scratch {
                    convIm2col(xp + i * cin * hw, channels: cin, height: h, width: w, k: k, cols: scratch.base)
                    cols = UnsafePointer(scratch.base)
                } else {
                    cols = UnsafePointer(xp + i * cin * hw)
                }
                BLAS.gemm(transA: false, transB: true, m: cout, n: kdim, k: hw, a: gi, lda: hw, b: cols, ldb: hw,
                          beta: 1, c: gw, ldc: kdim)
            }
            if let gx {
                let gxi = gx + i * cin * hw
                if let scratch {
                    BLAS.gemm(transA: true, transB: false, m: kdim, n: hw, k: cout, a: wp, lda: kdim, b: gi, ldb: hw,
                              beta: 0, c: scratch.base, ldc: hw)
                    convCol2imAdd(scratch.base, channels: cin, height: h, width: w, k: k, into: gxi)
                } else {
                    BLAS.gemm(transA: true, transB: false, m: cin, n: hw, k: cout, a: wp, lda: cin, b: gi, ldb: hw,
                              beta: 1, c: gxi, ldc: hw)
                }
            }
        }
    }
    return out
}

/// Valid output range [lo, hi) along an axis of length `size` for a tap offset `d`: lo..<hi are the outputs whose
/// input index (output + d) lies inside [0, size).
@inline(__always)
func convValidRange(size: Int, offset d: Int) -> (Int, Int) {
    let lo = min(size, max(0, -d))
    let hi = max(lo, min(size, size - d))
    return (lo, hi)
}

/// cols[(c*k + ki)*k + kj, h*W + w] = x[c, h + ki - k/2, w + kj - k/2] (0 outside). Each row is written with
/// contiguous span copies; only the padding borders are zeroed.
func convIm2col(_ x: UnsafePointer<Float>, channels: Int, height hgt: Int, width wid: Int, k: Int,
            cols: UnsafeMutablePointer<Float>) {
    let pad = k / 2, hw = hgt * wid
    var row = cols
    for c in 0..<channels {
        let xc = x + c * hw
        for ki in 0..<k {
            let dy = ki - pad
            let (h0, h1) = convValidRange(size: hgt, offset: dy)
            for kj in 0..<k {
                let dx = kj - pad
                let (w0, w1) = convValidRange(size: wid, offset: dx)
                if h0 > 0 { row.update(repeating: 0, count: h0 * wid) }
                if h1 < hgt { (row + h1 * wid).update(repeating: 0, count: (hgt - h1) * wid) }
                let span = w1 - w0
                for hh in h0..<h1 {
                    let dst = row + hh * wid
                    if w0 > 0 { dst.update(repeating: 0, count: w0) }
                    if span > 0 { (dst + w0).update(from: xc + (hh + dy) * wid + w0 + dx, count: span) }
                    if w1 < wid { (dst + w1).update(repeating: 0, count: wid - w1) }
                }
                row += hw
            }
        }
    }
}

/// Adjoint of `convIm2col`: dx[c, h + ki - k/2, w + kj - k/2] += cols[(c*k + ki)*k + kj, h*W + w] over the valid taps.
func convCol2imAdd(_ cols: UnsafePointer<Float>, channels: Int, height hgt: Int, width wid: Int, k: Int,
               into dx: UnsafeMutablePointer<Float>) {
    let pad = k / 2, hw = hgt * wid
    var row = cols
    for c in 0..<channels {
        let dc = dx + c * hw
        for ki in 0..<k {
            let dy = ki - pad
            let (h0, h1) = convValidRange(size: hgt, offset: dy)
            for kj in 0..<k {
                let dxo = kj - pad
                let (w0, w1) = convValidRange(size: wid, offset: dxo)
                for hh in h0..<h1 {
                    let src = row + hh * wid
                    let dst = dc + (hh + dy) * wid + dxo
                    for ww in w0..<w1 { dst[ww] += src[ww] }
                }
                row += hw
            }
        }
    }
}
