/// PyTorch `PixelShuffle(r)`: [N, C*r*r, H, W] -> [N, C, r*H, r*W] with
///
///     y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]
///
/// A pure permutation, so the backward is the inverse permutation: dx[n, c*r*r + i*r + j, h, w] += dy[n, c, h*r + i, w*r + j].
public func pixelShuffle(_ x: Tensor, _ r: Int) -> Tensor {
    precondition(r >= 1, "pixelShuffle: factor must be >= 1, got \(r)")
    precondition(x.rank == 4 && x.shape[1] % (r * r) == 0,
                 "pixelShuffle: input must be [N, C*\(r)*\(r), H, W], got \(x.shape)")
    let (n, cin, hgt, wid) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let c = cin / (r * r)
    let out = Tensor(uninitialized: [n, c, hgt * r, wid * r])
    pixelShufflePermute(x.data, out.data, planes: n * c, r: r, height: hgt, width: wid, inverse: false)
    Autograd.record(out, op: "pixelShuffle", parents: [x], saves: [false], savesOutput: false) { g in
        pixelShufflePermute(x.gradData(), g.data, planes: n * c, r: r, height: hgt, width: wid, inverse: true)
    }
    return out
}

/// Forward (`inverse == false`): big[p, h*r+i, w*r+j] = small[p*r*r + i*r + j, h, w].
/// Inverse (`inverse == true`): small[...] += big[...] (accumulating, for the gradient).
/// `small` is [planes*r*r, H, W], `big` is [planes, r*H, r*W].
private func pixelShufflePermute(_ small: UnsafeMutablePointer<Float>, _ big: UnsafeMutablePointer<Float>,
                                 planes: Int, r: Int, height hgt: Int, width wid: Int, inverse: Bool) {
    let hw = hgt * wid, bigW = wid * r
    // Planes are independent: split over the rank's threads.
    Parallel.forRows(planes, rowLength: hw * r * r) { range in
        for p in range {
            for i in 0..<r {
                for j in 0..<r {
                    let s = small + ((p * r + i) * r + j) * hw
                    let b = big + p * hw * r * r + i * bigW + j
                    for hh in 0..<hgt {
                        let sr = s + hh * wid
                        let br = b + hh * r * bigW
                        if inverse {
                            for ww in 0..<wid { sr[ww] += br[ww * r] }
                        } else {
                            for ww in 0..<wid { br[ww * r] = sr[ww] }
                        }
                    }
                }
            }
        }
    }
}
