import CFFTW
import Foundation

/// One dimension of an FFTW guru layout: length `n`, input stride `inStride` and output stride `outStride`, in
/// elements of the respective array (Float for a real array, (re, im) pairs for a complex one).
public struct FFTDim: Hashable, Sendable {
    public var n: Int
    public var inStride: Int
    public var outStride: Int
    public init(_ n: Int, inStride: Int, outStride: Int) {
        self.n = n
        self.inStride = inStride
        self.outStride = outStride
    }
}

/// What an FFTW plan computes, with its full memory layout: the plan cache key.
///
/// `dims` are the transform dimensions (outermost first, FFTW guru convention: for r2c/c2r the last one is the
/// halved dimension, its `n` is the real length), `batch` the "howmany" loops (one execute call runs them all).
/// `inPlace` plans must be executed with input == output, the others with distinct arrays.
public struct FFTPlanKey: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// Real to half-spectrum complex, FFTW_FORWARD (e^{-i...}).
        case r2c
        /// Half-spectrum complex to real, FFTW_BACKWARD (e^{+i...}); destroys its input.
        case c2r
        /// Complex to complex, FFTW_FORWARD.
        case c2cForward
        /// Complex to complex, FFTW_BACKWARD (unnormalised inverse).
        case c2cBackward
    }

    public var kind: Kind
    public var dims: [FFTDim]
    public var batch: [FFTDim]
    public var inPlace: Bool

    public init(kind: Kind, dims: [FFTDim], batch: [FFTDim], inPlace: Bool = false) {
        precondition(!dims.isEmpty && dims.allSatisfy { $0.n >= 1 }, "FFTPlanKey: bad transform dims \(dims)")
        precondition(batch.allSatisfy { $0.n >= 1 }, "FFTPlanKey: bad batch dims \(batch)")
        precondition(!inPlace || kind == .c2cForward || kind == .c2cBackward, "FFTPlanKey: in-place only for c2c")
        self.kind = kind
        self.dims = dims
        self.batch = batch
        self.inPlace = inPlace
    }

    /// Unnormalised 2-D r2c of `count` contiguous real H x W maps into contiguous H x (W/2+1) half spectra.
    public static func rfft2(count: Int, height h: Int, width w: Int) -> FFTPlanKey {
        let wh = w / 2 + 1
        return FFTPlanKey(kind: .r2c,
                          dims: [FFTDim(h, inStride: w, outStride: wh), FFTDim(w, inStride: 1, outStride: 1)],
                          batch: [FFTDim(count, inStride: h * w, outStride: h * wh)])
    }

    /// In-place unnormalised 1-D complex inverse FFT along H of every column of `count` contiguous
    /// H x `columns` complex arrays.
    public static func ifftColumns(count: Int, height h: Int, columns c: Int) -> FFTPlanKey {
        FFTPlanKey(kind: .c2cBackward,
                   dims: [FFTDim(h, inStride: c, outStride: c)],
                   batch: [FFTDim(count, inStride: h * c, outStride: h * c), FFTDim(c, inStride: 1, outStride: 1)],
                   inPlace: true)
    }

    /// Unnormalised 1-D c2r of `rows` contiguous half spectra of length W/2+1 into rows of W reals.
    public static func irfftRows(rows: Int, width w: Int) -> FFTPlanKey {
        FFTPlanKey(kind: .c2r,
                   dims: [FFTDim(w, inStride: 1, outStride: 1)],
                   batch: [FFTDim(rows, inStride: w / 2 + 1, outStride: w)])
    }

    /// Floats the input (`forInput`) or output array must hold: 1 + sum (n-1)*stride over all dims, times 2 for a
    /// complex array. For the halved dimension of r2c/c2r the complex side has n/2+1 elements.
    func floatsNeeded(forInput: Bool) -> Int {
        let complex: Bool
        switch kind {
        case .r2c: complex = !forInput
        case .c2r: complex = forInput
        case .c2cForward, .c2cBackward: complex = true
        }
        var extent = 1
        for (i, d) in (dims + batch).enumerated() {
            var n = d.n
            if complex && (kind == .r2c || kind == .c2r) && i == dims.count - 1 { n = d.n / 2 + 1 }
            extent += (n - 1) * (forInput ? d.inStride : d.outStride)
        }
        return complex ? 2 * extent : extent
    }
}

/// An FFTW single-precision plan. Immutable once made, so one plan may be executed concurrently on different
/// buffers from any thread (the new-array execute functions are thread-safe). Plans live for the whole process.
public final class FFTPlan: @unchecked Sendable {
    public let key: FFTPlanKey
    let raw: OpaquePointer

    init(key: FFTPlanKey, raw: OpaquePointer) {
        self.key = key
        self.raw = raw
    }

    /// Runs the plan on `input` -> `output` (Float pointers; complex arrays are interleaved (re, im) pairs, which is
    /// the layout of `fftwf_complex`). For an in-place plan pass the same pointer twice. c2r destroys `input`.
    public func execute(_ input: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
        precondition(key.inPlace == (input == output), "FFTPlan: in-place plan needs input == output and vice versa")
        switch key.kind {
        case .r2c:
            fftwf_execute_dft_r2c(raw, input, FFTPlans.complexPointer(output))
        case .c2r:
            fftwf_execute_dft_c2r(raw, FFTPlans.complexPointer(input), output)
        case .c2cForward, .c2cBackward:
            fftwf_execute_dft(raw, FFTPlans.complexPointer(input), FFTPlans.complexPointer(output))
        }
    }
}

/// Process-wide cache of FFTW single-precision plans, keyed by `FFTPlanKey` (kind, sizes, batch and strides).
///
/// Planning is serialised behind a lock (the FFTW planner is not thread-safe) and uses
/// `FFTW_ESTIMATE | FFTW_UNALIGNED`: ESTIMATE picks the same algorithm on every rank (bitwise-reproducible
/// results, no timing runs), UNALIGNED lets the plan run on any pointer. Plans are made on scratch arrays, never on
/// the caller's data.
public enum FFTPlans {
    private final class Cache: @unchecked Sendable {
        let lock = NSLock()
        var plans: [FFTPlanKey: FFTPlan] = [:]
    }

    private static let cache = Cache()

    /// The plan for `key`, made on first use.
    public static func plan(for key: FFTPlanKey) -> FFTPlan {
        cache.lock.lock()
        defer { cache.lock.unlock() }
        if let p = cache.plans[key] { return p }
        let p = make(key)
        cache.plans[key] = p
        return p
    }

    /// Number of cached plans (tests and diagnostics).
    public static var count: Int {
        cache.lock.lock()
        defer { cache.lock.unlock() }
        return cache.plans.count
    }

    static func complexPointer(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<fftwf_complex> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: fftwf_complex.self)
    }

    /// Called with the cache lock held.
    private static func make(_ key: FFTPlanKey) -> FFTPlan {
        func iodims(_ ds: [FFTDim]) -> [fftwf_iodim] {
            ds.map { d in
                precondition(d.n <= Int(Int32.max) && abs(d.inStride) <= Int(Int32.max) && abs(d.outStride) <= Int(Int32.max),
                             "FFTPlans: dimension \(d) exceeds Int32")
                return fftwf_iodim(n: Int32(d.n), is: Int32(d.inStride), os: Int32(d.outStride))
            }
        }
        let dims = iodims(key.dims), batch = iodims(key.batch)
        let nIn = key.floatsNeeded(forInput: true), nOut = key.floatsNeeded(forInput: false)
        let scratchIn = fftwf_alloc_real(max(key.inPlace ? max(nIn, nOut) : nIn, 2))!
        let scratchOut = key.inPlace ? scratchIn : fftwf_alloc_real(max(nOut, 2))!
        defer {
            fftwf_free(scratchIn)
            if !key.inPlace { fftwf_free(scratchOut) }
        }
        let flags = UInt32(FFTW_ESTIMATE) | UInt32(FFTW_UNALIGNED)
        let rank = Int32(dims.count), hrank = Int32(batch.count)
        let raw: OpaquePointer? = dims.withUnsafeBufferPointer { d in
            batch.withUnsafeBufferPointer { b in
                switch key.kind {
                case .r2c:
                    return fftwf_plan_guru_dft_r2c(rank, d.baseAddress, hrank, b.baseAddress,
                                                   scratchIn, complexPointer(scratchOut), flags)
                case .c2r:
                    return fftwf_plan_guru_dft_c2r(rank, d.baseAddress, hrank, b.baseAddress,
                                                   complexPointer(scratchIn), scratchOut, flags)
                case .c2cForward, .c2cBackward:
                    let sign = key.kind == .c2cForward ? Int32(FFTW_FORWARD) : Int32(FFTW_BACKWARD)
                    return fftwf_plan_guru_dft(rank, d.baseAddress, hrank, b.baseAddress,
                                               complexPointer(scratchIn), complexPointer(scratchOut), sign, flags)
                }
            }
        }
        guard let raw else { fatalError("FFTW could not plan \(key)") }
        return FFTPlan(key: key, raw: raw)
    }
}
