/// Depthwise 2-D convolution (groups = C), stride 1, "same" zero padding k/2 (odd k):
///
///     y[n, c, h, w] = b[c] + sum_{ki, kj} W[c, 0, ki, kj] * x[n, c, h + ki - k/2, w + kj - k/2]
///
/// x is [N, C, H, W], weight [C, 1, k, k], bias [C]. Direct loops (AdaptIR's LIM uses it at 16x16 with 24 channels):
/// per tap, a shifted row span of x is scaled and added to y, so the inner loop is a contiguous axpy.
///
/// Backward: dx[.., h+ki-k/2, w+kj-k/2] += W[c, ki, kj] * dy[.., h, w]; dW[c, ki, kj] += sum dy[.., h, w] * x[.., h+ki-k/2, w+kj-k/2];
/// db[c] += sum dy[n, c, :, :]. Each only for inputs that require a gradient.
public func depthwiseConv2d(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) -> Tensor {
    precondition(x.rank == 4, "depthwiseConv2d: input must be [N, C, H, W], got \(x.shape)")
    precondition(weight.rank == 4 && weight.shape[1] == 1 && weight.shape[2] == weight.shape[3] && weight.shape[2] % 2 == 1,
                 "depthwiseConv2d: weight must be [C, 1, k, k] with odd k, got \(weight.shape)")
    precondition(weight.shape[0] == x.shape[1], "depthwiseConv2d: weight \(weight.shape) does not match input channels of \(x.shape)")
    let (n, ch, hgt, wid) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let k = weight.shape[2], hw = hgt * wid, kk = k * k
    if let bias { precondition(bias.rank == 1 && bias.count == ch, "depthwiseConv2d: bias \(bias.shape) does not match \(ch) channels") }
    let out = Tensor(uninitialized: x.shape)
    let xp = x.data, wp = weight.data, yp = out.data
    let bp = bias?.data
    // Planes are independent: split over the rank's threads.
    Parallel.forRows(n * ch, rowLength: hw * kk) { planes in
        for plane in planes {
            let c = plane % ch
            let xc = xp + plane * hw, yc = yp + plane * hw, wc = wp + c * kk
            yc.update(repeating: bp.map { $0[c] } ?? 0, count: hw)
            forEachTap(k: k, height: hgt, width: wid) { t, dy, dx, rows, cols in
                let wv = wc[t]
                for hh in rows {
                    let dst = yc + hh * wid
                    let src = xc + (hh + dy) * wid + dx
                    for ww in cols { dst[ww] += wv * src[ww] }
                }
            }
        }
    }
    Autograd.record(out, op: "depthwiseConv2d", parents: bias.map { [x, weight, $0] } ?? [x, weight]) { g in
        let gp = g.data, xp = x.data, wp = weight.data
        let gb: UnsafeMutablePointer<Float>? = (bias?.requiresGrad ?? false) ? bias!.gradData() : nil
        let gw: UnsafeMutablePointer<Float>? = weight.requiresGrad ? weight.gradData() : nil
        let gx: UnsafeMutablePointer<Float>? = x.requiresGrad ? x.gradData() : nil
        // Split by channel: each channel's dW and db still add up its samples in order (any thread count).
        Parallel.forRows(ch, rowLength: n * hw * kk) { channels in
            for c in channels {
                for sample in 0..<n {
                    let plane = sample * ch + c
                    let gc = gp + plane * hw, xc = xp + plane * hw
                    if let gb {
                        var s: Float = 0
                        for j in 0..<hw { s += gc[j] }
                        gb[c] += s
                    }
                    forEachTap(k: k, height: hgt, width: wid) { t, dy, dx, rows, cols in
                        if let gw {
                            var s: Float = 0
                            for hh in rows {
                                let gr = gc + hh * wid
                                let xr = xc + (hh + dy) * wid + dx
                                for ww in cols { s += gr[ww] * xr[ww] }
                            }
                            gw[c * kk + t] += s
                        }
                        if let gx {
                            let wv = wp[c * kk + t]
                            let gxc = gx + plane * hw
                            for hh in rows {
                                let gr = gc + hh * wid
                                let dst = gxc + (hh + dy) * wid + dx
                                for ww in cols { dst[ww] += wv * gr[ww] }
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}

/// body(tap index ki*k + kj, row offset, column offset, output rows, output columns) for every tap of a k x k kernel
/// with "same" padding: the rows and columns are those whose input (output + offset) lies inside the image.
@inline(__always)
private func forEachTap(k: Int, height: Int, width: Int, _ body: (Int, Int, Int, Range<Int>, Range<Int>) -> Void) {
    let pad = k / 2
    for ki in 0..<k {
        let dy = ki - pad
        let (h0, h1) = convValidRange(size: height, offset: dy)
        for kj in 0..<k {
            let dx = kj - pad
            let (w0, w1) = convValidRange(size: width, offset: dx)
            body(ki * k + kj, dy, dx, h0..<h1, w0..<w1)
        }
    }
}
