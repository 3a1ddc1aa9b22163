// Sum and mean over axes. A reduction is a broadcast run backwards: the kept shape (reduced axes set to 1)
// broadcasts to x's shape, so the forward pass reuses `BroadcastPlan.reduceInto` and the backward `broadcastInto`.

/// Sum over `axes` (negative allowed, duplicates ignored): y[kept] = sum_{reduced} x.
/// With `keepDims` the reduced axes stay as size 1. Backward: dL/dx += g broadcast over the reduced axes.
public func sum(_ x: Tensor, axes: [Int], keepDims: Bool = false) -> Tensor {
    reduceSum(x, axes: axes, keepDims: keepDims, mean: false)
}

/// Mean over `axes`: y = sum_{reduced} x / (number of reduced elements). Backward: dL/dx += g / count, broadcast.
public func mean(_ x: Tensor, axes: [Int], keepDims: Bool = false) -> Tensor {
    reduceSum(x, axes: axes, keepDims: keepDims, mean: true)
}

/// Sum of all elements as a scalar of shape []: y = sum_i x_i; dL/dx_i += g.
public func sumAll(_ x: Tensor) -> Tensor { reduceAll(x, scale: 1, name: "sumAll") }

/// Mean of all elements as a scalar of shape []: y = sum_i x_i / n; dL/dx_i += g / n.
public func meanAll(_ x: Tensor) -> Tensor {
    reduceAll(x, scale: x.count == 0 ? .nan : 1 / Float(x.count), name: "meanAll")
}

private func reduceAll(_ x: Tensor, scale: Float, name: String) -> Tensor {
    let n = x.count, p = x.data
    let s = rowSum(p, n)
    let out = Tensor(shape: [], [Float(s) * scale])
    Autograd.record(out, op: name, parents: [x]) { g in
        let v = g.data[0] * scale
        let gx = x.gradData()
        for i in 0..<n { gx[i] += v }
    }
    return out
}

private func reduceSum(_ x: Tensor, axes: [Int], keepDims: Bool, mean: Bool) -> Tensor {
    let r = x.rank
    var reduced = [Bool](repeating: false, count: r)
    for a in axes {
        let k = a < 0 ? a + r : a
        precondition(k >= 0 && k < r, "\(mean ? "mean" : "sum"): axis \(a) out of range for shape \(x.shape)")
        reduced[k] = true
    }
    var kept = x.shape
    var reducedCount = 1
    for k in 0..<r where reduced[k] { reducedCount *= kept[k]; kept[k] = 1 }
    let outShape = keepDims ? kept : (0..<r).filter { !reduced[$0] }.map { x.shape[$0] }
    let scale: Float = mean ? (reducedCount == 0 ? .nan : 1 / Float(reducedCount)) : 1
    let plan = BroadcastPlan(kept, x.shape, op: "sum")
    let out = Tensor(zeros: outShape)
    plan.reduceInto(out.data, intoA: true, g: x.data, other: nil, scale: scale)
    Autograd.record(out, op: mean ? "mean" : "sum", parents: [x]) { g in
        plan.broadcastInto(x.gradData(), from: g.data, fromA: true, scale: scale)
    }
    return out
}
