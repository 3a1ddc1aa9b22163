/// x[index] along the first axis (a copy): [n, ...rest] -> [...rest]. IPT picks its task's query embedding this way.
/// Backward accumulates into that slice of x's gradient only.
public func select(_ x: Tensor, index: Int) -> Tensor {
    precondition(x.rank >= 1 && index >= 0 && index < x.shape[0], "select: index \(index) outside first axis of \(x.shape)")
    let rest = Array(x.shape.dropFirst())
    let n = rest.product
    let out = Tensor(uninitialized: rest)
    out.data.update(from: x.data + index * n, count: n)
    Autograd.record(out, op: "select", parents: [x]) { g in
        let gx = x.gradData() + index * n
        let gy = g.data
        for i in 0..<n { gx[i] += gy[i] }
    }
    return out
}
