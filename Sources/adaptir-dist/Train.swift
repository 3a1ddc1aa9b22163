import AdaptIRCore
import ArgumentParser
import Foundation
import Yams

/// `adaptir-dist train`: data-parallel adaptation of a frozen backbone over MPI (`mpirun -n 8 adaptir-dist train`).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Adapt the frozen backbone with AdaptIR on packed patches; only the adapter gradients are allreduced; evaluates before and after.",
        discussion: """
            With no arguments (the embedded default): preset small, AdaptIR, LR4&Noise30, the photo corpus of \
            datasets/fetch-photos.sh (its test split scored; the bundled sample photos when it was not fetched), \
            packed on first use into the cache folder, and the bundled small backbone, 500 steps at lr 1e-2 \
            (a demonstration; with --config or --train-data the defaults are the paper's recipe: lr 1e-4, weight \
            decay 0.01, milestones at 50/80/90/95 % of the run, gamma 0.5). A YAML file (--config) sets any field of the \
            run (keys: preset, method, task, train_data, test_data, backbone, global_batch, steps, lr, \
            weight_decay, milestones, gamma, seed, sync_bn, checkpoint_every, output, cache, threads, \
            patches_per_image, method_options, val_data, val_every, tasks, train_dirs, grad_dtype, bucket_mb); options override it. With --val-data the mean \
            L1 loss on that packed file (eval mode) goes to OUTPUT/val.csv every --val-every steps. OUTPUT/results.json \
            holds the run's numbers (PSNR/SSIM of the bicubic baseline, the unadapted and the adapted model, time, \
            peak memory, bytes reduced) for scripts and `adaptir-dist compare`. SIGTERM or SIGINT finishes the step, writes a checkpoint \
            and exits 0; --resume continues from it.
            """)

    @Option(help: "YAML config file.") var config: String?
    @Option(help: "Model preset: \(Preset.all.map(\.name).joined(separator: ", ")).") var preset: String?
    @Option(help: "Adaptation method: \(MethodRegistry.names.filter { $0 != FrozenBackbone.name }.joined(separator: ", ")) (adaptir-dist inspect --methods lists them with their hyper-parameters).")
    var method: String?
    @Option(name: .customLong("method-option"), help: "A hyper-parameter of the method, NAME=VALUE (repeatable), e.g. rank=8; YAML: method_options: {rank: 8}.")
    var methodOption: [String] = []
    @Option(help: "Task, e.g. lr4_noise30, sr_4, denoise_30.") var task: String?
    @Option(name: .customLong("train-data"), help: "Packed training file (adaptir-dist pack).") var trainData: String?
    @Option(name: .customLong("test-data"), help: "Folder of clean test images ('' for no evaluation).") var testData: String?
    @Option(help: "Backbone checkpoint ('auto': ipt_<preset>_backbone.h5 of the bundled data ($ADAPTIR_DATA, ./datasets, <prefix>/share/adaptir-dist/datasets, the build's checkout) if present; '' for a random backbone).") var backbone: String?
    @Option(name: .customLong("global-batch"), help: "Samples per step over all ranks.") var globalBatch: Int?
    @Option(help: "Optimisation steps (default 300; 500 in the embedded default).") var steps: Int?
    @Option(help: "AdamW learning rate (default 1e-4, the paper's; 1e-2 in the embedded default with AdaptIR).") var lr: Float?
    @Option(name: .customLong("weight-decay")) var weightDecay: Float?
    @Option(help: "Seed of the data order, crops, augmentation and noise.") var seed: UInt64?
    @Option(help: "Threads per rank (intra-op pool; OpenBLAS itself runs single-threaded).") var threads: Int?
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints (0: only at the end).") var checkpointEvery: Int?
    @Option(help: "Output folder (checkpoint.h5, train.csv, results.md, restored images).") var output: String?
    @Option(name: .customLong("sync-bn"), help: "Sum adapter batch-norm statistics over ranks (true/false).") var syncBN: Bool?
    @Option(name: .customLong("val-data"), help: "Packed validation file (not the test images); its mean L1 loss goes to OUTPUT/val.csv.") var valData: String?
    @Option(name: .customLong("val-every"), help: "Steps between validations (with --val-data; also at step 0 and at the end).") var valEvery: Int?
    @Option(name: .customLong("grad-dtype"), help: "Gradient allreduce in fp32, fp16 or bf16 (half the bytes; fp32 sums on each rank, as Horovod's fp16 compression).")
    var gradDtype: GradientWireType?
    @Option(name: .customLong("bucket-mb"), help: "Overlap the gradient allreduce with the backward in buckets of this many MiB (as DDP's bucket_cap_mb, 25 there); 0 (default): one allreduce after the backward.")
    var bucketMB: Double?
    @Option(name: .customLong("attention-memory-mib"), help: "MiB of attention probabilities each rank keeps from the forward for the backward; the attentions past it recompute theirs (bit-identical, slower). 0: recompute all. (default: 1024)")
    var attentionMemoryMiB: Int?
    @Option(help: "Seconds a rank may wait for the others at a step or collective before the job ends with a report of the late ranks (0: off).")
    var watchdog: Double = 300
    @Flag(help: "Continue from OUTPUT/checkpoint.h5.") var resume = false
    @Flag(help: "Start a new run in an --output folder that holds a checkpoint, replacing it (refused otherwise).") var force = false
    @Flag(name: .customLong("allow-task-mismatch"), help: "Train on a packed file of another task with the same scale (refused otherwise).")
    var allowTaskMismatch = false
    @Flag(name: .customLong("verify-data"), help: "Recompute the training file's pixel hash (content_sha256) before training; the attributes' hash is checked at every open anyway.")
    var verifyData = false
    @Flag(name: .customLong("no-eval"), help: "Skip the evaluation before and after.") var noEval = false
    @Flag(name: .customLong("no-eval-before"), help: "Skip the evaluation of the unadapted backbone (its scores are the same for every run on one backbone).") var noEvalBefore = false

    /// Neither a config file nor data: the embedded demonstration (`TrainConfig.embeddedDefault(method:)`).
    var isEmbeddedDefault: Bool { config == nil && trainData == nil }

    func validate() throws {
        guard watchdog.isFinite, watchdog >= 0 else {
            throw ValidationError("--watchdog: expected seconds >= 0 (0: off), got \(watchdog)")
        }
    }

    func resolvedConfig() throws -> TrainConfig {
        var c = isEmbeddedDefault ? TrainConfig.embeddedDefault(method: method ?? TrainConfig().method) : TrainConfig()
        var fromFile: TrainConfig?
        if let config {
            guard let text = try? String(contentsOfFile: config, encoding: .utf8) else {
                throw ValidationError("\(config): cannot read the config file")
            }
            do { c = try decodeConfigYAML(text) } catch {
                throw ValidationError("\(config): \(error)")
            }
            fromFile = c
        }
        if let preset { c.preset = preset }
        if let method, method != c.method { c.method = method; c.methodOptions = [:] }
        for text in methodOption {
            do { let (k, v) = try MethodChoice.parseOption(text); c.methodOptions[k] = v } catch { throw ValidationError("--method-option: \(error)") }
        }
        if let task { c.task = task }
        if let trainData { c.trainData = trainData }
        if let testData { c.testData = testData }
        if let backbone { c.backbone = backbone }
        if let globalBatch { c.globalBatch = globalBatch }
        if let steps { c.steps = steps }
        if let lr { c.lr = lr }
        if let weightDecay { c.weightDecay = weightDecay }
        if let seed { c.seed = seed }
        if let threads { c.threads = threads }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        if let output { c.output = output }
        if let syncBN { c.syncBN = syncBN }
        if let valData { c.valData = valData }
        if let valEvery { c.valEvery = valEvery }
        if let gradDtype { c.gradDtype = gradDtype }
        if let bucketMB { c.bucketMB = bucketMB }
        if let attentionMemoryMiB { c.attentionMemoryMiB = attentionMemoryMiB }
        if c.valEvery == 0 && !c.valData.isEmpty { c.valEvery = max(1, c.steps / 20) }
        do { try c.validate() } catch {
            // The file's fault when the file alone gives the same error: the message then names the file too (a bad
            // value from a command-line option does not).
            var fileError: String?
            if let fromFile { do { try fromFile.validate() } catch { fileError = "\(error)" } }
            if let config, fileError == "\(error)" { throw ValidationError("\(config): \(error)") }
            throw ValidationError("\(error)")
        }
        return c
    }

    func run() throws {
        let config = try resolvedConfig()
        let comm = Communicator.world
        if isEmbeddedDefault && comm.isRoot {
            let data = config.trainDirs.isEmpty
                ? "the bundled sample photos (the photo corpus was not found: "
                    + DataLocations.current.searched(TrainConfig.photoCorpusStamp) + "; datasets/fetch-photos.sh fetches it, make run does)"
                : "the photo corpus (\(config.trainDirs.joined(separator: ", ")), scored on \(config.testData))"
            print("embedded default: \(config.methodChoice) on \(data) and the bundled backbone, \(config.steps) steps at lr \(config.lr) "
                  + "(a demonstration; the paper's recipe, lr 1e-4, applies with --config or --train-data)")
        }
        do {
            try TrainingJob(config: config, comm: comm, resume: resume, evaluate: !noEval, evaluateBefore: !noEvalBefore, watchdog: watchdog,
                            force: force, allowTaskMismatch: allowTaskMismatch, archiveExisting: isEmbeddedDefault && output == nil,
                            verifyData: verifyData).run()
        } catch {
            let line = "adaptir-dist train: rank \(comm.rank): \(error)\n"
            FileHandle.standardError.write(Data(line.utf8))
            if comm.size > 1 { comm.abort(code: 1) }   // the other ranks may wait in a collective
            throw ExitCode(1)
        }
        Communicator.finalize()
    }
}

/// The steps of a training job, shared by `train` (and later `pretrain`).
struct TrainingJob {
    let config: TrainConfig
    let comm: Communicator
    let resume: Bool
    let evaluate: Bool
    var evaluateBefore = true
    let watchdog: Double
    var force = false
    var allowTaskMismatch = false
    /// The embedded default moves a previous run out of the way (to OUTPUT_archived_TIME, as BasicSR does) instead
    /// of refusing: `make run` twice must work and lose nothing.
    var archiveExisting = false
    /// Recompute the training file's pixel hash before training (`train --verify-data`).
    var verifyData = false
    /// Pre-training: the backbone file written at the end (`pretrain --out`).
    var backboneOut: String? = nil
    /// What the training folders are packed into (`pretrain --kind`): fixed degraded patches, or clean sub-images
    /// that the reader crops, flips and degrades afresh every epoch (BasicSR's way).
    var packKind: PatchFile.Kind = .patches

    static func timestamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd_HHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date())
    }

    func log(_ s: String) { if comm.isRoot { FileHandle.standardOutput.write(Data((s + "\n").utf8)) } }

    func run() throws {
        Parallel.configure(threads: config.threads)
        AttentionMemory.storeProbabilitiesUpToBytes = config.attentionMemoryMiB << 20
        Runtime.flushDenormalsOnThisThread()
        StopRequest.shared.installSignalHandlers()
        let preset = Preset.named(config.preset)!
        let task = RestorationTask(rawValue: config.task)!
        // Before anything derived from the config (the packed data's name, the backbone file), so a rank with another
        // seed or preset is reported as a config mismatch instead of failing on a file of its own.
        try checkConfigAgrees()
        // One run per output folder: rank 0 holds the lock for the job's lifetime, and refuses to replace a checkpoint
        // unless told to resume it or to start over.
        var lock: FileLock?
        if comm.isRoot {
            do { try FileManager.default.createDirectory(atPath: config.output, withIntermediateDirectories: true) } catch {
                throw DataError(file: config.output, message: "cannot create the output folder: \((error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription)")
            }
            guard access(config.output, W_OK) == 0 else {
                throw DataError(file: config.output, message: "the output folder is not writable: \(String(cString: strerror(errno)))")
            }
            func takeLock() throws -> FileLock {
                try FileLock(path: (config.output as NSString).appendingPathComponent(".lock"), what: "output folder \(config.output)")
            }
            lock = try takeLock()
            let checkpoint = (config.output as NSString).appendingPathComponent("checkpoint.h5")
            if !resume && FileManager.default.fileExists(atPath: checkpoint) {
                if archiveExisting {
                    let archived = config.output + "_archived_" + TrainingJob.timestamp()
                    lock = nil
                    try FileManager.default.moveItem(atPath: config.output, toPath: archived)
                    try FileManager.default.createDirectory(atPath: config.output, withIntermediateDirectories: true)
                    lock = try takeLock()
                    log("the previous run in \(config.output) was moved to \(archived)")
                } else if !force {
                    throw TrainingError.configuration("\(checkpoint) exists: continue that run with --resume, or start over with --force (it is replaced), or choose another --output")
                }
            }
        }
        defer { withExtendedLifetime(lock) {} }
        try comm.barrier()

        let model = try AdaptedIPT(preset: preset, choice: config.methodChoice, seed: config.seed)
        if let path = config.resolvedBackbone {
            try Checkpoint.load(path, into: model, part: .backbone)
            log("backbone \(path)")
        } else if config.backbone.isEmpty && !config.tasks.isEmpty {
            log("backbone: random initialisation (multi-task pre-training from scratch)")
        } else {
            log("warning: no backbone file (\(config.backbone.isEmpty ? "none given" : DataLocations.current.searched("ipt_\(preset.name)_backbone.h5"))): the backbone is randomly initialised, results are meaningless (speed tests only)")
        }
        // One packed file per trained task (several in multi-task pre-training, round robin over them).
        var sources: [(task: Int, source: BatchSource)] = []
        var readers: [PatchReader] = []
        var dataHash = ""
        for t in config.trainedTasks {
            let dataPath = try prepareTrainingData(task: t)
            try checkDataTask(dataPath, task: t)
            let reader = try PatchReader(path: dataPath, ranks: comm.size, rank: comm.rank, batchSize: config.globalBatch / comm.size,
                                         seed: config.seed, dropLastBatch: true, degrade: TrainingJob.onTheFly(t))
            let dataFile = try PatchFile.open(dataPath)
            if verifyData {
                // The pixel hash needs a read of the whole file: rank 0 does it while the others wait.
                if comm.isRoot {
                    let start = monotonicSeconds()
                    try dataFile.verify()
                    log(String(format: "--verify-data: content_sha256 of %@ matches its pixels (%.1f s)", dataPath, monotonicSeconds() - start))
                }
                try comm.barrier()
            }
            dataHash += dataFile.contentSHA256 + (dataFile.headerSHA256 ?? "")
            let unused = reader.sampler.samplesPerRank % reader.batchSize * comm.size
            log("data \(dataPath): \(reader.count) samples, \(reader.batchesPerEpoch) steps per epoch; per epoch \(reader.sampler.padding) padded "
                + "(repeated, as DistributedSampler), \(unused) left out by the dropped last partial batch of each rank")
            sources.append((t.iptTask, try ReaderBatchSource(reader: reader)))
            readers.append(reader)
        }
        let source: BatchSource = sources.count == 1 ? sources[0].source : RoundRobinTasks(sources)
        try checkRanksAgree(model: model, dataHash: dataHash)
        let trainer = try Trainer(model: model, comm: comm, task: sources[0].task, globalBatch: config.globalBatch,
                                  totalSteps: config.steps, lr: config.lr, weightDecay: config.weightDecay,
                                  milestones: config.milestones, gamma: config.gamma, syncBatchNorm: config.syncBN)
        trainer.gradWire = config.gradDtype
        trainer.bucketBytes = Int(config.bucketMB * 1_048_576)
        var options = TrainingRunOptions(steps: config.steps, checkpointEvery: config.checkpointEvery, outputDirectory: config.output)
        options.configText = config.canonicalJSON
        options.dataSeed = config.seed
        options.watchdogSeconds = watchdog
        if !config.valData.isEmpty {
            let v = try Validator(path: config.valData, comm: comm, degrade: TrainingJob.onTheFly(task))
            options.validator = v
            options.validateEvery = config.valEvery
            log("validation \(config.valData): \(v.count) patches every \(config.valEvery) steps -> \(options.validationCSVPath)")
        }
        if resume, FileManager.default.fileExists(atPath: options.checkpointPath) {
            if comm.isRoot {
                let stored = try TrainingCheckpoint.load(options.checkpointPath, into: trainer).config
                try checkResumable(storedConfig: stored, checkpoint: options.checkpointPath)
                if trainer.step > config.steps {
                    throw TrainingError.configuration("\(options.checkpointPath) is at step \(trainer.step), beyond --steps \(config.steps): pass --steps above \(trainer.step) to continue it")
                }
                if trainer.step == config.steps { log("--resume: the checkpoint already finished all \(config.steps) steps; nothing to train") }
            }
            log("resuming from \(options.checkpointPath)")
        } else if resume {
            log("--resume: no checkpoint at \(options.checkpointPath); starting from step 0")
        }
        try trainer.broadcastState()
        let taskText = config.tasks.isEmpty ? "task \(task.rawValue)" : "tasks \(config.tasks.joined(separator: ", ")) (round robin, one per step)"
        log("preset \(preset.name), method \(MethodChoice(config.method, options: model.method.values)), \(taskText), \(comm.size) rank(s) x \(Parallel.threads) thread(s), global batch \(config.globalBatch) (\(trainer.localBatch) per rank), steps \(trainer.step)..<\(config.steps)")
        log("trainable \(model.store.trainableCount) of \(model.store.parameterCount) parameters; allreduce per step: \(model.store.trainableCount) \(config.gradDtype.rawValue) values = \(model.store.trainableCount * config.gradDtype.bytesPerElement) bytes in one flat buffer; sync BN \(trainer.syncBatchNorm != nil ? "on" : "off")")

        let evaluator = Evaluator(task: task, seed: config.seed)
        let pairs = evaluate && !config.testData.isEmpty ? try evaluator.testPairs(folder: config.resolvedTestData()) { log($0) } : []
        let before = try pairs.isEmpty || !evaluateBefore ? [] : evaluateShared(evaluator, model: model, pairs: pairs)
        let baseline = evaluator.baseline(pairs: pairs)

        let progress = ProgressBar(total: config.steps, start: trainer.step, batch: config.globalBatch)
        options.onStep = { progress.update(step: $0.step + 1, loss: $0.loss, lr: $0.lr) }
        let trainStart = monotonicSeconds()
        let firstStep = trainer.step
        let outcome = try TrainingRun(trainer: trainer, source: source, options: options).run()
        let trainSeconds = monotonicSeconds() - trainStart
        progress.finish()
        for r in readers { r.stop() }
        let peaks = try comm.allgather(Int64(peakResidentBytes()))
        log("peak resident memory per rank (GiB): " + peaks.map { String(format: "%.2f", Double($0) / 1073741824) }.joined(separator: ", "))
        switch outcome {
        case .finished: log("finished \(config.steps) steps; checkpoint \(options.checkpointPath)")
        case .stopped(let s): log("stopped by signal after step \(s); checkpoint \(options.checkpointPath) (resume with --resume)"); return
        }
        if let backboneOut, comm.isRoot {
            let folder = (backboneOut as NSString).deletingLastPathComponent
            if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            try Checkpoint.save(model, part: .backbone, to: backboneOut, step: trainer.step)
            log("wrote the backbone \(backboneOut)")
        }
        var after: [ImageResult] = []
        if !pairs.isEmpty {
            after = try evaluateShared(evaluator, model: model, pairs: pairs, outputFolder: (config.output as NSString).appendingPathComponent("restored"))
            let table = resultsTable(evaluator: evaluator, baseline: baseline, before: before, after: after)
            log(table)
            try Data(table.utf8).write(to: URL(fileURLWithPath: (config.output as NSString).appendingPathComponent("results.md")), options: .atomic)
            if !before.isEmpty, after.mean.psnr < before.mean.psnr - 0.005 {
                log(String(format: "warning: the adapted model scores %.2f dB below the unadapted backbone on the test images (%.2f vs %.2f dB): this adaptation makes the backbone worse on images outside its training set; check the learning rate, the steps and the data", before.mean.psnr - after.mean.psnr, after.mean.psnr, before.mean.psnr))
            }
        }
        if comm.isRoot {
            var r = RunResults(config: config, method: MethodChoice(config.method, options: model.method.values), ranks: comm.size)
            r.trainable = model.store.trainableCount
            r.parameters = model.store.parameterCount
            r.steps = (firstStep, trainer.step)
            r.trainSeconds = trainSeconds
            r.peakResidentBytes = peaks.map(Int.init)
            if !pairs.isEmpty {
                r.baselineName = evaluator.baselineName
                r.baseline = .init(baseline.mean)
                r.before = before.isEmpty ? nil : .init(before.mean)
                r.after = .init(after.mean)
                r.testImages = pairs.count
            }
            if let text = try? String(contentsOfFile: options.validationCSVPath, encoding: .utf8),
               let last = text.split(separator: "\n").last?.split(separator: ","), last.count == 2 {
                r.finalValidationLoss = Double(last[1])
            }
            try r.write(to: (config.output as NSString).appendingPathComponent("results.json"))
        }
    }

    /// Scores the test images with every rank taking every p-th image (as a distributed evaluation loop does), then
    /// sums the per-image scores so that every rank holds the whole list; each rank writes its own restored images.
    func evaluateShared(_ evaluator: Evaluator, model: AdaptedIPT, pairs: [(name: String, lq: RGBImage, gt: RGBImage)],
                        outputFolder: String? = nil) throws -> [ImageResult] {
        let mine = Array(stride(from: comm.rank, to: pairs.count, by: comm.size))
        let local = try evaluator.evaluate(model: model, pairs: mine.map { pairs[$0] }, outputFolder: outputFolder)
        var scores = [Double](repeating: 0, count: 2 * pairs.count)
        for (k, i) in mine.enumerated() { scores[2 * i] = local[k].quality.psnr; scores[2 * i + 1] = local[k].quality.ssim }
        if comm.size > 1 { try scores.withUnsafeMutableBufferPointer { try comm.allreduceSum($0) } }
        return pairs.indices.map { ImageResult(name: pairs[$0].name, quality: ImageQuality(psnr: scores[2 * $0], ssim: scores[2 * $0 + 1])) }
    }

    /// The packed training file of `task`: the configured one, or the images of `train_dirs` (the bundled sample
    /// photos when none is given) packed once into the cache (rank 0 packs, the others wait).
    func prepareTrainingData(task: RestorationTask) throws -> String {
        if !config.trainData.isEmpty { return config.trainData }
        let name: String
        let inputs: [String]
        let what = packKind == .images ? "images" : "k\(config.patchesPerImage)"
        if config.trainDirs.isEmpty {
            name = "samples-\(task.rawValue)-seed\(config.seed)-\(what).h5"
            inputs = [try DataLocations.current.locate("samples/train")]
        } else {
            // Named by the folders (absolute paths), so other folders never reuse a packed file.
            inputs = config.trainDirs.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            var h = SHA256()
            h.update(Array(inputs.joined(separator: "\n").utf8))
            name = "dirs-\(h.finalizeHex().prefix(12))-\(task.rawValue)-seed\(config.seed)-\(what).h5"
        }
        let path = (config.cache as NSString).appendingPathComponent(name)
        if comm.isRoot && !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createDirectory(atPath: config.cache, withIntermediateDirectories: true)
            var o = PackOptions(task: task.rawValue, input: inputs[0], output: path)
            o.inputs = inputs
            o.patchesPerImage = config.patchesPerImage
            o.kind = packKind
            o.seed = config.seed
            let report = try Packer.pack(o)
            log("packed \(config.trainDirs.isEmpty ? "the bundled training photos" : inputs.joined(separator: ", ")) for \(task.rawValue) into \(path): \(report.count) \(packKind == .images ? "clean sub-images (cropped and degraded afresh every epoch)" : "patches")")
        }
        try comm.barrier()
        return path
    }

    /// The degradation of a `--kind images` file, applied to each clean crop as it is read (random crop, flip/rotation,
    /// then the task's synthetic degradation), with noise from the sample's Philox stream: the same pixels for a
    /// sample whatever the number of ranks. nil for tasks without a synthetic degradation (real pairs).
    static func onTheFly(_ task: RestorationTask) -> DegradeFunction? {
        guard let d = Degradation.forTask(task.rawValue) else { return nil }
        return { image, rng in try d.apply(image, rng: &rng) }
    }

    /// The packed file must hold the run's task: another scale cannot train at all, another degradation at the same
    /// scale would train silently on the wrong inputs (allowed only with --allow-task-mismatch).
    func checkDataTask(_ path: String, task: RestorationTask) throws {
        let file = try PatchFile.open(path)
        guard file.scale == task.scale else {
            throw DataError(file: path, message: "packed for task '\(file.task)' at scale \(file.scale); task \(task.rawValue) needs scale \(task.scale) (pack it with --task \(task.rawValue))")
        }
        if file.task != task.rawValue {
            guard allowTaskMismatch else {
                throw DataError(file: path, message: "packed for task '\(file.task)', the run's task is \(task.rawValue) (pack it with --task \(task.rawValue), or pass --allow-task-mismatch to train on it anyway)")
            }
            log("warning: \(path) was packed for task '\(file.task)'; training task \(task.rawValue) on it (--allow-task-mismatch)")
        }
    }

    /// All ranks must run the same config: a mismatch names the ranks that differ from rank 0 and the fields.
    func checkConfigAgrees() throws {
        let all = try comm.allgather(config.canonicalJSON)
        let differing = all.indices.filter { all[$0] != all[0] }
        guard !differing.isEmpty else { return }
        let fields = Set(differing.flatMap { TrainingJob.differingFields(all[0], all[$0]) }).sorted()
        throw TrainingError.configuration("ranks \(differing.map(String.init).joined(separator: ", ")) have a different config than rank 0 (differing fields: \(fields.joined(separator: ", ")))")
    }

    /// Config fields a resumed run may change: where files go, how often checkpoints are written, threads, the test
    /// set, the validation file and interval, the gradient's wire type and buckets, the attention memory budget, and
    /// the number of steps (a longer or shorter run; its milestones move with it, logged). Any other
    /// difference would silently make the resumed run a different run, so it is refused, naming the fields.
    static let resumableFields: Set<String> = ["output", "cache", "checkpoint_every", "threads", "test_data", "steps", "val_data", "val_every", "grad_dtype", "bucket_mb", "attention_memory_mib"]

    func checkResumable(storedConfig: String, checkpoint: String) throws {
        guard !storedConfig.isEmpty else { return }   // checkpoints of the library API may carry no config
        let differing = TrainingJob.differingFields(storedConfig, config.canonicalJSON)
        let refused = differing.filter { !TrainingJob.resumableFields.contains($0) }
        guard refused.isEmpty else {
            throw TrainingError.configuration("\(checkpoint): --resume with a config that differs from the checkpoint's in \(refused.joined(separator: ", ")) (start a new run in another --output folder instead)")
        }
        if differing.contains("steps") {
            log("--resume: steps differ from the checkpoint's run; the learning-rate milestones are fractions of the new total")
        }
    }

    /// The top-level keys whose values differ between two canonical config JSON texts.
    static func differingFields(_ a: String, _ b: String) -> [String] {
        func fields(_ s: String) -> [String: String] {
            let object = (try? JSONSerialization.jsonObject(with: Data(s.utf8))) as? [String: Any] ?? [:]
            return object.mapValues { "\($0)" }
        }
        let x = fields(a), y = fields(b)
        return Set(x.keys).union(y.keys).filter { x[$0] != y[$0] }.sorted()
    }

    /// All ranks must run on the same backbone, parameter layout and data (the config is checked at start).
    func checkRanksAgree(model: AdaptedIPT, dataHash: String) throws {
        let frozen = model.store.frozen
        var h = SHA256()
        h.update(UnsafeRawBufferPointer(start: frozen.base, count: frozen.count * 4))
        let layout = model.store.specs.map { "\($0.key):\($0.shape)" }.joined(separator: ";")
        var lh = SHA256()
        lh.update(Array(layout.utf8))
        let parts = [("backbone checksum", h.finalizeHex()),
                     ("parameter layout", lh.finalizeHex()), ("data hash", dataHash)]
        for (what, value) in parts {
            let differing = try comm.ranksDiffering(value)
            if !differing.isEmpty {
                throw TrainingError.configuration("ranks \(differing.map(String.init).joined(separator: ", ")) have a different \(what) than rank 0")
            }
        }
    }

    /// Per image: the plain baseline (bicubic for SR), the unadapted backbone (when evaluated) and the adapted model.
    func resultsTable(evaluator: Evaluator, baseline: [ImageResult], before: [ImageResult], after: [ImageResult]) -> String {
        let task = evaluator.task, b = evaluator.baselineName
        let space = task.metricOnY ? "Y" : "RGB"
        let columns: [(String, [ImageResult])] = [(b, baseline)] + (before.isEmpty ? [] : [("before", before)]) + [("after", after)]
        var s = "| image |" + columns.map { " PSNR \($0.0) | SSIM \($0.0) |" }.joined() + "\n|---|" + String(repeating: "---|---|", count: columns.count) + "\n"
        for (i, r) in after.enumerated() {
            s += "| \(r.name) |" + columns.map { String(format: " %.2f | %.4f |", $0.1[i].quality.psnr, $0.1[i].quality.ssim) }.joined() + "\n"
        }
        s += "| **mean** |" + columns.map { String(format: " %.2f | %.4f |", $0.1.mean.psnr, $0.1.mean.ssim) }.joined() + "\n"
        s += "\n\(task.rawValue): \(space) channel, border \(task.metricBorder); \(b) = \(task.scale > 1 ? "MATLAB-style bicubic enlargement of the degraded input" : "the degraded input itself")"
        s += before.isEmpty ? "" : ", before = the unadapted backbone"
        s += ", after = after \(config.steps) steps of \(config.method)."
        return s
    }
}

/// A one-line progress bar with ETA and patches/s on stderr (rank 0).
final class ProgressBar {
    let total: Int, batch: Int
    let started = monotonicSeconds()
    let first: Int
    let tty = isatty(2) != 0

    init(total: Int, start: Int, batch: Int) { self.total = total; self.first = start; self.batch = batch }

    func update(step: Int, loss: Double, lr: Float) {
        let elapsed = monotonicSeconds() - started
        let done = step - first
        let rate = Double(done * batch) / max(elapsed, 1e-9)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - step) : 0
        let width = 30, filled = Int(Double(width) * Double(step) / Double(max(total, 1)))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(format: "[%@] %d/%d loss %.4f lr %.2e %.1f patches/s ETA %.0fs", bar, step, total, loss, Double(lr), rate, eta)
        if tty { FileHandle.standardError.write(Data(("\r" + line).utf8)) }
        else if step == total || step % max(1, total / 20) == 0 { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    func finish() { if tty { FileHandle.standardError.write(Data("\n".utf8)) } }
}

/// A YAML config, strictly: the top level must be a mapping whose keys are `TrainConfig.keys`, each at most once;
/// an unknown key is refused with the closest known one, a value of the wrong type with the value itself.
func decodeConfigYAML(_ text: String) throws -> TrainConfig {
    struct ConfigError: Error, CustomStringConvertible { let description: String }
    let node: Node?
    do { node = try Yams.compose(yaml: text) } catch {
        throw ConfigError(description: "not valid YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
    }
    guard let node else { return TrainConfig() }   // an empty file: the defaults
    guard let mapping = node.mapping else { throw ConfigError(description: "the top level must be a mapping of keys to values (key: value lines)") }
    var seen: [String: Int] = [:]
    var values: [String: Node] = [:]
    for (k, v) in mapping {
        let key = k.string ?? "\(k)"
        let line = (k.mark?.line).map { " (line \($0))" } ?? ""
        if let first = seen[key] {
            throw ConfigError(description: "key '\(key)'\(line) appears twice (first on line \(first)); keep one")
        }
        seen[key] = k.mark?.line ?? 0
        guard TrainConfig.keys.contains(key) else {
            let hint = TrainConfig.suggestion(for: key).map { "; did you mean '\($0)'?" } ?? "; known keys: \(TrainConfig.keys.sorted().joined(separator: ", "))"
            throw ConfigError(description: "unknown key '\(key)'\(line)\(hint)")
        }
        values[key] = v
    }
    do { return try YAMLDecoder().decode(TrainConfig.self, from: text) } catch let DecodingError.typeMismatch(type, context) {
        throw ConfigError(description: fieldMessage(context, expected: "\(type)", values: values))
    } catch let DecodingError.dataCorrupted(context) {
        throw ConfigError(description: fieldMessage(context, expected: nil, values: values))
    } catch let DecodingError.valueNotFound(type, context) {
        throw ConfigError(description: fieldMessage(context, expected: "\(type)", values: values))
    } catch {
        throw ConfigError(description: "not a valid config: \(String(describing: error).split(separator: "\n").first ?? "")")
    }
}

/// "field 'steps': expected a whole number (Int), got 'abc'" from a decoding error's path and the YAML value.
private func fieldMessage(_ context: DecodingError.Context, expected: String?, values: [String: Node]) -> String {
    let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }
    var value: Node? = path.first.flatMap { values[$0] }
    for k in path.dropFirst() { value = value?.mapping?[k] ?? Int(k).flatMap { i in value?.sequence.flatMap { i < $0.count ? $0[i] : nil } } }
    let shown = value.map { v -> String in
        if let s = v.scalar?.string { return "'\(s)'" }
        return v.sequence != nil ? "a list" : v.mapping != nil ? "a mapping" : "\(v)"
    } ?? "nothing"
    let kind: String
    switch expected ?? "" {
    case "Int", "UInt64": kind = "a whole number"
    case "Float", "Double": kind = "a number"
    case "Bool": kind = "true or false"
    case "String": kind = "a string"
    case let t where t.hasPrefix("Array"): kind = "a list"
    case let t where t.hasPrefix("Dictionary"): kind = "a mapping"
    default: kind = expected.map { "a value of type \($0)" } ?? "a valid value"
    }
    return "field '\(path.joined(separator: "."))': expected \(kind), got \(shown)"
}
extension GradientWireType: ExpressibleByArgument {}
