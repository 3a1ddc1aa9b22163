import XCTest
import AdaptIRCore

final class GemmTests: XCTestCase {
    /// OpenBLAS's Prescott fallback on an unknown AVX-512 CPU is replaced by SkylakeX, on an AVX2 one by Haswell;
    /// its AVX-512 kernels on an AMD family 25 CPU (Zen 4) by Haswell; a fitting choice (Intel AVX-512, Zen 3's
    /// Haswell, a later AMD family), a CPU without AVX2 and a user's own OPENBLAS_CORETYPE are left alone.
    func testCoreTypeOverrideOnlyReplacesAFallbackTheCPUOutgrowsOrAVX512OnZen4() {
        func pick(_ current: String, _ level: Int, amd: Int = 0, user: String? = nil) -> String? {
            BLAS.coreTypeOverride(current: current, vectorLevel: level, amdFamily: amd, userSetting: user).map { "\($0.core) \($0.fallback)" }
        }
        XCTAssertEqual(pick("Prescott", 2), "SkylakeX true")
        XCTAssertEqual(pick("Prescott", 1), "Haswell true")
        XCTAssertEqual(pick("Sandybridge", 1), "Haswell true")
        XCTAssertEqual(pick("Prescott", 2, amd: 25), "SkylakeX true")
        XCTAssertNil(pick("Prescott", 0))
        XCTAssertNil(pick("Prescott", 2, user: "Prescott"))
        XCTAssertNil(pick("Prescott", 2, user: ""))
        for fitting in ["Haswell", "SkylakeX", "Cooperlake", "Zen", "SapphireRapids"] {
            XCTAssertNil(pick(fitting, 2), fitting)
            XCTAssertNil(pick(fitting, 2, amd: 26), "\(fitting) on AMD family 26")
        }
        for avx512 in ["SkylakeX", "Cooperlake", "SapphireRapids"] {
            XCTAssertEqual(pick(avx512, 2, amd: 25), "Haswell false", avx512)
            XCTAssertNil(pick(avx512, 2, amd: 25, user: avx512), "\(avx512) set by the user")
        }
        XCTAssertNil(pick("Haswell", 1, amd: 25), "Zen 3: Haswell fits")
        XCTAssertNil(pick("Zen", 1, amd: 25))
    }

    /// C = alpha op(A) op(B) + beta C against a naive triple loop, for every transpose combination, with leading
    /// dimensions larger than the matrices (sub-blocks, as attention's head slices use).
    func testEveryTransposeCombinationAgainstNaive() {
        var rng = TestRNG(seed: 11)
        let (m, n, k) = (5, 7, 3)
        for transA in [false, true] {
            for transB in [false, true] {
                let (ar, ac) = transA ? (k, m) : (m, k)
                let (br, bc) = transB ? (n, k) : (k, n)
                let lda = ac + 2, ldb = bc + 1, ldc = n + 3
                let a = (0..<(ar * lda)).map { _ in rng.uniform() }
                let b = (0..<(br * ldb)).map { _ in rng.uniform() }
                var c = (0..<(m * ldc)).map { _ in rng.uniform() }
                let c0 = c
                let (alpha, beta): (Float, Float) = (0.7, -1.3)
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                      a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                                      beta: beta, c: cp.baseAddress!, ldc: ldc)
                        }
                    }
                }
                for i in 0..<m {
                    for j in 0..<ldc {
                        guard j < n else {
                            XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j], "padding column touched")
                            continue
                        }
                        var s: Float = 0
                        for p in 0..<k {
                            let av = transA ? a[p * lda + i] : a[i * lda + p]
                            let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                            s += av * bv
                        }
                        XCTAssertEqual(c[i * ldc + j], alpha * s + beta * c0[i * ldc + j], accuracy: 1e-5,
                                       "transA \(transA) transB \(transB) at (\(i), \(j))")
                    }
                }
            }
        }
    }

    func testStridedBatchedEqualsLoopOfGemms() {
        var rng = TestRNG(seed: 12)
        let (m, n, k, batch) = (4, 3, 5, 3)
        let a = rng.tensor([batch, m, k]), b = rng.tensor([batch, n, k])
        let c = Tensor(zeros: [batch, m, n])
        BLAS.gemmStridedBatched(transA: false, transB: true, m: m, n: n, k: k, a: a.data, lda: k, strideA: m * k,
                                b: b.data, ldb: k, strideB: n * k, c: c.data, ldc: n, strideC: m * n, batch: batch)
        for s in 0..<batch {
            for i in 0..<m {
                for j in 0..<n {
                    var acc: Float = 0
                    for p in 0..<k { acc += a[flat: (s * m + i) * k + p] * b[flat: (s * n + j) * k + p] }
                    XCTAssertEqual(c[flat: (s * m + i) * n + j], acc, accuracy: 1e-5)
                }
            }
        }
    }

    func testZeroInnerDimensionScalesC() {
        let c = Tensor(shape: [2, 2], [1, 2, 3, .nan])
        let a = Tensor(zeros: [2, 0]), b = Tensor(zeros: [0, 2])
        BLAS.gemm(transA: false, transB: false, m: 2, n: 2, k: 0, a: a.data, lda: 1, b: b.data, ldb: 2, beta: 0, c: c.data, ldc: 2)
        XCTAssertEqual(c.toArray(), [0, 0, 0, 0])
    }

    func testMatmulForwardAndGradients() {
        var rng = TestRNG(seed: 13)
        let a = rng.tensor([3, 4]), b = rng.tensor([4, 2])
        let y = matmul(a, b)
        for i in 0..<3 { for j in 0..<2 {
            var s: Float = 0
            for p in 0..<4 { s += a[flat: i * 4 + p] * b[flat: p * 2 + j] }
            XCTAssertEqual(y[flat: i * 2 + j], s, accuracy: 1e-5)
        } }
        checkGradients([rng.tensor([3, 4]), rng.tensor([4, 2])]) { matmul($0[0], $0[1]) }
    }

    func testSelectForwardAndGradient() {
        var rng = TestRNG(seed: 14)
        let x = rng.tensor([3, 2, 2])
        XCTAssertEqual(select(x, index: 1).toArray(), Array(x.toArray()[4..<8]))
        checkGradients([rng.tensor([3, 2, 2])]) { select($0[0], index: 2) }
        let w = rng.tensor([3, 4], requiresGrad: true)
        select(w, index: 0).backward(seed: Tensor(shape: [4], repeating: 1))
        XCTAssertEqual(w.grad!.toArray(), [1, 1, 1, 1] + [Float](repeating: 0, count: 8))
    }
}
