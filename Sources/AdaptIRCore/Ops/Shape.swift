// Shape ops: reshape (a view, no copy) and permute (a copying transpose).

/// Same elements, new shape (PyTorch `view`/`reshape` on contiguous data). Shares storage with `x`.
/// One entry may be -1 and is inferred. Backward: dL/dx += g (flat, same order).
public func reshape(_ x: Tensor, _ shape: [Int]) -> Tensor {
    var s = shape
    let inferred = s.indices.filter { s[$0] == -1 }
    precondition(inferred.count <= 1 && s.allSatisfy({ $0 >= -1 }), "reshape: bad target shape \(shape) for \(x.shape)")
    if let k = inferred.first {
        var known = 1
        for (i, d) in s.enumerated() where i != k { known *= d }
        precondition(known > 0 && x.count % known == 0, "reshape: cannot infer -1 in \(shape) for \(x.shape)")
        s[k] = x.count / known
    }
    precondition(s.product == x.count, "reshape: \(x.shape) (\(x.count) elements) cannot become \(shape)")
    let out = Tensor(viewing: x.buffer, offset: x.offset, shape: s)
    let n = x.count
    Autograd.record(out, op: "reshape", parents: [x], saves: [false], savesOutput: false) { g in
        let gx = x.gradData(), gy = g.data
        for i in 0..<n { gx[i] += gy[i] }
    }
    return out
}

/// Axis permutation into a new contiguous tensor (PyTorch `x.permute(dims).contiguous()`):
/// y[i_0, ..., i_{r-1}] = x[j] with j_{dims[k]} = i_k, so y.shape[k] = x.shape[dims[k]]. Negative dims allowed.
/// Backward: dL/dx += permute(g, inverse(dims)).
public func permute(_ x: Tensor, _ dims: [Int]) -> Tensor {
    let r = x.rank
    let perm = dims.map { $0 < 0 ? $0 + r : $0 }
    precondition(perm.count == r && Set(perm) == Set(0..<r), "permute: \(dims) is not a permutation of the axes of \(x.shape)")
    let outShape = perm.map { x.shape[$0] }
    let out = Tensor(uninitialized: outShape)
    permuteCopy(src: x.data, srcShape: x.shape, perm: perm, dst: out.data, accumulate: false)
    var inverse = [Int](repeating: 0, count: r)
    for (k, p) in perm.enumerated() { inverse[p] = k }
    Autograd.record(out, op: "permute", parents: [x], saves: [false], savesOutput: false) { g in
        permuteCopy(src: g.data, srcShape: outShape, perm: inverse, dst: x.gradData(), accumulate: true)
    }
    return out
}

/// dst (contiguous, shape srcShape permuted by `perm`) = (or +=) src permuted.
///
/// Size-1 axes are dropped and output axes that are also adjacent and in order in the source are merged, so
/// (L, N, d) -> (N, d, L) and tokens (16, 16, N, C) -> (N, C, 16, 16) become plain 2-D transposes and the
/// attention head split (L, N, h, dh) -> (N, h, L, dh) becomes row copies. When the source's fastest axis is not
/// the output's last axis, the two are transposed in 32 x 32 tiles; the remaining axes are walked by an odometer.
func permuteCopy(src: UnsafePointer<Float>, srcShape: [Int], perm: [Int], dst: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let total = srcShape.product
    if total == 0 { return }
    let r = srcShape.count
    var srcStrides = [Int](repeating: 1, count: r)
    var acc = 1
    for i in stride(from: r - 1, through: 0, by: -1) { srcStrides[i] = acc; acc *= srcShape[i] }
    // Collapsed axes in output order: size and source stride (destination is contiguous).
    var size: [Int] = [], sstr: [Int] = []
    for k in 0..<r {
        let n = srcShape[perm[k]], s = srcStrides[perm[k]]
        if n == 1 { continue }
        if let last = sstr.last, last == s * n {
            size[size.count - 1] *= n
            sstr[sstr.count - 1] = s
        } else {
            size.append(n); sstr.append(s)
        }
    }
    if size.isEmpty {
        if accumulate { dst[0] += src[0] } else { dst[0] = src[0] }
        return
    }
    let m = size.count
    var dstr = [Int](repeating: 1, count: m)
    acc = 1
    for i in stride(from: m - 1, through: 0, by: -1) { dstr[i] = acc; acc *= size[i] }
    let a = m - 1                                   // output's fastest axis
    var b = 0                                       // source's fastest axis
    for i in 0..<m where sstr[i] < sstr[b] { b = i }

    if b == a || sstr[a] == 1 {
        // Rows: contiguous in both.
        let n = size[a]
        walk(size, sstr, dstr, skipping: a, a) { so, d0 in
            let s = src + so, d = dst + d0
            if accumulate { for i in 0..<n { d[i] += s[i] } } else { d.update(from: s, count: n) }
        }
        return
    }
    // Tiled 2-D transpose between axis a (dst stride 1, src stride sa) and axis b (src stride sb, dst stride db).
    let na = size[a], nb = size[b], sa = sstr[a], sb = sstr[b], db = dstr[b]
    let tile = 32
    walk(size, sstr, dstr, skipping: a, b) { so, d0 in
        let s0 = src + so, dd = dst + d0
        var ib0 = 0
        while ib0 < nb {
            let ib1 = min(ib0 + tile, nb)
            var ia0 = 0
            while ia0 < na {
                let ia1 = min(ia0 + tile, na)
                for ib in ib0..<ib1 {
                    let d = dd + ib * db, s = s0 + ib * sb
                    if accumulate { for ia in ia0..<ia1 { d[ia] += s[ia * sa] } }
                    else { for ia in ia0..<ia1 { d[ia] = s[ia * sa] } }
                }
                ia0 = ia1
            }
            ib0 = ib1
        }
    }
}

/// Odometer over every axis except `skip1` and `skip2`, giving (source offset, destination offset). The positions
/// are split over the rank's threads (each writes its own destination elements).
@inline(__always)
private func walk(_ size: [Int], _ sstr: [Int], _ dstr: [Int], skipping skip1: Int, _ skip2: Int,
                  _ body: (Int, Int) -> Void) {
    let axes = (0..<size.count).filter { $0 != skip1 && $0 != skip2 }
    let outer = axes.reduce(1) { $0 * size[$1] }
    let inner = size.count == 0 ? 1 : size[skip1] * (skip2 == skip1 ? 1 : size[skip2])
    Parallel.forRanges(outer, grain: max(1, Parallel.elementGrain / max(inner, 1))) { range in
        // The odometer at position range.lowerBound.
        var idx = [Int](repeating: 0, count: axes.count)
        var so = 0, d = 0, rest = range.lowerBound
        for k in stride(from: axes.count - 1, through: 0, by: -1) {
            let ax = axes[k]
            idx[k] = rest % size[ax]; rest /= size[ax]
            so += idx[k] * sstr[ax]; d += idx[k] * dstr[ax]
        }
        for _ in range {
            body(so, d)
            var k = axes.count - 1
            while k >= 0 {
                let ax = axes[k]
                idx[k] += 1; so += sstr[ax]; d += dstr[ax]
                if idx[k] < size[ax] { break }
                so -= sstr[ax] * size[ax]; d -= dstr[ax] * size[ax]; idx[k] = 0
                k -= 1
            }
        }
    }
}
