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
        Parallel.forRows(m, rowLength: outF) { rows in for r in rows { (y + r * outF).update(from: b, count: outF) } }
    }
    BLAS.gemm(transA: false, transB: true, m: m, n: outF, k: inF, a: x.data, lda: inF,
              b: weight.data + w0 * inF, ldb: inF, beta: bias == nil || relu ? 0 : 1, c: y, ldc: outF)
    if relu {
        let b = bias.map { $0.data + w0 }
        Parallel.forRows(m, rowLength: outF) { rows in
            for r in rows {
                let row = y + r * outF
                if let b { for o in 0..<outF { let v = row[o] + b[o]; row[o] = v > 0 ? v : 0 } }
                else { for o in 0..<outF { row[o] = row[o] > 0 ? row[o] : 0 } }
            }
        }
    }
    // The ReLU's backward needs only where the output is positive: one bit per element, so the output's own
    // storage is not held for it (the caller may release it: FeedForwardWeights).
    let parents = bias.map { [x, weight, $0] } ?? [x, weight]
    let positive = relu && Autograd.willRecord(parents) ? PositiveMask(y, count: out.count) : nil
    // The backward reads x only for the weight's gradient, W only for x's; never the output (the ReLU keeps a mask).
    let saves = [weight.requiresGrad, x.requiresGrad] + (bias == nil ? [] : [false])
    Autograd.record(out, op: relu ? "linearReLU" : "linear", parents: parents, saves: saves, savesOutput: false) { g in
        var gy = g.data
        var masked: Tensor?
        if let positive {
            // d/d(pre-activation) = g where the output is positive (0 at exactly 0, as PyTorch's ReLU).
            let t = Tensor(uninitialized: g.shape)
            positive.select(g.data, into: t.data)
            masked = t
            gy = t.data
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

/// One bit per element: whether `y[i] > 0` (1/32 of the activation), built and applied 8 lanes at a time, in
/// chunks over the rank's threads.
private struct PositiveMask {
    let bytes: [UInt8]
    let count: Int

    init(_ y: UnsafePointer<Float>, count: Int) {
        self.count = count
        let full = count / 8
        var b = [UInt8](repeating: 0, count: (count + 7) / 8)
        b.withUnsafeMutableBufferPointer { bp in
            let raw = UnsafeRawPointer(y)
            let weights = SIMD8<Int32>(1, 2, 4, 8, 16, 32, 64, 128), zero = SIMD8<Int32>(repeating: 0)
            Parallel.forChunks(full, grain: Parallel.elementGrain / 8) { range in
                for j in range {
                    let v = raw.loadUnaligned(fromByteOffset: j * 32, as: SIMD8<Float>.self)
                    bp[j] = UInt8(truncatingIfNeeded: zero.replacing(with: weights, where: v .> 0).wrappedSum())
                }
            }
            if full * 8 < count {
                var last: UInt8 = 0
                for k in 0..<(count - full * 8) where y[full * 8 + k] > 0 { last |= 1 << UInt8(k) }
                bp[full] = last
            }
        }
        bytes = b
    }

    /// out[i] = g[i] where the mask is set, else 0: each mask byte picks 8 lane masks from a 256-entry table and
    /// ANDs them with the gradient's bits.
    func select(_ g: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let full = count / 8
        bytes.withUnsafeBufferPointer { bp in
            PositiveMask.laneMasks.withUnsafeBufferPointer { table in
                let graw = UnsafeRawPointer(g), oraw = UnsafeMutableRawPointer(out)
                Parallel.forChunks(full, grain: Parallel.elementGrain / 8) { range in
                    for j in range {
                        let gv = graw.loadUnaligned(fromByteOffset: j * 32, as: SIMD8<UInt32>.self)
                        oraw.storeBytes(of: gv & table[Int(bp[j])], toByteOffset: j * 32, as: SIMD8<UInt32>.self)
                    }
                }
            }
            for i in (full * 8)..<count { out[i] = (bp[full] >> UInt8(i - full * 8)) & 1 != 0 ? g[i] : 0 }
        }
    }

    /// Entry b: lane k all ones where bit k of b is set.
    private static let laneMasks: [SIMD8<UInt32>] = (0..<256).map { b in
        var m = SIMD8<UInt32>(repeating: 0)
        for k in 0..<8 where (b >> k) & 1 != 0 { m[k] = .max }
        return m
    }
}
