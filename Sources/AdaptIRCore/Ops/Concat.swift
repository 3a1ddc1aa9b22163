// Joining and cutting along one axis (VPT's prompt tokens, the router weights of a mixture of experts).

/// Strides of a row-major shape around `axis`: (product of the axes before, size of the axis, product after).
private func split(_ shape: [Int], _ axis: Int) -> (outer: Int, size: Int, inner: Int) {
    (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
}

/// torch.cat: the tensors joined along `axis` (every other dimension equal). Backward: each input gets its slice
/// of the gradient.
public func concatenate(_ xs: [Tensor], axis: Int) -> Tensor {
    precondition(!xs.isEmpty, "concatenate: no tensors")
    let r = xs[0].rank
    let ax = axis < 0 ? axis + r : axis
    precondition(ax >= 0 && ax < r, "concatenate: axis \(axis) outside rank \(r)")
    for x in xs {
        precondition(x.rank == r && (0..<r).allSatisfy { $0 == ax || x.shape[$0] == xs[0].shape[$0] },
                     "concatenate: \(x.shape) does not match \(xs[0].shape) outside axis \(ax)")
    }
    var shape = xs[0].shape
    shape[ax] = xs.reduce(0) { $0 + $1.shape[ax] }
    let out = Tensor(uninitialized: shape)
    let (outer, total, inner) = split(shape, ax)
    var offsets: [Int] = []
    var o = 0
    for x in xs { offsets.append(o); o += x.shape[ax] }
    let y = out.data
    for (x, off) in zip(xs, offsets) {
        let n = x.shape[ax] * inner, src = x.data
        for b in 0..<outer { (y + (b * total + off) * inner).update(from: src + b * n, count: n) }
    }
    Autograd.record(out, op: "concatenate", parents: xs) { g in
        let gy = g.data
        for (x, off) in zip(xs, offsets) where x.requiresGrad {
            let n = x.shape[ax] * inner, gx = x.gradData()
            for b in 0..<outer {
                let s = gy + (b * total + off) * inner, d = gx + b * n
                for i in 0..<n { d[i] += s[i] }
            }
        }
    }
    return out
}

/// torch.narrow (as a copy): `length` entries of `axis` from `start`. Backward adds the gradient into that slice.
public func narrow(_ x: Tensor, axis: Int, start: Int, length: Int) -> Tensor {
    let ax = axis < 0 ? axis + x.rank : axis
    precondition(ax >= 0 && ax < x.rank, "narrow: axis \(axis) outside rank \(x.rank)")
    precondition(start >= 0 && length >= 0 && start + length <= x.shape[ax],
                 "narrow: [\(start), \(start + length)) outside axis \(ax) of \(x.shape)")
    var shape = x.shape
    shape[ax] = length
    let out = Tensor(uninitialized: shape)
    let (outer, total, inner) = split(x.shape, ax)
    let n = length * inner, src = x.data, y = out.data
    for b in 0..<outer { (y + b * n).update(from: src + (b * total + start) * inner, count: n) }
    Autograd.record(out, op: "narrow", parents: [x]) { g in
        let gx = x.gradData(), gy = g.data
        for b in 0..<outer {
            let d = gx + (b * total + start) * inner, s = gy + b * n
            for i in 0..<n { d[i] += s[i] }
        }
    }
    return out
}

/// torch.expand (as a copy): size-1 or missing leading axes repeated to `shape` (numpy broadcasting). Backward
/// sums the gradient over the repeated axes.
public func expand(_ x: Tensor, to shape: [Int]) -> Tensor {
    add(Tensor(zeros: shape), x)
}
