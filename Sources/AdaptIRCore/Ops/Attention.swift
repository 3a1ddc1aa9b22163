import Foundation

/// Multi-head scaled dot-product attention without projections (the core of `nn.MultiheadAttention`).
///
/// q is [N, Lq, d], k and v are [N, Lk, d]; head h owns the contiguous feature slice [h*dh, (h+1)*dh), dh = d/heads:
///
///     S_h = Q_h K_h^T / sqrt(dh),  P_h = softmax over keys (rows of S_h),  O_h = P_h V_h
///
/// and the output [N, Lq, d] holds O_h in the same slices (heads concatenated, before the out-projection).
/// No mask, no dropout. One GEMM per (sample, head) on the strided slices (lda = d).
///
/// Backward: dV_h = P^T dO_h, dP = dO_h V_h^T, dS = P * (dP - rowsum(dP * P)) / sqrt(dh),
/// dQ_h = dS K_h, dK_h = dS^T Q_h. q, k, v may be the same tensor (self-attention); gradients then add up.
///
/// Memory: the backward needs every P_h. A call keeps all of its P_h from the forward when they fit in what is left
/// of the rank's budget for kept probabilities (`AttentionMemory`, shared by every call whose graph is alive);
/// otherwise it keeps none and its backward recomputes each P_h from Q and K with the same GEMM and softmax
/// (bit-identical values, one more lq x lk x dh GEMM per head), as flash attention does, so no [N, heads, Lq, Lk]
/// tensor of that call lives across the forward (48 MiB per attention at ipt, batch 16).
public func scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, heads: Int) -> Tensor {
    precondition(q.rank == 3 && k.rank == 3 && v.rank == 3,
                 "scaledDotProductAttention: q \(q.shape), k \(k.shape), v \(v.shape) must be [N, L, d]")
    let n = q.shape[0], lq = q.shape[1], d = q.shape[2], lk = k.shape[1]
    precondition(k.shape == [n, lk, d] && v.shape == [n, lk, d],
                 "scaledDotProductAttention: k \(k.shape) and v \(v.shape) must be [\(n), Lk, \(d)] for q \(q.shape)")
    precondition(heads > 0 && d % heads == 0, "scaledDotProductAttention: d = \(d) not divisible by heads = \(heads)")
    let dh = d / heads
    let scale = Float(1.0 / Double(dh).squareRoot())
    let out = Tensor(uninitialized: [n, lq, d])
    let recording = Autograd.willRecord([q, k, v])
    let pSize = lq * lk
    // Attention probabilities: kept for all (sample, head) pairs when the backward needs them and they fit the
    // budget, else one scratch (the backward then recomputes them).
    let reservation = recording ? AttentionMemory.reserve(bytes: n * heads * pSize * MemoryLayout<Float>.size) : nil
    let store = reservation != nil
    let probs = Tensor(uninitialized: [store ? n * heads * pSize : 0])
    let vp = v.data, op = out.data, pAll = probs.data
    /// P_h of sample s into p: the scaled scores, then the row softmax.
    func probabilities(_ s: Int, _ h: Int, into p: UnsafeMutablePointer<Float>) {
        BLAS.gemm(transA: false, transB: true, m: lq, n: lk, k: dh, alpha: scale,
                  a: q.data + s * lq * d + h * dh, lda: d, b: k.data + s * lk * d + h * dh, ldb: d, beta: 0, c: p, ldc: lk)
        softmaxRows(p, p, rows: lq, cols: lk)
    }
    // The (sample, head) pairs are independent: split over the rank's threads (`Parallel`), one scratch each.
    Parallel.forRanges(n * heads, grain: 1) { pairs in
        let scratch = Buffer(count: store ? 0 : pSize, zeroed: false)
        for pair in pairs {
            let s = pair / heads, h = pair % heads
            let p = store ? pAll + pair * pSize : scratch.base
            let vh = vp + s * lk * d + h * dh
            probabilities(s, h, into: p)
            BLAS.gemm(transA: false, transB: false, m: lq, n: dh, k: lk,
                      a: p, lda: lk, b: vh, ldb: d, beta: 0, c: op + s * lq * d + h * dh, ldc: d)
        }
    }
    guard recording else { return out }
    let kept: Tensor? = store ? probs : nil
    Autograd.record(out, op: "scaledDotProductAttention", parents: [q, k, v], savesOutput: false) { g in
        // The reservation lives as long as this closure (the graph), and returns its bytes to the budget with it.
        withExtendedLifetime(reservation) {}
        let gp = g.data, qp = q.data, kp = k.data, vp = v.data
        let gq = q.requiresGrad ? q.gradData() : nil
        let gk = k.requiresGrad ? k.gradData() : nil
        let gv = v.requiresGrad ? v.gradData() : nil
        let needScores = gq != nil || gk != nil
        // Every (sample, head) pair writes only its own slices of dQ, dK and dV: split like the forward.
        Parallel.forRanges(n * heads, grain: 1) { pairs in
            let scratch = Buffer(count: kept == nil ? pSize : 0, zeroed: false)
            let dS = Buffer(count: needScores ? pSize : 0, zeroed: false)
            let ds = dS.base
            for pair in pairs {
                let s = pair / heads, h = pair % heads
                let p: UnsafeMutablePointer<Float>
                if let kept { p = kept.data + pair * pSize } else { p = scratch.base; probabilities(s, h, into: p) }
                let qOff = s * lq * d + h * dh, kOff = s * lk * d + h * dh
                let go = gp + qOff
                if let gv {
                    BLAS.gemm(transA: true, transB: false, m: lk, n: dh, k: lq,
                              a: p, lda: lk, b: go, ldb: d, beta: 1, c: gv + kOff, ldc: d)
                }
                guard needScores else { continue }
                // dP = dO V^T, then dS = P * (dP - rowsum(dP * P)) * scale, in place.
                BLAS.gemm(transA: false, transB: true, m: lq, n: lk, k: dh,
                          a: go, lda: d, b: vp + kOff, ldb: d, beta: 0, c: ds, ldc: lk)
                for r in 0..<lq {
                    let pr = p + r * lk, dr = ds + r * lk
                    let dot = Float(rowDot(dr, pr, lk))
                    for j in 0..<lk { dr[j] = pr[j] * (dr[j] - dot) * scale }
                }
                if let gq {
                    BLAS.gemm(transA: false, transB: false, m: lq, n: dh, k: lk,
                              a: ds, lda: lk, b: kp + kOff, ldb: d, beta: 1, c: gq + qOff, ldc: d)
                }
                if let gk {
                    BLAS.gemm(transA: true, transB: false, m: lk, n: dh, k: lq,
                              a: ds, lda: lk, b: qp + qOff, ldb: d, beta: 1, c: gk + kOff, ldc: d)
                }
            }
        }
    }
    return out
}

/// How much attention-probability memory the rank keeps from forwards for their backwards, all calls together.
///
/// A recording `scaledDotProductAttention` reserves its probabilities' bytes; the reservation is released when its
/// graph goes (after its backward, or when the graph is dropped), so what is kept at any time never exceeds the
/// budget. With the default 1 GiB, preset small keeps every call's probabilities, ipt at batch 8 too (35 x 24 MiB:
/// the first layer's attention has no backward), and ipt at batch 16 the first 21 of its 35 (48 MiB each) while the
/// other 14 recompute theirs: each kept one saves a GEMM and a softmax in the backward (about 27 ms at ipt, batch 16)
/// for 48 MiB of peak memory.
/// `train`'s `attention_memory_mib` and `bench step --attention-memory-mib` set it; 0 recomputes every P_h.
public enum AttentionMemory {
    /// The budget in bytes (default 1 GiB).
    nonisolated(unsafe) public static var storeProbabilitiesUpToBytes = 1 << 30
    nonisolated(unsafe) private static var reservedBytes = 0
    private static let lock = NSLock()

    /// Bytes held now by reservations (kept probabilities whose graph is alive).
    public static var keptBytes: Int { lock.withLock { reservedBytes } }

    /// A hold on `bytes` of the budget, or nil when they do not fit in what is left of it.
    static func reserve(bytes: Int) -> Reservation? {
        lock.withLock {
            guard reservedBytes + bytes <= storeProbabilitiesUpToBytes else { return nil }
            reservedBytes += bytes
            return Reservation(bytes: bytes)
        }
    }

    /// Returns its bytes to the budget when released.
    final class Reservation: @unchecked Sendable {
        let bytes: Int
        fileprivate init(bytes: Int) { self.bytes = bytes }
        deinit { AttentionMemory.lock.withLock { AttentionMemory.reservedBytes -= bytes } }
    }
}

/// `nn.MultiheadAttention(d, heads, bias=False)` on batch-first tokens [N, L, d]:
///
///     Q = query Wq^T, K = key Wk^T, V = value Wv^T   (Wq, Wk, Wv = rows [0,d), [d,2d), [2d,3d) of inProjWeight [3d, d])
///     out = scaledDotProductAttention(Q, K, V, heads) Wo^T   (outProjWeight [d, d])
public func multiHeadAttention(query: Tensor, key: Tensor, value: Tensor, inProjWeight: Tensor,
                               outProjWeight: Tensor, heads: Int) -> Tensor {
    let d = query.shape.last ?? 0
    precondition(inProjWeight.shape == [3 * d, d], "multiHeadAttention: inProjWeight \(inProjWeight.shape) must be [\(3 * d), \(d)]")
    precondition(outProjWeight.shape == [d, d], "multiHeadAttention: outProjWeight \(outProjWeight.shape) must be [\(d), \(d)]")
    let q = linear(query, inProjWeight, nil, rows: 0..<d)
    let k = linear(key, inProjWeight, nil, rows: d..<(2 * d))
    let v = linear(value, inProjWeight, nil, rows: (2 * d)..<(3 * d))
    let o = scaledDotProductAttention(q: q, k: k, v: v, heads: heads)
    return linear(o, outProjWeight)
}
