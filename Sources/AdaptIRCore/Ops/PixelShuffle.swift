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
    pixelShufflePermute(x.data, out.data, planes: n * c, r: r, height: hgt, width: wid, inverse: false, accumulate: false)
    Autograd.record(out, op: "pixelShuffle", parents: [x], saves: [false], savesOutput: false) { g in
        let (gx, fresh) = x.gradForOverwrite()
        pixelShufflePermute(gx, g.data, planes: n * c, r: r, height: hgt, width: wid, inverse: true, accumulate: !fresh)
    }
    return out
}

/// Forward (`inverse == false`): big[p, h*r+i, w*r+j] = small[p*r*r + i*r + j, h, w].
/// Inverse (`inverse == true`): small[...] += big[...] (the gradient; = instead of += without `accumulate`).
/// `small` is [planes*r*r, H, W], `big` is [planes, r*H, r*W].
private func pixelShufflePermute(_ small: UnsafeMutablePointer<Float>, _ big: UnsafeMutablePointer<Float>,
                                 planes: Int, r: Int, height hgt: Int, width wid: Int, inverse: Bool, accumulate: Bool) {
    let hw = hgt * wid, bigW = wid * r
    // Planes are independent: split over the rank's threads.
    Parallel.forRows(planes, rowLength: hw * r * r) { range in
        for p in range {
            for i in 0..<r {
                if r == 2 {
                    // Both sub-columns of an output row at once: interleave (or split) two input rows, 8 floats each.
                    let s0 = small + (p * 4 + i * 2) * hw, s1 = s0 + hw
                    let b = big + p * hw * 4 + i * bigW
                    for hh in 0..<hgt {
                        pixelShuffleRow2(s0 + hh * wid, s1 + hh * wid, b + hh * 2 * bigW, width: wid, inverse: inverse,
                                         accumulate: accumulate)
                    }
                    continue
                }
                for j in 0..<r {
                    let s = small + ((p * r + i) * r + j) * hw
                    let b = big + p * hw * r * r + i * bigW + j
                    for hh in 0..<hgt {
                        let sr = s + hh * wid
                        let br = b + hh * r * bigW
                        if inverse && accumulate {
                            for ww in 0..<wid { sr[ww] += br[ww * r] }
                        } else if inverse {
                            for ww in 0..<wid { sr[ww] = br[ww * r] }
                        } else {
                            for ww in 0..<wid { br[ww * r] = sr[ww] }
                        }
                    }
                }
            }
        }
    }
}

/// One output row of a factor-2 shuffle: big[2w] = s0[w], big[2w+1] = s1[w] (or, inverse, s0[w] += big[2w] and
/// s1[w] += big[2w+1]; = without `accumulate`).
@inline(__always)
private func pixelShuffleRow2(_ s0: UnsafeMutablePointer<Float>, _ s1: UnsafeMutablePointer<Float>,
                              _ big: UnsafeMutablePointer<Float>, width wid: Int, inverse: Bool, accumulate: Bool) {
    let r0 = UnsafeMutableRawPointer(s0), r1 = UnsafeMutableRawPointer(s1), rb = UnsafeMutableRawPointer(big)
    var w = 0
    while w + 8 <= wid {
        if inverse {
            let v = rb.loadUnaligned(fromByteOffset: w * 8, as: SIMD16<Float>.self)
            var e = v.evenHalf, o = v.oddHalf
            if accumulate {
                e += r0.loadUnaligned(fromByteOffset: w * 4, as: SIMD8<Float>.self)
                o += r1.loadUnaligned(fromByteOffset: w * 4, as: SIMD8<Float>.self)
            }
            r0.storeBytes(of: e, toByteOffset: w * 4, as: SIMD8<Float>.self)
            r1.storeBytes(of: o, toByteOffset: w * 4, as: SIMD8<Float>.self)
        } else {
            var v = SIMD16<Float>()
            v.evenHalf = r0.loadUnaligned(fromByteOffset: w * 4, as: SIMD8<Float>.self)
            v.oddHalf = r1.loadUnaligned(fromByteOffset: w * 4, as: SIMD8<Float>.self)
            rb.storeBytes(of: v, toByteOffset: w * 8, as: SIMD16<Float>.self)
        }
        w += 8
    }
    while w < wid {
        if inverse && accumulate { s0[w] += big[2 * w]; s1[w] += big[2 * w + 1] }
        else if inverse { s0[w] = big[2 * w]; s1[w] = big[2 * w + 1] }
        else { big[2 * w] = s0[w]; big[2 * w + 1] = s1[w] }
        w += 1
    }
}
