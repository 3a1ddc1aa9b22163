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
/// Row statistics are accumulated in Double.
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
    for r in 0..<rows {
        let xr = xp + r * d, yr = yp + r * d
        var s = 0.0
        for i in 0..<d { s += Double(xr[i]) }
        let mean = s / Double(d)
        var s2 = 0.0
        for i in 0..<d { let c = Double(xr[i]) - mean; s2 += c * c }
        let rstd = 1.0 / (s2 / Double(d) + Double(eps)).squareRoot()
        let m = Float(mean), rs = Float(rstd)
        sp[2 * r] = m
        sp[2 * r + 1] = rs
        for i in 0..<d { yr[i] = (xr[i] - m) * rs * wp[i] + bp[i] }
    }
    Autograd.record(out, op: "layerNorm", parents: [x, weight, bias]) { g in
        let gp = g.data, xp = x.data, wp = weight.data, sp = stats.data
        let gx = x.requiresGrad ? x.gradData() : nil
        let gw = weight.requiresGrad ? weight.gradData() : nil
        let gb = bias.requiresGrad ? bias.gradData() : nil
        for r in 0..<rows {
            let xr = xp + r * d, gr = gp + r * d
            let m = sp[2 * r], rs = sp[2 * r + 1]
            if let gw {
                for i in 0..<d { gw[i] += gr[i] * (xr[i] - m) * rs }
            }
            if let gb {
                for i in 0..<d { gb[i] += gr[i] }
            }
            if let gx {
                var a = 0.0, b = 0.0  // sum dxhat, sum dxhat * xhat
                for i in 0..<d {
                    let dxh = Double(gr[i] * wp[i])
                    a += dxh
                    b += dxh * Double((xr[i] - m) * rs)
                }
                let ma = Float(a / Double(d)), mb = Float(b / Double(d))
                let gxr = gx + r * d
                for i in 0..<d {
                    let xh = (xr[i] - m) * rs
                    gxr[i] += rs * (gr[i] * wp[i] - ma - xh * mb)
                }
            }
        }
    }
    return out
}
