import AdaptIRCore
import ArgumentParser
import Foundation

/// `adaptir-dist pretrain`: multi-task pre-training of the whole IPT backbone (full-gradient allreduce). Each step
/// trains one task with its head, query and tail, round robin over the tasks; the result is a backbone file.
struct Pretrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Multi-task pre-training of the whole IPT backbone (SR x2/x3/x4, denoise 30/50), full-gradient allreduce.",
        discussion: """
            Produces the bundled small backbone: adaptir-dist pretrain --preset small --steps N \
            --out datasets/ipt_small_backbone.h5 (see datasets/README.md for the exact command and its log). \
            Training data: the bundled photos, packed once per task into the cache folder, unless --train-dir names \
            another folder of clean images.
            """)

    @Option(help: "Model preset (ipt, small, tiny).") var preset: String = "small"
    @Option(help: "Comma-separated tasks, each trained with its IPT head/query/tail.") var tasks: String = "sr_2,sr_3,sr_4,denoise_30,denoise_50"
    @Option(name: .customLong("train-dir"), help: "Folder of clean training images.") var trainDir: String = "datasets/samples/train"
    @Option(name: .customLong("global-batch")) var globalBatch: Int = 16
    @Option(help: "Optimisation steps over all tasks.") var steps: Int = 1000
    @Option(help: "AdamW learning rate (IPT's pre-training used 5e-5 at batch 64 on ImageNet).") var lr: Float = 2e-4
    @Option var seed: UInt64 = 0
    @Option var threads: Int = 1
    @Option(name: .customLong("patches-per-image")) var patchesPerImage: Int = 64
    @Option(name: .customLong("checkpoint-every")) var checkpointEvery: Int = 100
    @Option(help: "Folder for the training checkpoint and CSV.") var output: String = "runs/pretrain-small"
    @Option(help: "Cache folder for the packed data.") var cache: String = ".cache/adaptir-dist"
    @Option(name: .customLong("out"), help: "The backbone file written at the end.") var backboneOut: String = "runs/pretrain-small/backbone.h5"
    @Flag(help: "Continue from OUTPUT/checkpoint.h5.") var resume = false
    @Option(name: .customLong("init"), help: "Start from this backbone file instead of random weights (continued pre-training; fresh optimizer and schedule).") var initBackbone: String?

    func validate() throws {
        guard Preset.named(preset) != nil else { throw ValidationError("--preset: unknown preset '\(preset)'") }
        for t in tasks.split(separator: ",") where RestorationTask(rawValue: String(t)) == nil || Degradation.forTask(String(t)) == nil {
            throw ValidationError("--tasks: '\(t)' is not a task with synthetic degradations")
        }
        guard globalBatch >= 2 else { throw ValidationError("--global-batch must be >= 2, got \(globalBatch)") }
        guard steps >= 1 else { throw ValidationError("--steps must be >= 1, got \(steps)") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be positive, got \(lr)") }
    }

    func run() throws {
        let comm = Communicator.world
        do {
            try pretrain(comm)
        } catch {
            FileHandle.standardError.write(Data("adaptir-dist pretrain: rank \(comm.rank): \(error)\n".utf8))
            if comm.size > 1 { comm.abort(code: 1) }
            throw ExitCode(1)
        }
        Communicator.finalize()
    }

    private func pretrain(_ comm: Communicator) throws {
        BLAS.threads = threads
        Runtime.flushDenormalsOnThisThread()
        StopRequest.shared.installSignalHandlers()
        func log(_ s: String) { if comm.isRoot { FileHandle.standardOutput.write(Data((s + "\n").utf8)) } }
        let taskList = tasks.split(separator: ",").map { RestorationTask(rawValue: String($0))! }
        guard globalBatch % comm.size == 0 else {
            throw TrainingError.configuration("global batch \(globalBatch) is not a multiple of the \(comm.size) ranks")
        }
        var sources: [(task: Int, source: BatchSource)] = []
        for task in taskList {
            let path = (cache as NSString).appendingPathComponent("pretrain-\(task.rawValue)-seed\(seed)-k\(patchesPerImage).h5")
            if comm.isRoot && !FileManager.default.fileExists(atPath: path) {
                try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
                var o = PackOptions(task: task.rawValue, input: trainDir, output: path)
                o.patchesPerImage = patchesPerImage
                o.seed = seed
                let report = try Packer.pack(o)
                log("packed \(trainDir) for \(task.rawValue): \(report.count) patches -> \(path)")
            }
            try comm.barrier()
            let reader = try PatchReader(path: path, ranks: comm.size, rank: comm.rank, batchSize: globalBatch / comm.size,
                                         seed: seed, dropLastBatch: true)
            sources.append((task.iptTask, try ReaderBatchSource(reader: reader)))
        }
        let model = AdaptedIPT(preset: Preset.named(preset)!, method: .full, seed: seed)
        let trainer = try Trainer(model: model, comm: comm, task: sources[0].task, globalBatch: globalBatch,
                                  totalSteps: steps, lr: lr, weightDecay: 0)
        var options = TrainingRunOptions(steps: steps, checkpointEvery: checkpointEvery, outputDirectory: output)
        options.configText = "pretrain preset=\(preset) tasks=\(tasks) batch=\(globalBatch) steps=\(steps) lr=\(lr) seed=\(seed) patches_per_image=\(patchesPerImage) init=\(initBackbone ?? "random")"
        let resuming = resume && FileManager.default.fileExists(atPath: options.checkpointPath)
        if resume && !resuming { log("--resume: no checkpoint at \(options.checkpointPath); starting from step 0") }
        if resuming {
            if comm.isRoot { try TrainingCheckpoint.load(options.checkpointPath, into: trainer) }
        } else if let initBackbone, comm.isRoot {
            try Checkpoint.load(initBackbone, into: model, part: .backbone)
            log("initialised from \(initBackbone)")
        }
        try trainer.broadcastState()
        log("pre-training preset \(preset) on \(taskList.map(\.rawValue).joined(separator: ", ")): \(comm.size) rank(s), global batch \(globalBatch), steps \(trainer.step)..<\(steps); allreduce per step: \(model.store.trainableCount) floats = \(model.store.trainableCount * 4) bytes")
        let progress = ProgressBar(total: steps, start: trainer.step, batch: globalBatch)
        options.onStep = { progress.update(step: $0.step + 1, loss: $0.loss, lr: $0.lr) }
        let start = monotonicSeconds()
        let outcome = try TrainingRun(trainer: trainer, source: RoundRobinTasks(sources), options: options).run()
        progress.finish()
        guard outcome == .finished else { log("stopped; resume with --resume"); return }
        if comm.isRoot {
            try FileManager.default.createDirectory(atPath: (backboneOut as NSString).deletingLastPathComponent.isEmpty ? "." : (backboneOut as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Checkpoint.save(model, part: .backbone, to: backboneOut, step: steps)
        }
        log(String(format: "wrote %@ after %d steps in %.0f s", backboneOut, steps, monotonicSeconds() - start))
    }
}
