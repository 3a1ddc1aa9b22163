/// Fully connected layer in PyTorch's layout: y[..., o] = sum_i x[..., i] * W[o, i] + b[o].
///
/// `rows` selects a contiguous block of W's rows (and of b) without copying, e.g. Wq, Wk, Wv inside an attention
/// `in_proj_weight` of shape [3d, d]; their gradients land in the matching rows of W's gradient.
public func linear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, rows: Range<Int>? = nil) -> Tensor {
    linearOp(x, weight, bias, rows: rows, relu: false)
}

/// relu(linear(x, W, b)) in one op: the bias and the ReLU are applied in one pass over the output after the GEMM,
/// instead of a bias pre-fill, a ReLU pass and a second tensor (the FFN's first layer is the model's largest
/// activation). Same values and gradients as the two ops.
public func linearReLU(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) -> Tensor {
    linearOp(x, weight, bias, rows: nil, relu: true)
}

private func linearOp(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, rows: Range<Int>?, relu: Bool) -> Tensor {
    precondition(weight.rank == 2, "linear weight must be [out, in], got \(weight.shape)")
    let inF = weight.shape[1]
    let rowRange = rows ?? 0..<weight.shape[0]
    precondition(rowRange.lowerBound >= 0 && rowRange.upperBound <= weight.shape[0], "rows \(rowRange) outside weight \(weight.shape)")
    let outF = rowRange.count
    precondition(x.rank >= 1 && x.shape.last == inF, "linear: input \(x.shape) does not end in \(inF) (weight \(weight.shape))")
    if let bias { precondition(bias.rank == 1 && bias.count == weight.shape[0], "linear bias \(bias.shape) does not match weight \(weight.shape)") }
    let m = x.count / max(inF, 1)
    let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [outF])
    let w0 = rowRange.lowerBound
    let y = out.data
    if let bias, !relu {
        let b = bias.data + w0
        for r in 0..<m { (y + r * outF).update(from: b, count: outF) }
    }
    BLAS.gemm(transA: false, transB: true, m: m, n: outF, k: inF, a: x.data, lda: inF,
              b: weight.data + w0 * inF, ldb: inF, beta: bias == nil || relu ? 0 : 1, c: y, ldc: outF)
    if relu {
        let b = bias.map { $0.data + w0 }
        for r in 0..<m {
            let row = y + r * outF
            if let b { for o in 0..<outF { let v = row[o] + b[o]; row[o] = v > 0 ? v : 0 } }
            else { for o in 0..<outF { row[o] = row[o] > 0 ? row[o] : 0 } }
        }
    }
    let saved = relu ? out.detached() : nil
    Autograd.record(out, op: relu ? "linearReLU" : "linear", parents: bias.map { [x, weight, $0] } ?? [x, weight]) { g in
        var gy = g.data
        var masked: Tensor?
        if let saved {
            // d/d(pre-activation) = g where the output is positive (0 at exactly 0, as PyTorch's ReLU).
            let t = Tensor(uninitialized: g.shape)
            let gp = g.data, yp = saved.data, tp = t.data
            for i in 0..<t.count { tp[i] = yp[i] > 0 ? gp[i] : 0 }
            masked = t
            gy = tp
        }
        if x.requiresGrad {
            BLAS.gemm(transA: false, transB: false, m: m, n: inF, k: outF, a: gy, lda: outF,
                      b: weight.data + w0 * inF, ldb: inF, beta: 1, c: x.gradData(), ldc: inF)
        }
        if weight.requiresGrad {
            BLAS.gemm(transA: true, transB: false, m: outF, n: inF, k: m, a: gy, lda: outF,
                      b: x.data, ldb: inF, beta: 1, c: weight.gradData() + w0 * inF, ldc: inF)
        }
        if let bias, bias.requiresGrad {
            let gb = bias.gradData() + w0
            for r in 0..<m {
                let row = gy + r * outF
                for o in 0..<outF { gb[o] += row[o] }
            }
        }
        withExtendedLifetime(masked) {}
    }
    return out
}
