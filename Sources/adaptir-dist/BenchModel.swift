import AdaptIRCore
import ArgumentParser
import Foundation

/// `adaptir-dist bench model`: forward and adapter-only backward of the whole model on a batch of 48x48 patches.
struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Seconds per patch, GFLOP/s and peak memory of the model's forward and adapter-only backward.")

    @Option(help: "Model preset: \(Preset.all.map(\.name).joined(separator: ", ")).")
    var preset: String = "ipt"

    @Option(help: "Patches per batch.")
    var batch: Int = 8

    @Option(help: "Task index (0 SR x2, 1 SR x3, 2 SR x4 and the hybrid tasks, 3 derain, 4 denoise 30, 5 denoise 50).")
    var task: Int = 2

    @Option(help: "Threads of the intra-op pool (0: no pool; OpenBLAS threads itself as OPENBLAS_NUM_THREADS says).")
    var threads: Int = 1

    @Option(help: "Timed repetitions (the best is reported, after warm-up: one inference forward, two training steps).")
    var repeats: Int = 2

    @Option(help: "Adaptation method (any trainable one: \(MethodRegistry.names.filter { $0 != MethodChoice.frozen.name }.joined(separator: ", "))).")
    var method: String = "adaptir"

    @Option(name: .customLong("method-option"), help: "A hyper-parameter of the method, NAME=VALUE (repeatable).")
    var methodOption: [String] = []

    @Flag(help: "Also time every sgemm call by shape and print the slowest shapes.")
    var profile = false

    func validate() throws {
        guard Preset.named(preset) != nil else {
            throw ValidationError("--preset: unknown preset '\(preset)' (known: \(Preset.all.map(\.name).joined(separator: ", ")))")
        }
        guard batch >= 2 else { throw ValidationError("--batch must be >= 2 (batch norm needs a batch), got \(batch)") }
        guard (0..<6).contains(task) else { throw ValidationError("--task must be in 0...5, got \(task)") }
        guard threads >= 0 else { throw ValidationError("--threads must be >= 0, got \(threads)") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be >= 1, got \(repeats)") }
    }

    func run() throws {
        if threads > 0 { Parallel.configure(threads: threads) }
        let p = Preset.named(preset)!
        let t0 = monotonicSeconds()
        var choice = MethodChoice(method)
        for text in methodOption { let (k, v) = try MethodChoice.parseOption(text); choice.options[k] = v }
        let model: AdaptedIPT
        do { model = try AdaptedIPT(preset: p, choice: choice, seed: 1) } catch { throw ValidationError("--method: \(error)") }
        // Autograd.backward traps on a loss that needs no gradient: a method that trains nothing has no step to time.
        guard model.store.trainableCount > 0 else {
            throw ValidationError("--method: method '\(choice.name)' has no trainable parameters, so there is no training step to time")
        }
        let buildSeconds = monotonicSeconds() - t0
        print("preset \(p), method \(MethodChoice(choice.name, options: model.method.values)), task \(task) (x\(p.scales[task])), batch \(batch) patches of 48x48")
        print("OpenBLAS core: \(BLAS.coreName), threads: \(Parallel.threads) (OpenBLAS \(BLAS.threads)); model built in \(String(format: "%.1f", buildSeconds)) s")
        // The adapter's up-projection starts at 0, which would leave every adapter gradient but its own at 0:
        // perturb the trainable weights so the backward does its full work.
        var rng = SplitMix64(seed: 7)
        let w = model.store.trainable.base
        for i in 0..<model.store.trainableCount { w[i] += 0.01 * rng.uniform(1) }

        var sr = SplitMix(seed: 3)
        let x = sr.tensor([batch, 3, 48, 48])
        let s = p.scales[task]
        let target = sr.tensor([batch, 3, 48 * s, 48 * s])
        let cost = ModelCost(preset: p, task: task, method: model.method)
        let trainsBackbone = model.trainsBackbone
        let backwardFLOPs = cost.backward(trainsBackbone: trainsBackbone)

        // Raw sgemm at the body's main shape, measured in this process beside the model: best of a run before
        // and a run after the model (a shared host's noise lowers single runs).
        let (gm, gn, gk) = (2048, 576, 576)
        let a = sr.tensor([gm, gk]), b = sr.tensor([gn, gk]), c = Tensor(zeros: [gm, gn])
        func sgemmRateNow() -> Double {
            let tg = bestTime(minSeconds: 1) {
                BLAS.gemm(transA: false, transB: true, m: gm, n: gn, k: gk, a: a.data, lda: gk, b: b.data, ldb: gk, c: c.data, ldc: gn)
            }
            return 2.0 * Double(gm * gn * gk) / tg / 1e9
        }
        let sgemmBefore = sgemmRateNow()

        // With --profile, sgemm calls are timed in the timed runs only: a warm-up run first-touches every
        // activation (page faults) and would halve the rates of the shapes whose outputs are fresh memory.
        model.training = false
        let tInfer = bestOf(repeats, afterWarmUp: { if profile { BLAS.profile = GemmProfile() } }) {
            _ = Autograd.withoutGrad { model(x, task: task) }
        }
        let inferenceProfile = BLAS.profile
        BLAS.profile = nil
        model.training = true
        var tFwd = Double.infinity, tBwd = Double.infinity
        // Two warm-up steps: the first training step first-touches the kept graph's activations, and the second
        // still page-faults (measured: 2x slower forward) until the allocator's free lists settle; a training run
        // reaches that steady state after its second step.
        let warmUp = 2
        for run in 0..<(warmUp + repeats) {
            if run == warmUp && profile { BLAS.profile = GemmProfile() }
            model.store.zeroGrad()
            let f0 = monotonicSeconds()
            let loss = l1Loss(model(x, task: task), target)
            let f1 = monotonicSeconds()
            loss.backward()
            let f2 = monotonicSeconds()
            if run >= warmUp { tFwd = min(tFwd, f1 - f0); tBwd = min(tBwd, f2 - f1) }
        }
        let sgemmAfter = sgemmRateNow()
        let sgemmRate = max(sgemmBefore, sgemmAfter)
        let n = Double(batch)
        func row(_ name: String, _ seconds: Double, _ flops: Double) {
            let rate = flops * n / seconds / 1e9
            print(name.padding(toLength: 34, withPad: " ", startingAt: 0)
                  + String(format: "%9.3f s/patch %9.1f GFLOP/s %6.0f%% of sgemm", seconds / n, rate, 100 * rate / sgemmRate))
        }
        print(String(format: "FLOPs per patch (analytic): forward %.2f G, %@ backward %.2f G", cost.forward / 1e9,
                     trainsBackbone ? "whole-model (2x forward)" : "adapter-only", backwardFLOPs / 1e9))
        print(String(format: "sgemm 2048x576x576 beside it: %.1f GFLOP/s (best of %.1f before and %.1f after the model)", sgemmRate, sgemmBefore, sgemmAfter))
        row("forward (inference, eval mode)", tInfer, cost.forward)
        row("forward (training, graph kept)", tFwd, cost.forward)
        row(trainsBackbone ? "backward (whole model)" : "backward (adapter only)", tBwd, backwardFLOPs)
        row("training step (forward+backward)", tFwd + tBwd, cost.forward + backwardFLOPs)
        if let prof = inferenceProfile {
            print("sgemm by shape, inference forward (\(repeats) timed runs):")
            for line in prof.report(top: 12) { print("  " + line) }
        }
        if let prof = BLAS.profile {
            print("sgemm by shape, training forward + backward (\(repeats) timed runs):")
            for line in prof.report() { print("  " + line) }
            BLAS.profile = nil
        }
        print(String(format: "peak resident memory: %.2f GiB", Double(peakResidentBytes()) / 1073741824))
    }

    private func bestOf(_ k: Int, afterWarmUp: () -> Void = {}, _ body: () -> Void) -> Double {
        body()
        afterWarmUp()
        var best = Double.infinity
        for _ in 0..<k {
            let t = monotonicSeconds()
            body()
            best = min(best, monotonicSeconds() - t)
        }
        return best
    }
}
