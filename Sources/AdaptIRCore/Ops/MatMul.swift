/// Matrix product of two 2-D tensors: C[m, n] = sum_k A[m, k] B[k, n].
/// Backward: dA += dC B^T, dB += A^T dC.
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.rank == 2 && b.rank == 2 && a.shape[1] == b.shape[0], "matmul: shapes \(a.shape) and \(b.shape) do not chain")
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
    let out = Tensor(uninitialized: [m, n])
    BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: n, c: out.data, ldc: n)
    Autograd.record(out, op: "matmul", parents: [a, b]) { g in
        if a.requiresGrad {
            BLAS.gemm(transA: false, transB: true, m: m, n: k, k: n, a: g.data, lda: n, b: b.data, ldb: n, beta: 1, c: a.gradData(), ldc: k)
        }
        if b.requiresGrad {
            BLAS.gemm(transA: true, transB: false, m: k, n: n, k: m, a: a.data, lda: k, b: g.data, ldb: n, beta: 1, c: b.gradData(), ldc: n)
        }
    }
    return out
}
