import Foundation

/// Layer normalisation over the last dimension (PyTorch `nn.LayerNorm(D, eps)`, affine):
///
///     mu = mean(x[r, :]),  var = mean((x[r, :] - mu)^2)   (biased),  rstd = 1 / sqrt(var + eps)
///     xhat = (x - mu) * rstd,  y = xhat * weight + bias
///
/// Backward, per row with dxhat = g * weight:
///
///     dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dweight += sum_r g * xhat,  dbias += sum_r g
///
/// Row statistics: 8 float lanes per block of 512, blocks accumulated in Double.
public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float = 1e-5) -> Tensor {
    precondition(x.rank >= 1, "layerNorm: input must have at least one dimension, got \(x.shape)")
    let d = x.shape[x.rank - 1]
    precondition(weight.shape == [d] && bias.shape == [d],
                 "layerNorm: weight \(weight.shape) and bias \(bias.shape) must be [\(d)] for input \(x.shape)")
    let rows = d == 0 ? 0 : x.count / d
    let out = Tensor(uninitialized: x.shape)
    // Saved per-row statistics: mean and 1/std.
    let stats = Tensor(uninitialized: [rows, 2])
    let xp = x.data, yp = out.data, wp = weight.data, bp = bias.data, sp = stats.data
    Parallel.forRows(rows, rowLength: d) { range in
        for r in range {
            let xr = xp + r * d, yr = yp + r * d
            let mean = rowSum(xr, d) / Double(d)
            let s2 = rowCenteredDot(xr, xr, nil, d, Float(mean))
            let rstd = 1.0 / (s2 / Double(d) + Double(eps)).squareRoot()
            let m = Float(mean), rs = Float(rstd)
            sp[2 * r] = m
            sp[2 * r + 1] = rs
            for i in 0..<d { yr[i] = (xr[i] - m) * rs * wp[i] + bp[i] }
        }
    }
    Autograd.record(out, op: "layerNorm", parents: [x, weight, bias], saves: [true, true, false], savesOutput: false) { g in
        let gp = g.data, xp = x.data, wp = weight.data, sp = stats.data
        let (gx, fresh): (UnsafeMutablePointer<Float>?, Bool) = x.requiresGrad ? x.gradForOverwrite() : (nil, false)
        let gw = weight.requiresGrad ? weight.gradData() : nil
        let gb = bias.requiresGrad ? bias.gradData() : nil
        // dweight and dbias sum over rows (in row order, on one thread); dx is per row (split over threads).
        if gw != nil || gb != nil {
            for r in 0..<rows {
                let xr = xp + r * d, gr = gp + r * d
                let m = sp[2 * r], rs = sp[2 * r + 1]
                if let gw {
                    for i in 0..<d { gw[i] += gr[i] * (xr[i] - m) * rs }
                }
                if let gb {
                    for i in 0..<d { gb[i] += gr[i] }
                }
            }
        }
        guard let gx else { return }
        Parallel.forRows(rows, rowLength: d) { range in
            for r in range {
                let xr = xp + r * d, gr = gp + r * d
                let m = sp[2 * r], rs = sp[2 * r + 1]
                // sum dxhat and sum dxhat * xhat, with dxhat = g * weight.
                let a = rowDot(gr, wp, d)
                let b = Double(rs) * rowCenteredDot(xr, gr, wp, d, m)
                let ma = Float(a / Double(d)), mb = Float(b / Double(d))
                let gxr = gx + r * d
                if fresh {
                    for i in 0..<d { gxr[i] = rs * (gr[i] * wp[i] - ma - (xr[i] - m) * rs * mb) }
                } else {
                    for i in 0..<d { gxr[i] += rs * (gr[i] * wp[i] - ma - (xr[i] - m) * rs * mb) }
                }
            }
        }
    }
    return out
}

/// sum_i (x[i] - m) * y[i] * (w?[i] ?? 1), or with y = x the sum of squared deviations: 8 float lanes over
/// blocks of 512, blocks combined in Double (like `rowSum`; the scalar Double loop it replaces was 4x slower).
@inline(__always)
func rowCenteredDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ w: UnsafePointer<Float>?, _ n: Int, _ m: Float) -> Double {
    typealias V = SIMD8<Float>
    var total: Double = 0
    var i = 0
    let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y)
    let mv = V(repeating: m)
    while i + 8 <= n {
        var acc = V()
        let end = min(n, i + 512) - 7
        if let w {
            let rw = UnsafeRawPointer(w)
            while i < end {
                acc += (rx.loadUnaligned(fromByteOffset: i * 4, as: V.self) - mv) * ry.loadUnaligned(fromByteOffset: i * 4, as: V.self)
                    * rw.loadUnaligned(fromByteOffset: i * 4, as: V.self)
                i += 8
            }
        } else {
            while i < end {
                let c = rx.loadUnaligned(fromByteOffset: i * 4, as: V.self) - mv
                acc += c * (ry.loadUnaligned(fromByteOffset: i * 4, as: V.self) - mv)
                i += 8
            }
        }
        total += Double(acc.sum())
    }
    while i < n {
        let c = Double(x[i] - m)
        total += w.map { c * Double(y[i]) * Double($0[i]) } ?? c * Double(y[i] - m)
        i += 1
    }
    return total
}
