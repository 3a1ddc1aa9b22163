import AdaptIRCore
import ArgumentParser
import Foundation

/// `adaptir-dist bench step`: the trainer's own step (`Trainer.trainStep`: forward, L1 loss, backward, the loss and
/// non-finite check, the gradient allreduce, AdamW) on synthetic patches, under mpirun or alone, after warm-up, with
/// its breakdown. Its figures are the ones the README and docs/performance.md quote.
struct BenchStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Time the real training step (Trainer.trainStep, any method, under mpirun) with its breakdown, GFLOP/s and peak memory.",
        discussion: """
            Every rank trains on its own --batch synthetic 48x48 patches (pre-generated: no data loading is timed; \
            `bench data` measures the reader). After --warmup steps, --steps timed steps; the medians over those \
            steps of rank 0 are printed, with the slowest rank's step, the analytic model FLOPs per second (the \
            adapter-only backward for parameter-efficient methods, about twice the forward for full fine-tuning), \
            their share of sgemm's rate measured in the same process, the peak resident memory of the largest rank, \
            and the floats and bytes reduced per step. --no-allreduce runs each rank alone (no collectives at all: \
            the control for the communication's cost).
            """)

    @Option(help: "Model preset: \(Preset.all.map(\.name).joined(separator: ", ")).") var preset: String = "ipt"
    @Option(help: "Adaptation method (any trainable one).") var method: String = "adaptir"
    @Option(name: .customLong("method-option"), help: "A hyper-parameter of the method, NAME=VALUE (repeatable).") var methodOption: [String] = []
    @Option(help: "Patches per rank per step.") var batch: Int = 16
    @Option(help: "Task index (2: SR x4, the scale of LR4&Noise30).") var task: Int = 2
    @Option(help: "Threads per rank (intra-op pool; OpenBLAS itself runs single-threaded).") var threads: Int = 1
    @Option(help: "Untimed steps first (the first steps page-fault the activations).") var warmup: Int = 2
    @Option(help: "Timed steps.") var steps: Int = 3
    @Option(name: .customLong("grad-dtype"), help: "Gradient allreduce in fp32, fp16 or bf16.") var gradDtype: GradientWireType = .fp32
    @Option(name: .customLong("bucket-mb"), help: "Overlap the gradient allreduce with the backward in buckets of this many MiB (0: one allreduce after the backward).") var bucketMB: Double = 0
    @Option(name: .customLong("attention-memory-mib"), help: "MiB of attention probabilities kept from the forward for the backward (train's attention_memory_mib); past it they are recomputed. 0: recompute all.")
    var attentionMemoryMiB: Int = TrainConfig().attentionMemoryMiB
    @Flag(name: .customLong("memory-by-op"), help: "After the first timed step's forward, print the storage its graph holds by producing op.")
    var memoryByOp = false
    @Flag(name: .customLong("no-allreduce"), help: "Each rank alone: no gradient, loss or batch-norm collectives (the control).") var noAllreduce = false
    @Option(help: "Also append one CSV row (header when the file is new) to this file (rank 0).") var csv: String?

    func validate() throws {
        guard Preset.named(preset) != nil else { throw ValidationError("--preset: unknown preset '\(preset)' (\(Preset.all.map(\.name).joined(separator: ", ")))") }
        guard batch >= 2 else { throw ValidationError("--batch must be >= 2 (batch norm needs a batch), got \(batch)") }
        guard (0..<6).contains(task) else { throw ValidationError("--task must be in 0...5, got \(task)") }
        guard threads >= 1 else { throw ValidationError("--threads must be >= 1, got \(threads)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be >= 0, got \(warmup)") }
        guard steps >= 1 else { throw ValidationError("--steps must be >= 1, got \(steps)") }
        guard bucketMB >= 0, bucketMB.isFinite else { throw ValidationError("--bucket-mb must be >= 0, got \(bucketMB)") }
        let memoryRange = TrainConfig.attentionMemoryMiBRange
        guard memoryRange.contains(attentionMemoryMiB) else {
            throw ValidationError("--attention-memory-mib must be in [\(memoryRange.lowerBound), \(memoryRange.upperBound)], got \(attentionMemoryMiB)")
        }
    }

    func run() throws {
        let world = Communicator.world
        defer { Communicator.finalize() }
        let comm = noAllreduce ? Communicator.solo : world
        Parallel.configure(threads: threads)
        AttentionMemory.storeProbabilitiesUpToBytes = attentionMemoryMiB << 20
        let p = Preset.named(preset)!
        var choice = MethodChoice(method)
        for text in methodOption {
            do { let (k, v) = try MethodChoice.parseOption(text); choice.options[k] = v } catch { throw ValidationError("--method-option: \(error)") }
        }
        let t0 = monotonicSeconds()
        let model: AdaptedIPT
        do { model = try AdaptedIPT(preset: p, choice: choice, seed: 1) } catch { throw ValidationError("--method: \(error)") }
        // Zero-initialised output paths would leave most gradients at 0: perturb the trainable weights so the
        // backward does its full work (as `bench model`).
        var rng = SplitMix64(seed: 7)
        for i in 0..<model.store.trainableCount { model.store.trainable.base[i] += 0.01 * rng.uniform(1) }
        let trainer: Trainer
        do {
            trainer = try Trainer(model: model, comm: comm, task: task, globalBatch: batch * comm.size, totalSteps: warmup + steps, lr: 1e-5)
        } catch { throw ValidationError("\(error)") }
        trainer.gradWire = gradDtype
        trainer.bucketBytes = Int(bucketMB * 1_048_576)
        try trainer.broadcastState()
        let buildSeconds = monotonicSeconds() - t0

        var data = SplitMix(seed: 100 + UInt64(world.rank))
        let s = p.scales[task]
        let lq = data.tensor([batch, 3, 48, 48]), gt = data.tensor([batch, 3, 48 * s, 48 * s])
        let (gm, gn, gk) = (2048, 576, 576)
        let a = data.tensor([gm, gk]), b = data.tensor([gn, gk]), c = Tensor(zeros: [gm, gn])
        func sgemmRate() -> Double {
            2.0 * Double(gm * gn * gk) / bestTime(minSeconds: 0.5) {
                BLAS.gemm(transA: false, transB: true, m: gm, n: gn, k: gk, a: a.data, lda: gk, b: b.data, ldb: gk, c: c.data, ldc: gn)
            } / 1e9
        }
        let sgemmBefore = sgemmRate()
        var timed: [(step: Double, stats: StepStats)] = []
        var graphStorage: (rows: [(op: String, buffers: Int, bytes: Int)], live: Int)?
        for i in 0..<(warmup + steps) {
            if !noAllreduce { try world.barrier() }   // every step starts together, so the slowest rank's time is the step's
            if i == warmup { TensorMemory.resetPeak() }
            trainer.afterForward = memoryByOp && i == warmup && world.isRoot ? { loss in
                graphStorage = (Autograd.storageByOp(loss), TensorMemory.liveBytes)
            } : nil
            let start = monotonicSeconds()
            let st = try trainer.trainStep(lq: lq, gt: gt)
            if i >= warmup { timed.append((monotonicSeconds() - start, st)) }
        }
        let sgemm = max(sgemmBefore, sgemmRate())
        func median(_ f: (StepStats) -> Double) -> Double { AllreduceBenchmark.median(timed.map { f($0.stats) }) }
        let stepMedian = AllreduceBenchmark.median(timed.map(\.step))
        let slowest = try world.allreduceMax(stepMedian)
        let peak = try world.allreduceMax(Int64(peakResidentBytes()))
        let peakLive = try world.allreduceMax(Int64(TensorMemory.peakBytes))
        let afterForward = try world.allreduceMax(Int64(timed.map(\.stats.liveBytesAfterForward).max() ?? 0))
        guard world.isRoot else { return }

        let cost = ModelCost(preset: p, task: task, method: model.method)
        let trainsBackbone = model.trainsBackbone
        let backwardFLOPs = cost.backward(trainsBackbone: trainsBackbone)
        let flops = (cost.forward + backwardFLOPs) * Double(batch)
        let gflops = flops / stepMedian / 1e9
        let fwd = median(\.forwardSeconds), bwd = median(\.backwardSeconds), wait = median(\.waitSeconds)
        let scan = median(\.scanSeconds), ar = median(\.allreduceSeconds), opt = median(\.optimizerSeconds)
        let floats = timed[0].stats.floatsReduced, bytes = noAllreduce || world.size == 1 ? 0 : timed[0].stats.bytesReduced
        func ms(_ x: Double) -> String { String(format: "%.1f", x * 1e3) }
        print("bench step: preset \(p.name), method \(MethodChoice(choice.name, options: model.method.values)), task \(task) (x\(s)), \(batch) patches per rank, "
              + "\(world.size) rank(s)\(noAllreduce ? " each alone (--no-allreduce)" : "") x \(Parallel.threads) thread(s) (OpenBLAS \(BLAS.coreName)), "
              + "grad \(gradDtype.rawValue)\(bucketMB > 0 ? String(format: ", buckets of %g MiB overlapped with the backward", bucketMB) : ""), attention probabilities kept up to \(attentionMemoryMiB) MiB; \(warmup) warm-up + \(steps) timed steps; model built in \(String(format: "%.1f", buildSeconds)) s")
        print("step (median of rank 0)   \(ms(stepMedian)) ms   (slowest rank's median \(ms(slowest)) ms); \(String(format: "%.2f", Double(batch * world.size) / slowest)) patches/s over all ranks")
        print("  forward                 \(ms(fwd)) ms")
        print("  backward                \(ms(bwd)) ms")
        print("  non-finite scan         \(ms(scan)) ms")
        print("  loss allreduce / wait   \(ms(wait)) ms")
        print("  gradient allreduce      \(ms(ar)) ms (exposed: \(bucketMB > 0 ? "the wait for the buckets after the backward" : "the trainer blocks on it"))")
        print("  optimizer (AdamW)       \(ms(opt)) ms")
        print(String(format: "model: %.2f GFLOP per patch (forward %.2f + backward %.2f%@), %.1f GFLOP/s per rank = %.0f%% of sgemm (%.1f GFLOP/s at 2048x576x576 in this process)",
                     (cost.forward + backwardFLOPs) / 1e9, cost.forward / 1e9, backwardFLOPs / 1e9, trainsBackbone ? ", 2x forward" : ", adapter-only",
                     gflops, 100 * gflops / sgemm, sgemm))
        print(String(format: "peak resident memory (largest rank): %.2f GiB; live tensor storage in the timed steps: %.2f GiB at the end of the forward, %.2f GiB at its peak",
                     Double(peak) / 1073741824, Double(afterForward) / 1073741824, Double(peakLive) / 1073741824))
        if let (rows, live) = graphStorage {
            let mib = { (b: Int) in String(format: "%9.1f MiB", Double(b) / 1_048_576) }
            print("storage held at the end of the forward (rank 0, first timed step), by the op that produced it:")
            for r in rows { print("  \(r.op.padding(toLength: 30, withPad: " ", startingAt: 0)) \(mib(r.bytes))  (\(r.buffers) buffers)") }
            let inGraph = rows.reduce(0) { $0 + $1.bytes }
            print("  \("(outside the graph's tensors)".padding(toLength: 30, withPad: " ", startingAt: 0)) \(mib(live - inGraph))  (saved by backward closures, optimizer state, the data)")
            print("  \("total live".padding(toLength: 30, withPad: " ", startingAt: 0)) \(mib(live))")
        }
        print("reduced per step: \(floats.grouped) \(gradDtype.rawValue) values = \(bytes.grouped) bytes\(bytes == 0 ? " (nothing moves: one rank or --no-allreduce)" : "")")
        if let csv {
            let header = "preset,method,task,batch_per_rank,ranks,threads,grad_dtype,bucket_mb,no_allreduce,step_ms,slowest_step_ms,forward_ms,backward_ms,scan_ms,wait_ms,allreduce_ms,optimizer_ms,gflops_per_rank,sgemm_gflops,peak_gib,floats_reduced,bytes_reduced\n"
            let row = [p.name, choice.name, "\(task)", "\(batch)", "\(world.size)", "\(Parallel.threads)", gradDtype.rawValue, String(format: "%g", bucketMB), "\(noAllreduce)",
                       ms(stepMedian), ms(slowest), ms(fwd), ms(bwd), ms(scan), ms(wait), ms(ar), ms(opt),
                       String(format: "%.2f", gflops), String(format: "%.2f", sgemm), String(format: "%.3f", Double(peak) / 1073741824),
                       "\(floats)", "\(bytes)"].joined(separator: ",") + "\n"
            guard FileManager.default.fileExists(atPath: csv) || FileManager.default.createFile(atPath: csv, contents: Data(header.utf8)),
                  let h = FileHandle(forWritingAtPath: csv) else { throw ValidationError("--csv \(csv): cannot write") }
            h.seekToEndOfFile()
            h.write(Data(row.utf8))
            h.closeFile()
        }
    }
}
