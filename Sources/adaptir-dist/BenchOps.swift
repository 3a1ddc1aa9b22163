import AdaptIRCore
import ArgumentParser
import Foundation

/// `adaptir-dist bench ops`: achieved GFLOP/s of the operators at IPT's shapes, each beside the raw sgemm rate.
struct BenchOps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "GFLOP/s of sgemm, linear, conv2d, attention and rfft2/irfft2 at IPT's shapes (forward and backward).")

    @Option(help: "Threads of the intra-op pool (0: no pool; OpenBLAS threads itself as OPENBLAS_NUM_THREADS says).")
    var threads: Int = 1

    @Option(help: "Minimum seconds spent timing each row (best run is reported).")
    var seconds: Double = 0.5

    func validate() throws {
        guard threads >= 0 else { throw ValidationError("--threads must be >= 0, got \(threads)") }
        guard seconds > 0 else { throw ValidationError("--seconds must be > 0, got \(seconds)") }
    }

    func run() throws {
        if threads > 0 { Parallel.configure(threads: threads) }
        print("OpenBLAS core: \(BLAS.coreName), threads: \(Parallel.threads) (OpenBLAS \(BLAS.threads))  (\(BLAS.config))")
        var table = BenchTable()
        var rng = SplitMix(seed: 1)
        let seconds = self.seconds

        // Raw sgemm in the layout linear uses: Y[M, N] = X[M, K] * W[N, K]^T.
        var sgemmRate: [String: Double] = [:]
        for (m, n, k) in [(2048, 576, 576), (2048, 2304, 576), (2048, 576, 2304)] {
            let x = rng.tensor([m, k]), w = rng.tensor([n, k]), y = Tensor(zeros: [m, n])
            let t = bestTime(minSeconds: seconds) {
                BLAS.gemm(transA: false, transB: true, m: m, n: n, k: k, a: x.data, lda: k, b: w.data, ldb: k, c: y.data, ldc: n)
            }
            let rate = 2.0 * Double(m * n * k) / t / 1e9
            sgemmRate["\(m)x\(n)x\(k)"] = rate
            table.add("sgemm X*W^T", "\(m)x\(n)x\(k)", seconds: t, flops: 2.0 * Double(m * n * k), reference: rate)
        }

        // Linear through the tape: forward records the graph; backward computes dX and dW (frozen bias skipped).
        for (m, n, k) in [(2048, 576, 576), (2048, 2304, 576), (2048, 576, 2304)] {
            let key = "\(m)x\(n)x\(k)"
            let x = rng.tensor([m, k], requiresGrad: true), w = rng.tensor([n, k], requiresGrad: true)
            let b = rng.tensor([n])
            let flops = 2.0 * Double(m * n * k)
            let tf = bestTime(minSeconds: seconds) { _ = linear(x, w, b) }
            table.add("linear forward", key, seconds: tf, flops: flops, reference: sgemmRate[key]!)
            let seed = rng.tensor([m, n])
            let tb = timeBackward(seconds: seconds, [x, w]) { linear(x, w, b) } seed: { seed }
            table.add("linear backward (dX, dW)", key, seconds: tb, flops: 2 * flops, reference: sgemmRate[key]!)
        }
        let ref = sgemmRate["2048x576x576"]!

        // conv2d 64->64 on 48x48, batch 16.
        for k in [3, 5] {
            let x = rng.tensor([16, 64, 48, 48], requiresGrad: true), w = rng.tensor([64, 64, k, k], scale: 0.05, requiresGrad: true)
            let b = rng.tensor([64], requiresGrad: true)
            let flops = 2.0 * Double(16 * 64 * 48 * 48 * 64 * k * k)
            let tf = bestTime(minSeconds: seconds) { _ = conv2d(x, w, b) }
            table.add("conv2d \(k)x\(k) forward", "16x64x48x48", seconds: tf, flops: flops, reference: ref)
            let seed = rng.tensor([16, 64, 48, 48])
            let tb = timeBackward(seconds: seconds, [x, w, b]) { conv2d(x, w, b) } seed: { seed }
            table.add("conv2d \(k)x\(k) backward", "16x64x48x48", seconds: tb, flops: 2 * flops, reference: ref)
        }

        // Scaled dot-product attention, 12 heads x 256 tokens x 48, batch 16 (QK^T and PV; projections are linears).
        do {
            let (n, l, d) = (16, 256, 576)
            let q = rng.tensor([n, l, d], requiresGrad: true), kk = rng.tensor([n, l, d], requiresGrad: true)
            let v = rng.tensor([n, l, d], requiresGrad: true)
            let flops = 2.0 * 2.0 * Double(n * l * l * d)
            let tf = bestTime(minSeconds: seconds) { _ = scaledDotProductAttention(q: q, k: kk, v: v, heads: 12) }
            table.add("attention forward", "16x12x256x48", seconds: tf, flops: flops, reference: ref)
            let ti = bestTime(minSeconds: seconds) { Autograd.withoutGrad { _ = scaledDotProductAttention(q: q, k: kk, v: v, heads: 12) } }
            table.add("attention forward, no grad", "16x12x256x48", seconds: ti, flops: flops, reference: ref)
            // Its parts for one (sample, head), repeated over the batch: S = Q K^T (strided heads), softmax, O = P V.
            let p = Tensor(zeros: [l * l]), o = Tensor(zeros: [n, l, d])
            let pairFlops = 2.0 * Double(l * l * 48)
            let tqk = bestTime(minSeconds: seconds) {
                for s in 0..<n * 12 {
                    BLAS.gemm(transA: false, transB: true, m: l, n: l, k: 48, a: q.data + (s / 12) * l * d + (s % 12) * 48, lda: d,
                              b: kk.data + (s / 12) * l * d + (s % 12) * 48, ldb: d, c: p.data, ldc: l)
                }
            }
            table.add("  QK^T sgemm per head", "192x256x256x48", seconds: tqk, flops: pairFlops * Double(n * 12), reference: ref)
            let tsm = bestTime(minSeconds: seconds) { for _ in 0..<n * 12 { softmaxRows(p.data, p.data, rows: l, cols: l) } }
            table.add(String(format: "  softmax rows (%.2f ns/elem)", tsm * 1e9 / Double(n * 12 * l * l)), "192x256x256",
                      seconds: tsm, flops: 0, reference: ref)
            let tpv = bestTime(minSeconds: seconds) {
                for s in 0..<n * 12 {
                    BLAS.gemm(transA: false, transB: false, m: l, n: 48, k: l, a: p.data, lda: l,
                              b: v.data + (s / 12) * l * d + (s % 12) * 48, ldb: d, c: o.data + (s / 12) * l * d + (s % 12) * 48, ldc: d)
                }
            }
            table.add("  PV sgemm per head", "192x256x48x256", seconds: tpv, flops: pairFlops * Double(n * 12), reference: ref)
            let seed = rng.tensor([n, l, d])
            let tb = timeBackward(seconds: seconds, [q, kk, v]) { scaledDotProductAttention(q: q, k: kk, v: v, heads: 12) } seed: { seed }
            table.add("attention backward", "16x12x256x48", seconds: tb, flops: 2 * flops, reference: ref)
        }

        // rfft2 + irfft2 on the AdaptIR map: batch 16 x 24 channels x 16x16. FLOPs by the usual 2.5 N log2 N
        // convention for a real transform of N points.
        do {
            let x = rng.tensor([16, 24, 16, 16], requiresGrad: true)
            let flops = 2 * 2.5 * 256 * 8 * Double(16 * 24)
            let tf = bestTime(minSeconds: seconds) { _ = irfft2(rfft2(x), height: 16, width: 16) }
            table.add("rfft2+irfft2 forward", "16x24x16x16", seconds: tf, flops: flops, reference: ref)
            let seed = rng.tensor([16, 24, 16, 16])
            let tb = timeBackward(seconds: seconds, [x]) { irfft2(rfft2(x), height: 16, width: 16) } seed: { seed }
            table.add("rfft2+irfft2 backward", "16x24x16x16", seconds: tb, flops: flops, reference: ref)
        }
        table.print()
    }

    /// Best time of the backward pass alone: the forward is rebuilt (untimed) before each timed backward.
    private func timeBackward(seconds: Double, _ inputs: [Tensor], _ forward: () -> Tensor, seed: () -> Tensor) -> Double {
        var best = Double.infinity
        var runs = 0
        let start = monotonicSeconds()
        while runs < 4 || (monotonicSeconds() - start < seconds && runs < 1000) {
            let out = forward()
            for t in inputs { t.grad = nil }
            let s = seed()
            let t0 = monotonicSeconds()
            out.backward(seed: s)
            if runs > 0 { best = min(best, monotonicSeconds() - t0) }  // first run allocates gradients
            runs += 1
        }
        return best
    }
}

/// Rows of the benchmark table.
struct BenchTable {
    private var rows: [(String, String, Double, Double, Double)] = []

    mutating func add(_ op: String, _ shape: String, seconds: Double, flops: Double, reference: Double) {
        rows.append((op, shape, seconds, flops / seconds / 1e9, reference))
    }

    func print() {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        Swift.print(pad("op", 32) + pad("shape", 18) + lpad("ms", 10) + lpad("GFLOP/s", 10) + lpad("sgemm", 10) + lpad("% sgemm", 9))
        for (op, shape, t, rate, ref) in rows {
            let ms = String(format: "%.3f", t * 1e3)
            let r = String(format: "%.1f", rate)
            let rr = String(format: "%.1f", ref)
            let pct = String(format: "%.0f%%", 100 * rate / ref)
            Swift.print(pad(op, 32) + pad(shape, 18) + lpad(ms, 10) + lpad(r, 10) + lpad(rr, 10) + lpad(pct, 9))
        }
    }
}

/// Benchmark data: SplitMix64 uniform values (the values do not matter, only that they are finite and varied).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func tensor(_ shape: [Int], scale: Float = 1, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape)
        let p = t.data
        for i in 0..<t.count { p[i] = scale * (Float(next() >> 40) / Float(1 << 24) * 2 - 1) }
        t.setRequiresGrad(requiresGrad)
        return t
    }
}
