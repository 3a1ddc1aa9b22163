/// Mean absolute error (PyTorch `nn.L1Loss()`, reduction "mean"): L = (1/n) sum_i |p_i - t_i|, a scalar of shape [].
/// dL/dp_i = g * sign(p_i - t_i) / n (0 where equal); dL/dt_i = -dL/dp_i. Shapes must match exactly.
public func l1Loss(_ prediction: Tensor, _ target: Tensor) -> Tensor {
    precondition(prediction.shape == target.shape, "l1Loss: prediction \(prediction.shape) vs target \(target.shape)")
    let n = prediction.count
    let p = prediction.data, t = target.data
    // Fixed blocks summed in Double on the rank's threads, then added in block order: the same value for any
    // thread count.
    let block = Parallel.elementGrain, blocks = (n + block - 1) / block
    var partial = [Double](repeating: 0, count: blocks)
    partial.withUnsafeMutableBufferPointer { part in
        Parallel.forRanges(blocks, grain: 1) { r in
            for b in r {
                var acc: Double = 0
                for i in (b * block)..<min(n, (b + 1) * block) { acc += Double(Swift.abs(p[i] - t[i])) }
                part[b] = acc
            }
        }
    }
    let s = partial.reduce(0, +)
    let out = Tensor(shape: [], [n == 0 ? .nan : Float(s / Double(n))])
    Autograd.record(out, op: "l1Loss", parents: [prediction, target]) { g in
        let v = g.data[0] / Float(n)
        let p = prediction.data, t = target.data
        if prediction.requiresGrad {
            let (gp, fresh) = prediction.gradForOverwrite()
            if fresh { Parallel.forChunks(n) { r in for i in r { let d = p[i] - t[i]; gp[i] = d > 0 ? v : d < 0 ? -v : 0 } } }
            else { Parallel.forChunks(n) { r in for i in r { let d = p[i] - t[i]; if d > 0 { gp[i] += v } else if d < 0 { gp[i] -= v } } } }
        }
        if target.requiresGrad {
            let gt = target.gradData()
            Parallel.forChunks(n) { r in for i in r { let d = p[i] - t[i]; if d > 0 { gt[i] -= v } else if d < 0 { gt[i] += v } } }
        }
    }
    return out
}
