/// 2-D convolution, PyTorch layout, stride 1, "same" zero padding k/2 (odd k):
///
///     y[n, o, h, w] = b[o] + sum_{c, ki, kj} W[o, c, ki, kj] * x[n, c, h + ki - k/2, w + kj - k/2]
///
/// with x read as 0 outside the image. x is [N, Cin, H, W], weight [Cout, Cin, k, k], bias [Cout], y [N, Cout, H, W].
///
/// im2col + SGEMM: cols[(c*k + ki)*k + kj, h*W + w] = x[c, h+ki-k/2, w+kj-k/2], y_n[Cout, HW] = W[Cout, Cin*k*k] * cols
/// (+ bias, prefilled, beta = 1). cols is built for a band of output rows at a time (`convTileRows`), so the band
/// stays cache-resident between being written and being packed by the GEMM; one scratch buffer serves every band and
/// image of a call. A 1x1 conv uses the image itself as the [Cin, HW] matrix (no im2col). Convs with at most
/// `convDirectMaxOutChannels` outputs (and k > 1) run a direct kernel instead (`convDirectForward`).
///
/// Backward, per image and band: dW += dY_band * cols_band^T (cols recomputed; only when weight.requiresGrad),
/// db[o] += sum dY[n, o, :, :], dX += col2im(W^T * dY_band) (only when x.requiresGrad).
public func conv2d(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) -> Tensor {
    precondition(x.rank == 4, "conv2d: input must be [N, Cin, H, W], got \(x.shape)")
    precondition(weight.rank == 4 && weight.shape[2] == weight.shape[3] && weight.shape[2] % 2 == 1,
                 "conv2d: weight must be [Cout, Cin, k, k] with odd k, got \(weight.shape)")
    precondition(weight.shape[1] == x.shape[1], "conv2d: input channels \(x.shape[1]) (input \(x.shape)) != weight \(weight.shape)")
    let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let cout = weight.shape[0], k = weight.shape[2]
    if let bias { precondition(bias.rank == 1 && bias.count == cout, "conv2d: bias \(bias.shape) does not match weight \(weight.shape)") }
    let out = Tensor(uninitialized: [n, cout, h, w])
    convForward(x.data, images: n, channels: cin, height: h, width: w, weight: weight.data, outChannels: cout, k: k,
                bias: bias?.data, accumulate: false, into: out.data)
    // The backward reads x only for the weight's gradient (im2col again), W only for x's; never the output.
    let saves = [weight.requiresGrad, x.requiresGrad] + (bias == nil ? [] : [false])
    Autograd.record(out, op: "conv2d", parents: bias.map { [x, weight, $0] } ?? [x, weight], saves: saves, savesOutput: false) { g in
        let gp = g.data, hw = h * w, kdim = cin * k * k
        let band = convTileRows(kdim: kdim, height: h, width: w)
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
        var needW = weight.requiresGrad
        var needX = x.requiresGrad
        if needW && k == 3 && cout == 3 {
            // As a GEMM, dW of the conv to RGB has M = 3 (13 GFLOP/s): direct kernel instead.
            convDirect3x3To3WeightGrad(x.data, images: n, channels: cin, height: h, width: w, gradOut: gp,
                                       into: weight.gradData())
            needW = false
        }
        if needX && k > 1 && cout < cin {
            // Fewer output than input channels (the final n_feats -> 3 conv): dX is the convolution of dY with the
            // flipped, transposed kernel (Cout input channels: an im2col of Cout*k*k rows instead of col2im's
            // Cin*k*k, or the direct kernel when Cin <= convDirectMaxOutChannels).
            let flipped = convFlippedTransposed(weight.data, outChannels: cout, channels: cin, k: k)
            let (gx, fresh) = x.gradForOverwrite()
            convForward(gp, images: n, channels: cout, height: h, width: w, weight: flipped.base, outChannels: cin, k: k,
                        bias: nil, accumulate: !fresh, into: gx)
            needX = false
        }
        guard needW || needX else { return }
        let xp: UnsafeMutablePointer<Float>? = needW ? x.data : nil
        let wp: UnsafeMutablePointer<Float>? = needX ? weight.data : nil
        let gw = needW ? weight.gradData() : nil
        let gx = needX ? x.gradData() : nil
        // dW sums over images in image order (one thread; its GEMMs split); without it, images split over threads.
        func split(_ n: Int, _ body: (Range<Int>) -> Void) { if needW { body(0..<n) } else { convForEachImage(n, body) } }
        if k == 1 {
            split(n) { images in
                for i in images {
                    let gi = gp + i * cout * hw
                    if let gw {
                        BLAS.gemm(transA: false, transB: true, m: cout, n: cin, k: hw, a: gi, lda: hw, b: xp! + i * cin * hw,
                                  ldb: hw, beta: 1, c: gw, ldc: cin)
                    }
                    if let gx {
                        BLAS.gemm(transA: true, transB: false, m: cin, n: hw, k: cout, a: wp!, lda: cin, b: gi, ldb: hw,
                                  beta: 1, c: gx + i * cin * hw, ldc: hw)
                    }
                }
            }
            return
        }
        split(n) { images in
            let scratch = Buffer(count: kdim * band * w, zeroed: false)
            let cols = scratch.base
            for i in images {
                let gi = gp + i * cout * hw
                for r0 in stride(from: 0, to: h, by: band) {
                    let r1 = min(h, r0 + band), tw = (r1 - r0) * w
                    if let gw {
                        convIm2col(xp! + i * cin * hw, channels: cin, height: h, width: w, k: k, rows: r0, r1, cols: cols)
                        BLAS.gemm(transA: false, transB: true, m: cout, n: kdim, k: tw, a: gi + r0 * w, lda: hw, b: cols, ldb: tw,
                                  beta: 1, c: gw, ldc: kdim)
                    }
                    if let gx {
                        BLAS.gemm(transA: true, transB: false, m: kdim, n: tw, k: cout, a: wp!, lda: kdim, b: gi + r0 * w, ldb: hw,
                                  beta: 0, c: cols, ldc: tw)
                        convCol2imAdd(cols, channels: cin, height: h, width: w, k: k, rows: r0, r1, into: gx + i * cin * hw)
                    }
                }
            }
        }
    }
    return out
}

/// y[i] = conv(x[i], W) + bias, or y[i] += conv(x[i], W) with `accumulate` (no bias then: the input gradient of a
/// conv with fewer output than input channels), for `images` images: the forward of `conv2d` on raw storage.
func convForward(_ xp: UnsafePointer<Float>, images n: Int, channels cin: Int, height h: Int, width w: Int,
                 weight wp: UnsafePointer<Float>, outChannels cout: Int, k: Int, bias: UnsafePointer<Float>?,
                 accumulate: Bool, into yp: UnsafeMutablePointer<Float>) {
    precondition(!(accumulate && bias != nil), "convForward: accumulate takes no bias")
    if k > 1 && cout <= convDirectMaxOutChannels {
        convDirectForward(xp, images: n, channels: cin, height: h, width: w, weight: wp, outChannels: cout, k: k,
                          bias: bias, accumulate: accumulate, into: yp)
        return
    }
    let hw = h * w, kdim = cin * k * k
    let band = convTileRows(kdim: kdim, height: h, width: w)
    let beta: Float = bias != nil || accumulate ? 1 : 0
    // Images are independent: with several threads each takes whole images (same GEMMs as on one thread).
    convForEachImage(n) { images in
        let scratch: Buffer? = k == 1 ? nil : Buffer(count: kdim * band * w, zeroed: false)
        for i in images {
            let xi = xp + i * cin * hw, yi = yp + i * cout * hw
            if let bias { for o in 0..<cout { (yi + o * hw).update(repeating: bias[o], count: hw) } }
            guard let scratch else {
                BLAS.gemm(transA: false, transB: false, m: cout, n: hw, k: kdim, a: wp, lda: kdim, b: xi, ldb: hw,
                          beta: beta, c: yi, ldc: hw)
                continue
            }
            for r0 in stride(from: 0, to: h, by: band) {
                let r1 = min(h, r0 + band), tw = (r1 - r0) * w
                convIm2col(xi, channels: cin, height: h, width: w, k: k, rows: r0, r1, cols: scratch.base)
                BLAS.gemm(transA: false, transB: false, m: cout, n: tw, k: kdim, a: wp, lda: kdim, b: scratch.base, ldb: tw,
                          beta: beta, c: yi + r0 * w, ldc: hw)
            }
        }
    }
}

/// Convs with at most this many output channels (and k > 1) run `convDirectForward` instead of im2col + GEMM.
/// Measured at preset small, batch 16, 1 thread, interleaved runs: the head's 3 -> 16 and 5x5 16 -> 16 convs and the
/// last 16 -> 3 conv direct made the forward 6-19 ms faster in three pairs (213-225 against 222-237 ms); the tail's
/// 16 -> 64 convs direct as well changed nothing measurable, so they stay GEMMs (as do all of preset ipt's but its
/// last).
let convDirectMaxOutChannels = 16

/// The forward of a convolution computed directly, for convs whose GEMM is narrow (few output channels) and whose
/// im2col is large (Cin*k*k rows per pixel): IPT's last conv (n_feats -> 3; as a GEMM its M is 3 and OpenBLAS ran it
/// at about 20 % of its rate) and the head's 5x5 convs at narrow presets. Each image is copied once into a
/// zero-bordered buffer; output channels go in groups of 4 (weights regrouped so a group's 4 values per tap are
/// adjacent), and 24 output pixels of a row x 4 channels accumulate in 12 vector registers over the Cin x k x k taps.
/// With `accumulate` each finished sum is added to y (a gradient's second use then adds exactly its first's value).
func convDirectForward(_ xp: UnsafePointer<Float>, images n: Int, channels cin: Int, height h: Int, width w: Int,
                       weight wp: UnsafePointer<Float>, outChannels cout: Int, k: Int, bias: UnsafePointer<Float>?,
                       accumulate: Bool, into yp: UnsafeMutablePointer<Float>) {
    typealias V = SIMD8<Float>
    let chunk = 24, wr = (w + chunk - 1) / chunk * chunk, pw = wr + k - 1, ph = h + k - 1, pad = k / 2
    let hw = h * w, kk = k * k, groups = (cout + 3) / 4
    // wg[((g * cin + c) * kk + t) * 4 + j] = W[4g + j, c, t] (0 past cout).
    let wg = Buffer(count: groups * cin * kk * 4, zeroed: true)
    for o in 0..<cout {
        for c in 0..<cin {
            for t in 0..<kk { wg.base[(((o / 4) * cin + c) * kk + t) * 4 + o % 4] = wp[(o * cin + c) * kk + t] }
        }
    }
    let wgp = UnsafePointer(wg.base)
    convForEachImage(n) { images in
        // Row yy + pad, column xx + pad of plane c holds x[c, yy, xx]; the border and the columns past it stay 0.
        let padded = Buffer(count: cin * ph * pw, zeroed: true)
        let rowOut = Buffer(count: 4 * wr, zeroed: false)
        let pb = padded.base, ro = UnsafeMutableRawPointer(rowOut.base)
        for i in images {
            for c in 0..<cin {
                for yy in 0..<h {
                    (pb + (c * ph + yy + pad) * pw + pad).update(from: xp + (i * cin + c) * hw + yy * w, count: w)
                }
            }
            for g in 0..<groups {
                var b = [Float](repeating: 0, count: 4)
                if let bias { for j in 0..<4 where 4 * g + j < cout { b[j] = bias[4 * g + j] } }
                for yy in 0..<h {
                    for x0 in stride(from: 0, to: wr, by: chunk) {
                        var a00 = V(repeating: b[0]), a01 = a00, a02 = a00
                        var a10 = V(repeating: b[1]), a11 = a10, a12 = a10
                        var a20 = V(repeating: b[2]), a21 = a20, a22 = a20
                        var a30 = V(repeating: b[3]), a31 = a30, a32 = a30
                        for c in 0..<cin {
                            for ky in 0..<k {
                                let rp = UnsafeRawPointer(pb + (c * ph + yy + ky) * pw + x0)
                                let wk = wgp + ((g * cin + c) * kk + ky * k) * 4
                                for kx in 0..<k {
                                    let v0 = rp.loadUnaligned(fromByteOffset: kx * 4, as: V.self)
                                    let v1 = rp.loadUnaligned(fromByteOffset: kx * 4 + 32, as: V.self)
                                    let v2 = rp.loadUnaligned(fromByteOffset: kx * 4 + 64, as: V.self)
                                    let wt = wk + kx * 4
                                    let w0 = V(repeating: wt[0]), w1 = V(repeating: wt[1])
                                    a00 = a00.addingProduct(v0, w0); a01 = a01.addingProduct(v1, w0); a02 = a02.addingProduct(v2, w0)
                                    a10 = a10.addingProduct(v0, w1); a11 = a11.addingProduct(v1, w1); a12 = a12.addingProduct(v2, w1)
                                    let w2 = V(repeating: wt[2]), w3 = V(repeating: wt[3])
                                    a20 = a20.addingProduct(v0, w2); a21 = a21.addingProduct(v1, w2); a22 = a22.addingProduct(v2, w2)
                                    a30 = a30.addingProduct(v0, w3); a31 = a31.addingProduct(v1, w3); a32 = a32.addingProduct(v2, w3)
                                }
                            }
                        }
                        for (j, a) in [(0, (a00, a01, a02)), (1, (a10, a11, a12)), (2, (a20, a21, a22)), (3, (a30, a31, a32))] {
                            let off = (j * wr + x0) * 4
                            ro.storeBytes(of: a.0, toByteOffset: off, as: V.self)
                            ro.storeBytes(of: a.1, toByteOffset: off + 32, as: V.self)
                            ro.storeBytes(of: a.2, toByteOffset: off + 64, as: V.self)
                        }
                    }
                    for j in 0..<min(4, cout - 4 * g) {
                        let dst = yp + (i * cout + 4 * g + j) * hw + yy * w, src = rowOut.base + j * wr
                        if accumulate { for x in 0..<w { dst[x] += src[x] } } else { dst.update(from: src, count: w) }
                    }
                }
            }
        }
    }
}

/// dW[o, c, ky, kx] += sum over images and pixels of dY[i, o, y, x] * x[i, c, y + ky - 1, x + kx - 1] for a 3x3
/// conv to 3 channels (the weight gradient of IPT's last conv, whose forward `convDirectForward` computes). Input
/// channels are split over the rank's threads; each channel runs its images in order, and for each image and tap row
/// ky, 9 vector registers (3 output channels x 3 taps kx) accumulate over all rows of dY, then add into Double sums:
/// the same bits for any thread count.
func convDirect3x3To3WeightGrad(_ xp: UnsafePointer<Float>, images n: Int, channels cin: Int, height h: Int, width w: Int,
                                gradOut gp: UnsafePointer<Float>, into gw: UnsafeMutablePointer<Float>) {
    typealias V = SIMD8<Float>
    let wv = w / 8 * 8, pw = w + 2 + 8, ph = h + 2, hw = h * w
    Parallel.forRanges(cin, grain: 1) { channels in
        // Row yy + 1, column xx + 1 holds x[i, c, yy, xx]; the border stays 0.
        let padded = Buffer(count: ph * pw, zeroed: true)
        let pb = padded.base
        for c in channels {
            var sums = [Double](repeating: 0, count: 27)          // (o, ky, kx)
            for i in 0..<n {
                for yy in 0..<h { (pb + (yy + 1) * pw + 1).update(from: xp + (i * cin + c) * hw + yy * w, count: w) }
                let d0 = gp + i * 3 * hw, d1 = d0 + hw, d2 = d1 + hw
                for ky in 0..<3 {
                    var a00 = V(), a01 = V(), a02 = V(), a10 = V(), a11 = V(), a12 = V(), a20 = V(), a21 = V(), a22 = V()
                    var tail = [Float](repeating: 0, count: 9)
                    for y in 0..<h {
                        let prow = pb + (y + ky) * pw, off = y * w
                        let rp = UnsafeRawPointer(prow)
                        let r0 = UnsafeRawPointer(d0 + off), r1 = UnsafeRawPointer(d1 + off), r2 = UnsafeRawPointer(d2 + off)
                        var x0 = 0
                        while x0 < wv {
                            let g0 = r0.loadUnaligned(fromByteOffset: x0 * 4, as: V.self)
                            let g1 = r1.loadUnaligned(fromByteOffset: x0 * 4, as: V.self)
                            let g2 = r2.loadUnaligned(fromByteOffset: x0 * 4, as: V.self)
                            let p0 = rp.loadUnaligned(fromByteOffset: x0 * 4, as: V.self)
                            let p1 = rp.loadUnaligned(fromByteOffset: x0 * 4 + 4, as: V.self)
                            let p2 = rp.loadUnaligned(fromByteOffset: x0 * 4 + 8, as: V.self)
                            a00 = a00.addingProduct(g0, p0); a01 = a01.addingProduct(g0, p1); a02 = a02.addingProduct(g0, p2)
                            a10 = a10.addingProduct(g1, p0); a11 = a11.addingProduct(g1, p1); a12 = a12.addingProduct(g1, p2)
                            a20 = a20.addingProduct(g2, p0); a21 = a21.addingProduct(g2, p1); a22 = a22.addingProduct(g2, p2)
                            x0 += 8
                        }
                        for x in wv..<w {
                            let g = [d0[off + x], d1[off + x], d2[off + x]]
                            for o in 0..<3 { for kx in 0..<3 { tail[o * 3 + kx] += g[o] * prow[x + kx] } }
                        }
                    }
                    let acc = [[a00, a01, a02], [a10, a11, a12], [a20, a21, a22]]
                    for o in 0..<3 {
                        for kx in 0..<3 { sums[(o * 3 + ky) * 3 + kx] += Double(acc[o][kx].sum()) + Double(tail[o * 3 + kx]) }
                    }
                }
            }
            for o in 0..<3 {
                for t in 0..<9 { gw[(o * cin + c) * 9 + t] += Float(sums[o * 9 + t]) }
            }
        }
    }
}

/// W'[c, o, ki, kj] = W[o, c, k-1-ki, k-1-kj]: the kernel whose convolution of dY is dX (stride 1, same padding).
func convFlippedTransposed(_ wp: UnsafePointer<Float>, outChannels cout: Int, channels cin: Int, k: Int) -> Buffer {
    let kk = k * k
    let t = Buffer(count: cout * cin * kk, zeroed: false)
    for o in 0..<cout {
        for c in 0..<cin {
            for j in 0..<kk { t.base[(c * cout + o) * kk + (kk - 1 - j)] = wp[(o * cin + c) * kk + j] }
        }
    }
    return t
}

/// body(range of images) on the rank's threads, whole images per thread, when the images divide well among them
/// (evenly, or at least 4 per thread); otherwise one call over all images, whose GEMMs then split instead.
func convForEachImage(_ n: Int, _ body: (Range<Int>) -> Void) {
    let t = Parallel.threads
    if n >= t && (n % t == 0 || n >= 4 * t) {
        Parallel.forRanges(n, grain: 1, body)
    } else if n > 0 {
        body(0..<n)
    }
}

/// Output rows per im2col band: the [Cin*k*k, rows*W] band should be about 1 MB (L2-sized) but at least 512 columns
/// wide, so each GEMM stays large enough to run near peak. Measured (1 thread, 64->64 3x3 on 48x48, batch 16): whole
/// image cols ~73% of raw sgemm, bands of 1<<18 floats / >= 512 columns ~100% (the band is still in cache when the
/// GEMM packs it); 5x5 went from ~48 to ~75 GFLOP/s.
func convTileRows(kdim: Int, height: Int, width: Int, targetFloats: Int = 1 << 18, minColumns: Int = 512) -> Int {
    let columns = max(minColumns, targetFloats / max(kdim, 1))
    return max(1, min(height, columns / max(width, 1)))
}

/// Valid output range [lo, hi) along an axis of length `size` for a tap offset `d`: lo..<hi are the outputs whose
/// input index (output + d) lies inside [0, size).
@inline(__always)
func convValidRange(size: Int, offset d: Int) -> (Int, Int) {
    let lo = min(size, max(0, -d))
    let hi = max(lo, min(size, size - d))
    return (lo, hi)
}

/// The band of output rows r0..<r1 of im2col: cols[(c*k + ki)*k + kj, (h - r0)*W + w] = x[c, h + ki - k/2, w + kj - k/2]
/// (0 outside), a [Cin*k*k, (r1-r0)*W] matrix.
///
/// Inside the valid rows, every element of a cols row is x shifted by the constant offset dy*W + dx, so each row is
/// ONE contiguous copy; then only the borders are zeroed: rows outside the valid range, and the first w0 and last
/// W - w1 columns of each valid row (the latter hold wrapped-around values).
func convIm2col(_ x: UnsafePointer<Float>, channels: Int, height hgt: Int, width wid: Int, k: Int,
                rows r0: Int, _ r1: Int, cols: UnsafeMutablePointer<Float>) {
    let pad = k / 2, hw = hgt * wid, tw = (r1 - r0) * wid
    var row = cols
    for c in 0..<channels {
        let xc = x + c * hw
        for ki in 0..<k {
            let dy = ki - pad
            let (vh0, vh1) = convValidRange(size: hgt, offset: dy)
            let h0 = min(r1, max(r0, vh0)), h1 = max(h0, min(r1, vh1))
            for kj in 0..<k {
                let dx = kj - pad
                let (w0, w1) = convValidRange(size: wid, offset: dx)
                if h1 <= h0 || w1 <= w0 {
                    row.update(repeating: 0, count: tw)
                    row += tw
                    continue
                }
                if h0 > r0 { row.update(repeating: 0, count: (h0 - r0) * wid) }
                if h1 < r1 { (row + (h1 - r0) * wid).update(repeating: 0, count: (r1 - h1) * wid) }
                let start = (h0 - r0) * wid + w0, end = (h1 - 1 - r0) * wid + w1
                (row + start).update(from: xc + h0 * wid + w0 + dy * wid + dx, count: end - start)
                if w0 > 0 || w1 < wid {
                    for hh in h0..<h1 {
                        let dst = row + (hh - r0) * wid
                        for ww in 0..<w0 { dst[ww] = 0 }
                        for ww in w1..<wid { dst[ww] = 0 }
                    }
                }
                row += tw
            }
        }
    }
}

/// Adjoint of `convIm2col` for the band r0..<r1: dx[c, h + ki - k/2, w + kj - k/2] += cols[(c*k + ki)*k + kj, (h - r0)*W + w]
/// over the valid taps.
func convCol2imAdd(_ cols: UnsafePointer<Float>, channels: Int, height hgt: Int, width wid: Int, k: Int,
                   rows r0: Int, _ r1: Int, into dx: UnsafeMutablePointer<Float>) {
    let pad = k / 2, hw = hgt * wid, tw = (r1 - r0) * wid
    var row = cols
    for c in 0..<channels {
        let dc = dx + c * hw
        for ki in 0..<k {
            let dy = ki - pad
            let (vh0, vh1) = convValidRange(size: hgt, offset: dy)
            let h0 = min(r1, max(r0, vh0)), h1 = max(h0, min(r1, vh1))
            for kj in 0..<k {
                let dxo = kj - pad
                let (w0, w1) = convValidRange(size: wid, offset: dxo)
                for hh in h0..<h1 {
                    let src = row + (hh - r0) * wid
                    let dst = dc + (hh + dy) * wid + dxo
                    for ww in w0..<w1 { dst[ww] += src[ww] }
                }
                row += tw
            }
        }
    }
}
