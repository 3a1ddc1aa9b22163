/// IPT tokenisation, `unfold(x, kernel = p, stride = p)` transposed to batch-first:
/// [N, C, H, W] -> tokens [N, L, C*p*p], L = (H/p)*(W/p), with
///
///     t[n, bi*(W/p) + bj, c*p*p + ki*p + kj] = x[n, c, bi*p + ki, bj*p + kj]
///
/// Stride = kernel, so this is a permutation; its backward is `fold` of the gradient (accumulated).
public func unfold(_ x: Tensor, patch p: Int) -> Tensor {
    precondition(x.rank == 4, "unfold: input must be [N, C, H, W], got \(x.shape)")
    let (n, c, hgt, wid) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    precondition(p >= 1 && hgt % p == 0 && wid % p == 0, "unfold: H and W of \(x.shape) must be multiples of patch \(p)")
    let l = (hgt / p) * (wid / p)
    let out = Tensor(uninitialized: [n, l, c * p * p])
    patchPermute(image: x.data, tokens: out.data, n: n, c: c, height: hgt, width: wid, p: p, toTokens: true, accumulate: false)
    Autograd.record(out, op: "unfold", parents: [x]) { g in
        let (gx, fresh) = x.gradForOverwrite()
        patchPermute(image: gx, tokens: g.data, n: n, c: c, height: hgt, width: wid, p: p, toTokens: false, accumulate: !fresh)
    }
    return out
}

/// The exact inverse of `unfold` (PyTorch `fold` with kernel = stride = p after transposing to [N, C*p*p, L]):
/// tokens [N, L, C*p*p] -> [N, C, H, W], x[n, c, bi*p + ki, bj*p + kj] = t[n, bi*(W/p) + bj, c*p*p + ki*p + kj].
/// Its backward is `unfold` of the gradient (accumulated).
public func fold(_ tokens: Tensor, channels c: Int, height hgt: Int, width wid: Int, patch p: Int) -> Tensor {
    precondition(p >= 1 && hgt % p == 0 && wid % p == 0, "fold: height \(hgt) and width \(wid) must be multiples of patch \(p)")
    let l = (hgt / p) * (wid / p)
    precondition(tokens.rank == 3 && tokens.shape[1] == l && tokens.shape[2] == c * p * p,
                 "fold: tokens must be [N, \(l), \(c * p * p)] for C=\(c) H=\(hgt) W=\(wid) p=\(p), got \(tokens.shape)")
    let n = tokens.shape[0]
    let out = Tensor(uninitialized: [n, c, hgt, wid])
    patchPermute(image: out.data, tokens: tokens.data, n: n, c: c, height: hgt, width: wid, p: p, toTokens: false, accumulate: false)
    Autograd.record(out, op: "fold", parents: [tokens]) { g in
        let (gt, fresh) = tokens.gradForOverwrite()
        patchPermute(image: g.data, tokens: gt, n: n, c: c, height: hgt, width: wid, p: p, toTokens: true, accumulate: !fresh)
    }
    return out
}

/// Moves data between image [N, C, H, W] and tokens [N, L, C*p*p] along the unfold index map, in the direction
/// `toTokens` (image -> tokens) or back, overwriting or accumulating into the destination. Copies p-float runs.
private func patchPermute(image: UnsafeMutablePointer<Float>, tokens: UnsafeMutablePointer<Float>,
                          n: Int, c: Int, height hgt: Int, width wid: Int, p: Int, toTokens: Bool, accumulate: Bool) {
    let gw = wid / p, gh = hgt / p, d = c * p * p, hw = hgt * wid
    // Samples are independent: split over the rank's threads.
    Parallel.forRows(n, rowLength: c * hw) { samples in
        for s in samples {
            for bi in 0..<gh {
                for bj in 0..<gw {
                    let tok = tokens + (s * gh * gw + bi * gw + bj) * d
                    for ch in 0..<c {
                        let img = image + (s * c + ch) * hw + bi * p * wid + bj * p
                        for ki in 0..<p {
                            let t = tok + (ch * p + ki) * p
                            let im = img + ki * wid
                            switch (toTokens, accumulate) {
                            case (true, false): for kj in 0..<p { t[kj] = im[kj] }
                            case (true, true): for kj in 0..<p { t[kj] += im[kj] }
                            case (false, false): for kj in 0..<p { im[kj] = t[kj] }
                            case (false, true): for kj in 0..<p { im[kj] += t[kj] }
                            }
                        }
                    }
                }
            }
        }
    }
}
