import CBLAS
import CRuntime
import Foundation

/// Thin wrappers over OpenBLAS `cblas_sgemm` (row-major). `transA`/`transB` say whether A and B are read
/// transposed: C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C.
public enum BLAS {
    @inline(__always)
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            // cblas with k = 0 only scales C; do it here so beta = 0 also clears NaNs.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        let t0 = profile != nil ? monotonicSeconds() : 0
        if Parallel.available && m * n * k >= splitMNK && max(m, n) >= 2 * splitAlign {
            // Disjoint blocks of C, one per thread: rows of op(A) and C, or columns of op(B) and C when C is wide.
            if m >= n {
                Parallel.forRanges(m, grain: splitAlign, align: splitAlign) { r in
                    sgemm(transA, transB, r.count, n, k, alpha, a + (transA ? r.lowerBound : r.lowerBound * lda), lda,
                          b, ldb, beta, c + r.lowerBound * ldc, ldc)
                }
            } else {
                Parallel.forRanges(n, grain: splitAlign, align: splitAlign) { r in
                    sgemm(transA, transB, m, r.count, k, alpha, a, lda, b + (transB ? r.lowerBound * ldb : r.lowerBound), ldb,
                          beta, c + r.lowerBound, ldc)
                }
            }
        } else {
            sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        }
        if let profile { profile.add(transA: transA, transB: transB, m: m, n: n, k: k, seconds: monotonicSeconds() - t0) }
    }

    /// GEMMs of at least this many multiply-adds (m*n*k) are split over `Parallel.threads` (about 20 us on one
    /// core: below it a split costs more than it saves).
    nonisolated(unsafe) public static var splitMNK = 1 << 20
    /// Rows or columns per block of a split GEMM are multiples of this (OpenBLAS's Haswell micro-tile is 16 x 4).
    static let splitAlign = 16

    @inline(__always)
    private static func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                              _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                              _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// When set, every `gemm` call is timed by shape (`bench model --profile`); calls inside a parallel region
    /// (`Parallel`) are timed each on its own thread.
    nonisolated(unsafe) public static var profile: GemmProfile?

    /// `batch` independent GEMMs whose operands start `strideA`, `strideB`, `strideC` floats apart
    /// (attention: one per sample and head). OpenBLAS 0.3.21 has no batched call, so this loops.
    public static func gemmStridedBatched(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, strideA: Int,
        b: UnsafePointer<Float>, ldb: Int, strideB: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int,
        batch: Int
    ) {
        for i in 0..<batch {
            gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                 a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
                 beta: beta, c: c + i * strideC, ldc: ldc)
        }
    }

    /// Threads OpenBLAS uses for one call.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// The kernel family OpenBLAS selected at run time (e.g. "Cooperlake", "Haswell").
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// OpenBLAS kernel families without AVX2 sgemm kernels. A DYNAMIC_ARCH build (Debian's) falls back to
    /// Prescott when its cpuid tables do not know the CPU: OpenBLAS 0.3.21 on a family 6 model 207 Xeon (Emerald
    /// Rapids, AVX-512) picks Prescott, and a small training step then takes 3.3x as long as with SkylakeX.
    static let preAVX2Cores: Set<String> = [
        "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom",
        "Sandybridge", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Bobcat", "Bulldozer", "Piledriver",
        "Steamroller", "Nano",
    ]

    /// OpenBLAS kernel families built on AVX-512.
    static let avx512Cores: Set<String> = ["SkylakeX", "Cooperlake", "SapphireRapids"]

    /// The `OPENBLAS_CORETYPE` this process should run with instead of OpenBLAS's own choice (`current`), or nil:
    /// - OpenBLAS chose a family older than the CPU's vector units (`vectorLevel`: 2 AVX-512, 1 AVX2 + FMA, as
    ///   `swrt_x86_vector_level`; a CPU its tables do not know): SkylakeX or Haswell, whichever the CPU has
    ///   (`fallback` true);
    /// - an AMD CPU of family 25 (`amdFamily`, as `swrt_x86_amd_family`: Zen 4 there, whose AVX-512 runs as two
    ///   256-bit halves) with an AVX-512 family chosen: Haswell, whose sgemm OpenBLAS 0.3.21 runs faster there
    ///   (docs/performance.md, the A/B before run 14: 2.5-3.5 % per ipt step, 1.3-3.7 % per small step, 4-6 % per isolated GEMM).
    /// nil when OpenBLAS's choice fits, when the CPU has neither, or when the user set `OPENBLAS_CORETYPE`
    /// (`userSetting`) themselves.
    public static func coreTypeOverride(current: String, vectorLevel: Int, amdFamily: Int = 0,
                                        userSetting: String?) -> (core: String, fallback: Bool)? {
        guard userSetting == nil else { return nil }
        if preAVX2Cores.contains(current) {
            switch vectorLevel {
            case 2...: return ("SkylakeX", true)
            case 1: return ("Haswell", true)
            default: return nil
            }
        }
        if amdFamily == 25 && avx512Cores.contains(current) { return ("Haswell", false) }
        return nil
    }

    /// `coreTypeOverride` for this process: OpenBLAS's choice, this CPU, this environment.
    public static var coreTypeOverride: (core: String, fallback: Bool)? {
        coreTypeOverride(current: coreName, vectorLevel: Int(swrt_x86_vector_level()), amdFamily: Int(swrt_x86_amd_family()),
                         userSetting: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"])
    }

    public static var config: String {
        guard let p = openblas_get_config() else { return "unknown" }
        return String(cString: p)
    }
}

/// Time and FLOPs of sgemm calls grouped by (transposes, m, n, k).
public final class GemmProfile: @unchecked Sendable {
    public struct Entry { public var calls = 0; public var seconds = 0.0; public var flops = 0.0 }
    public private(set) var entries: [String: Entry] = [:]

    public init() {}

    private let lock = NSLock()

    func add(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, seconds: Double) {
        lock.lock()
        defer { lock.unlock() }
        let key = "\(transA ? "T" : "N")\(transB ? "T" : "N") \(m)x\(n)x\(k)"
        var e = entries[key] ?? Entry()
        e.calls += 1
        e.seconds += seconds
        e.flops += 2 * Double(m) * Double(n) * Double(k)
        entries[key] = e
    }

    /// Lines "shape calls seconds GFLOP/s", most time first.
    public func report(top: Int = 25) -> [String] {
        entries.sorted { $0.value.seconds > $1.value.seconds }.prefix(top).map { key, e in
            "\(key.padding(toLength: 24, withPad: " ", startingAt: 0)) \(String(format: "%6d calls %8.3f s %7.1f GFLOP/s", e.calls, e.seconds, e.flops / e.seconds / 1e9))"
        }
    }
}
