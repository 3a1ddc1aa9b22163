import AdaptIRCore
import ArgumentParser
import Foundation

/// `adaptir-dist pretrain`: multi-task pre-training of the whole IPT backbone (full-gradient allreduce). Each step
/// trains one task with its head, query and tail, round robin over the tasks; the result is a backbone file. It is
/// `train`'s job (config agreement, rank checks, output lock, resume rules, checkpoints, CSV) with full fine-tuning,
/// several tasks, no weight decay and a backbone file at the end.
struct Pretrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Multi-task pre-training of the whole IPT backbone (SR x2/x3/x4, denoise 30/50), full-gradient allreduce.",
        discussion: """
            Produces the bundled small backbone: adaptir-dist pretrain --preset small --steps N \
            --out datasets/ipt_small_backbone.h5 (see datasets/README.md for the exact commands and logs). Training \
            data: the bundled photos (found from any directory), or the folders given with --train-dir, packed once \
            per task into the cache folder. With sr_4 among the tasks, the bundled test photos are scored on clean \
            x4 before and after (with the bicubic baseline) unless --no-eval.
            """)

    @Option(help: "Model preset: \(Preset.all.map(\.name).joined(separator: ", ")).") var preset: String = "small"
    @Option(help: "Comma-separated tasks, each trained with its IPT head/query/tail.") var tasks: String = "sr_2,sr_3,sr_4,denoise_30,denoise_50"
    @Option(name: .customLong("train-dir"), help: "Folder of clean training images (repeatable; default: the bundled sample photos).") var trainDirs: [String] = []
    @Option(name: .customLong("global-batch")) var globalBatch: Int = 16
    @Option(help: "Optimisation steps over all tasks.") var steps: Int = 1000
    @Option(help: "AdamW learning rate (IPT's pre-training used 5e-5 at batch 64 on ImageNet).") var lr: Float = 2e-4
    @Option var seed: UInt64 = 0
    @Option var threads: Int = 1
    @Option(name: .customLong("patches-per-image"), help: "Random patches cut once from each photo and task (--kind patches).") var patchesPerImage: Int = 64
    @Option(help: "How the photos are packed: 'patches' (degraded once, fixed) or 'images' (clean 480x480 sub-images, a fresh random crop, flip/rotation and degradation every epoch).")
    var kind: String = "patches"
    @Option(name: .customLong("checkpoint-every")) var checkpointEvery: Int = 100
    @Option(help: "Folder for the training checkpoint and CSV.") var output: String = "runs/pretrain-small"
    @Option(help: "Cache folder for the packed data.") var cache: String = ".cache/adaptir-dist"
    @Option(name: .customLong("out"), help: "The backbone file written at the end.") var backboneOut: String = "runs/pretrain-small/backbone.h5"
    @Flag(help: "Continue from OUTPUT/checkpoint.h5.") var resume = false
    @Flag(help: "Start over in an --output folder that holds a checkpoint (refused otherwise).") var force = false
    @Flag(name: .customLong("no-eval"), help: "Skip the clean x4 evaluation before and after.") var noEval = false
    @Option(name: .customLong("init"), help: "Start from this backbone file instead of random weights (continued pre-training; fresh optimizer and schedule).") var initBackbone: String?
    @Option(help: "Seconds a rank may wait for the others before the job ends with a report of the late ranks (0: off).")
    var watchdog: Double = 300

    func config() throws -> TrainConfig {
        var c = TrainConfig()
        c.preset = preset
        c.method = MethodChoice.full.name
        c.tasks = tasks.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        c.task = c.tasks.contains(RestorationTask.sr4.rawValue) ? RestorationTask.sr4.rawValue : (c.tasks.first ?? "")
        c.trainDirs = trainDirs
        c.globalBatch = globalBatch
        c.steps = steps
        c.lr = lr
        c.weightDecay = 0
        c.seed = seed
        c.threads = threads
        c.patchesPerImage = patchesPerImage
        c.checkpointEvery = checkpointEvery
        c.output = output
        c.cache = cache
        c.backbone = initBackbone ?? ""
        c.syncBN = false
        do { try c.validate() } catch { throw ValidationError("\(error)") }
        return c
    }

    func validate() throws {
        _ = try config()
        _ = try PatchFile.Kind(option: kind)
        guard watchdog.isFinite, watchdog >= 0 else { throw ValidationError("--watchdog: expected seconds >= 0 (0: off), got \(watchdog)") }
    }

    func run() throws {
        let comm = Communicator.world
        do {
            let c = try config()
            let evaluate = !noEval && c.task == RestorationTask.sr4.rawValue
            var job = TrainingJob(config: c, comm: comm, resume: resume, evaluate: evaluate, watchdog: watchdog, force: force)
            job.backboneOut = backboneOut
            job.packKind = try PatchFile.Kind(option: kind)
            try job.run()
        } catch {
            FileHandle.standardError.write(Data("adaptir-dist pretrain: rank \(comm.rank): \(error)\n".utf8))
            if comm.size > 1 { comm.abort(code: 1) }
            throw ExitCode(1)
        }
        Communicator.finalize()
    }
}
