import XCTest
import AdaptIRCore

/// The intra-op pool (`Parallel`, `--threads`): operators that distribute independent work items (attention's
/// sample x head pairs) must give the single-threaded bits; a GEMM split into blocks of C may differ in the last
/// bits (OpenBLAS's kernels are not bit-stable under a change of m or n), so GEMMs and a whole training step are
/// held to a few float ulps relative to each tensor's own scale.
final class ParallelTests: XCTestCase {
    override func tearDown() {
        Parallel.configure(threads: 1)
        super.tearDown()
    }

    /// `body` run with 1 thread and with `threads`, each on a fresh copy of its inputs.
    private func onOneAndMany<T>(_ threads: Int = 2, _ body: () -> T) -> (T, T) {
        Parallel.configure(threads: 1)
        let one = body()
        Parallel.configure(threads: threads)
        defer { Parallel.configure(threads: 1) }
        return (one, body())
    }

    private func assertBitIdentical(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let first = a.indices.first { $0 < b.count && a[$0].bitPattern != b[$0].bitPattern }
        XCTAssertNil(first, "\(what): element \(first ?? -1) differs (\(first.map { "\(a[$0]) vs \(b[$0])" } ?? ""))",
                     file: file, line: line)
    }

    /// max |a - b| / max |a|: differences relative to the tensor's own scale.
    private func assertClose(_ a: [Float], _ b: [Float], _ tolerance: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = a.map(abs).max() ?? 0
        let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertTrue(a.allSatisfy(\.isFinite) && b.allSatisfy(\.isFinite), "\(what): non-finite", file: file, line: line)
        XCTAssertLessThanOrEqual(diff, tolerance * max(scale, .leastNormalMagnitude),
                                 "\(what): max difference \(diff) at scale \(scale)", file: file, line: line)
    }

    func testRangesCoverEveryItemExactlyOnce() {
        Parallel.configure(threads: 3)
        for (count, grain, align) in [(0, 1, 1), (1, 1, 1), (7, 1, 1), (100, 16, 16), (33, 16, 16), (1000, 1, 16), (50, 100, 1)] {
            var seen = [Int](repeating: 0, count: count)
            seen.withUnsafeMutableBufferPointer { s in
                let p = UncheckedPointer(s.baseAddress)
                Parallel.forRanges(count, grain: grain, align: align) { r in
                    for i in r { p.value![i] += 1 }
                }
            }
            XCTAssertEqual(seen, [Int](repeating: 1, count: count), "count \(count) grain \(grain) align \(align)")
        }
    }

    func testSplitGemmMatchesTheWholeCallForEveryTransposeAndShape() {
        let saved = BLAS.splitMNK
        defer { BLAS.splitMNK = saved }
        BLAS.splitMNK = 0
        var rng = TestRNG(seed: 61)
        // Tall C (split by rows) and wide C (split by columns), sizes that do not divide evenly, k above OpenBLAS's
        // blocking depth so partial sums are added into C in several passes.
        for (m, n, k) in [(203, 37, 300), (37, 211, 300), (64, 64, 9)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 1, ldc = n + 2
                    let a = rng.tensor([(transA ? k : m) * lda]), b = rng.tensor([(transB ? n : k) * ldb])
                    let c0 = rng.tensor([m * ldc])
                    let (one, many) = onOneAndMany(3) { () -> [Float] in
                        let c = c0.copy()
                        BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.7, a: a.data, lda: lda,
                                  b: b.data, ldb: ldb, beta: 0.5, c: c.data, ldc: ldc)
                        return c.toArray()
                    }
                    assertClose(one, many, 1e-6, "gemm \(m)x\(n)x\(k) transA \(transA) transB \(transB)")
                    XCTAssertNotEqual(many, c0.toArray(), "the split GEMM wrote nothing")
                }
            }
        }
    }

    func testAttentionIsBitIdenticalWithStoredAndRecomputedProbabilities() {
        var rng = TestRNG(seed: 62)
        let q0 = rng.tensor([3, 20, 12]), k0 = rng.tensor([3, 24, 12]), v0 = rng.tensor([3, 24, 12]), seed = rng.tensor([3, 20, 12])
        let budget = AttentionMemory.storeProbabilitiesUpToBytes
        defer { AttentionMemory.storeProbabilitiesUpToBytes = budget }
        for store in [true, false] {
            AttentionMemory.storeProbabilitiesUpToBytes = store ? budget : 0
            let (one, many) = onOneAndMany { () -> [[Float]] in
                let q = q0.detached(), k = k0.detached(), v = v0.detached()
                for t in [q, k, v] { t.setRequiresGrad(true) }
                let y = scaledDotProductAttention(q: q, k: k, v: v, heads: 4)
                y.backward(seed: seed)
                return [y.toArray()] + [q, k, v].map { $0.grad!.toArray() }
            }
            for (i, what) in ["output", "dQ", "dK", "dV"].enumerated() {
                assertBitIdentical(one[i], many[i], "attention \(what), stored probabilities \(store)")
            }
        }
    }

    /// Output and input gradients of `op` on copies of `inputs` (all requiring gradients), with `seed` as dL/dy.
    private func run(_ inputs: [Tensor], requiresGrad: [Bool]? = nil, _ op: ([Tensor]) -> Tensor) -> [[Float]] {
        let xs = inputs.map { $0.copy() }
        for (i, x) in xs.enumerated() { x.setRequiresGrad(requiresGrad?[i] ?? true) }
        let y = op(xs)
        var rng = TestRNG(seed: 99)
        y.backward(seed: rng.tensor(y.shape))
        return [y.toArray()] + xs.compactMap { $0.grad?.toArray() }
    }

    /// Every pointwise, row and per-image operator split by the pool gives the single-threaded bits, forward and
    /// backward (sizes above `Parallel.elementGrain`, so the splits happen; broadcasts in every direction).
    func testPointwiseRowAndImageOperatorsAreBitIdentical() {
        var rng = TestRNG(seed: 64)
        let big = rng.tensor([4, 8, 48, 48], -2, 2), other = rng.tensor([4, 8, 48, 48])
        let perChannel = rng.tensor([4, 8, 1, 1]), perPlane = rng.tensor([1, 8, 1, 1]), perPixel = rng.tensor([4, 1, 48, 48])
        let rows = rng.tensor([600, 144]), lnW = rng.tensor([144]), lnB = rng.tensor([144])
        let w3 = rng.tensor([8, 8, 3, 3], -0.3, 0.3), w1 = rng.tensor([8, 8, 1, 1]), cb = rng.tensor([8])
        let toRGB = rng.tensor([3, 8, 3, 3], -0.3, 0.3), rgbB = rng.tensor([3])
        let dw = rng.tensor([8, 1, 3, 3], -0.3, 0.3), fcW = rng.tensor([192, 144], -0.1, 0.1), fcB = rng.tensor([192])
        let complex = rng.tensor([4, 8, 48, 48, 2], -2, 2), phase = rng.tensor([4, 8, 48, 48], -3, 3)
        let tokens = rng.tensor([4, 256, 72])
        let cases: [(String, [Tensor], [Bool]?, ([Tensor]) -> Tensor)] = [
            ("relu", [big], nil, { relu($0[0]) }),
            ("gelu", [big], nil, { gelu($0[0]) }),
            ("sigmoid", [big], nil, { sigmoid($0[0]) }),
            ("abs", [big], nil, { absolute($0[0]) }),
            ("scale", [big], nil, { scale($0[0], 0.3) }),
            ("addScalar", [big], nil, { addScalar($0[0], 0.3) }),
            ("add same shape", [big, other], nil, { $0[0] + $0[1] }),
            ("mul same shape", [big, other], nil, { $0[0] * $0[1] }),
            ("mul per channel", [big, perChannel], nil, { $0[0] * $0[1] }),
            ("sub per plane", [big, perPlane], nil, { $0[0] - $0[1] }),
            ("mul per pixel", [perPixel, big], nil, { $0[0] * $0[1] }),
            ("mean over H, W", [big], nil, { mean($0[0], axes: [2, 3], keepDims: true) }),
            ("layerNorm", [rows, lnW, lnB], nil, { layerNorm($0[0], weight: $0[1], bias: $0[2]) }),
            ("layerNorm, frozen affine", [rows, lnW, lnB], [true, false, false], { layerNorm($0[0], weight: $0[1], bias: $0[2]) }),
            ("softmax last axis", [rows], nil, { softmax($0[0], axis: -1) }),
            ("softmax channels", [big], nil, { softmax($0[0], axis: 1) }),
            ("pixelShuffle", [big], nil, { pixelShuffle($0[0], 2) }),
            ("conv3x3, frozen weight", [big, w3, cb], [true, false, false], { conv2d($0[0], $0[1], $0[2]) }),
            ("conv3x3, trained weight", [big, w3, cb], nil, { conv2d($0[0], $0[1], $0[2]) }),
            ("conv1x1, frozen weight", [big, w1], [true, false], { conv2d($0[0], $0[1]) }),
            ("l1Loss", [big, other], nil, { l1Loss($0[0], $0[1]) }),
            ("conv3x3 to 3 channels, frozen weight", [big, toRGB, rgbB], [true, false, false], { conv2d($0[0], $0[1], $0[2]) }),
            ("conv3x3 to 3 channels, trained weight", [big, toRGB, rgbB], nil, { conv2d($0[0], $0[1], $0[2]) }),
            ("depthwise conv", [big, dw, cb], nil, { depthwiseConv2d($0[0], $0[1], $0[2]) }),
            ("linearReLU, frozen weight", [rows, fcW, fcB], [true, false, false], { linearReLU($0[0], $0[1], $0[2]) }),
            ("complexAbs", [complex], nil, { complexAbs($0[0]) }),
            ("complexAngle", [complex], nil, { complexAngle($0[0]) }),
            ("polar", [big, phase], nil, { polar(magnitude: $0[0], phase: $0[1]) }),
            ("permute, tiled transpose", [big], nil, { permute($0[0], [0, 2, 3, 1]) }),
            ("permute, row copies", [big], nil, { permute($0[0], [0, 2, 1, 3]) }),
            ("unfold", [big], nil, { unfold($0[0], patch: 3) }),
            ("fold", [tokens], nil, { fold($0[0], channels: 8, height: 48, width: 48, patch: 3) }),
        ]
        let saved = BLAS.splitMNK
        defer { BLAS.splitMNK = saved }
        BLAS.splitMNK = .max   // GEMMs whole: only the operators' own splits are compared
        for (name, inputs, needs, op) in cases {
            let (one, many) = onOneAndMany { run(inputs, requiresGrad: needs, op) }
            XCTAssertEqual(one.count, many.count, name)
            for (i, (a, b)) in zip(one, many).enumerated() {
                assertBitIdentical(a, b, "\(name): \(i == 0 ? "output" : "gradient \(i)")")
            }
        }
    }

    /// A training step of preset small (AdaptIR and full fine-tuning): the loss and every trainable gradient with
    /// 2 threads agree with 1 thread to float rounding (split GEMMs; relative to each gradient's own scale).
    func testTrainingStepMatchesOneThread() {
        var rng = TestRNG(seed: 63)
        let x = rng.tensor([2, 3, 48, 48], 0, 1), gt = rng.tensor([2, 3, 96, 96], 0, 1)
        for method in [MethodChoice.adaptir, .full] {
            let (one, many) = onOneAndMany { () -> [Float] in
                let model = AdaptedIPT(preset: .small, method: method, seed: 9)
                model.training = true
                model.store.zeroGrad()
                let y = model(x, task: 0)
                let loss = l1Loss(y, gt)
                loss.backward()
                let s = model.store
                return [loss.item] + Array(UnsafeBufferPointer(start: s.trainableGrad.base, count: s.trainableCount))
            }
            assertClose([one[0]], [many[0]], 1e-6, "\(method.name): loss")
            assertClose(Array(one.dropFirst()), Array(many.dropFirst()), 1e-4, "\(method.name): trainable gradients")
            XCTAssertGreaterThan(one.dropFirst().map(abs).max() ?? 0, 0, "\(method.name): no gradient at all")
        }
    }
}

/// A pointer the test's parallel bodies write through (each to its own elements).
private struct UncheckedPointer<T>: @unchecked Sendable {
    let value: UnsafeMutablePointer<T>?
    init(_ value: UnsafeMutablePointer<T>?) { self.value = value }
}
