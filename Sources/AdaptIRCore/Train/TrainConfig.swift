import Foundation

/// Everything a training run is configured with (YAML file keys are these names; command-line options override
/// them). Every rank must hold the same config: the trainer checks that at start.
public struct TrainConfig: Codable, Equatable, Sendable {
    public var preset = "small"
    public var method = "adaptir"
    /// The method's hyper-parameters (`MethodRegistry`); missing ones take the preset's defaults.
    public var methodOptions: [String: Double] = [:]
    public var task = "lr4_noise30"
    /// Packed training patches; empty: `train_dirs` (or the bundled sample photos), packed on first use into `cache`.
    public var trainData = ""
    /// Folder of clean test images (degraded per task); empty: no evaluation.
    public var testData = "datasets/samples/test"
    /// Backbone checkpoint; "auto": `datasets/ipt_<preset>_backbone.h5` when it exists, else a randomly
    /// initialised backbone (with a warning); empty: random (speed tests).
    public var backbone = "auto"
    public var globalBatch = 16
    public var steps = 300
    public var lr: Float = 1e-4
    public var weightDecay: Float = 0.01
    public var milestones: [Double] = [0.5, 0.8, 0.9, 0.95]
    public var gamma: Float = 0.5
    public var seed: UInt64 = 0
    public var syncBN = true
    public var checkpointEvery = 100
    public var output = "runs/small-adaptir-lr4_noise30"
    public var cache = ".cache/adaptir-dist"
    /// OpenBLAS threads per rank.
    public var threads = 1
    /// Patches cut from each bundled training photo when packing them.
    public var patchesPerImage = 64
    /// Packed validation patches (never the test images): the mean L1 loss on them, in eval mode, is written to
    /// `val.csv` every `valEvery` steps, at step 0 and at the end. Empty: no validation.
    public var valData = ""
    public var valEvery = 0
    /// Multi-task training (IPT's pre-training): step s trains task s mod T with that task's head, query and tail,
    /// round robin over these tasks; empty: only `task`.
    public var tasks: [String] = []
    /// Folders of clean training images, packed per task into `cache` when `train_data` is empty; empty: the
    /// bundled sample photos.
    public var trainDirs: [String] = []
    /// How the gradient buffer travels in the allreduce: fp32, fp16 or bf16 (half the bytes; each rank keeps fp32).
    public var gradDtype = GradientWireType.fp32
    /// MiB of fp32 gradient per bucket of the allreduce overlapped with the backward (DDP's `bucket_cap_mb`, 25 there);
    /// 0: one blocking allreduce of the whole buffer after the backward.
    public var bucketMB: Double = 0
    /// MiB of attention probabilities the rank keeps from the forward for the backward (`AttentionMemory`); the
    /// attentions past it recompute theirs in the backward (slower, bit-identical). 0: recompute all.
    public var attentionMemoryMiB = 1024
    /// The values `attentionMemoryMiB` may take (`train` and `bench step` check the same bounds).
    public static let attentionMemoryMiBRange = 0...(1 << 20)

    enum CodingKeys: String, CodingKey, CaseIterable {
        case preset, method, task, backbone, steps, lr, gamma, seed, output, cache, threads, milestones
        case trainData = "train_data", testData = "test_data", globalBatch = "global_batch"
        case weightDecay = "weight_decay", syncBN = "sync_bn", checkpointEvery = "checkpoint_every", methodOptions = "method_options"
        case patchesPerImage = "patches_per_image", valData = "val_data", valEvery = "val_every"
        case tasks, trainDirs = "train_dirs", gradDtype = "grad_dtype", bucketMB = "bucket_mb"
        case attentionMemoryMiB = "attention_memory_mib"
    }

    public init() {}

    /// The keys a YAML config may hold.
    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// Names users reach for that mean a key of ours (PyTorch / BasicSR habits).
    static let aliases: [String: String] = [
        "learning_rate": "lr", "base_lr": "lr", "batch_size": "global_batch", "batch": "global_batch",
        "iterations": "steps", "iters": "steps", "total_iter": "steps", "max_steps": "steps", "wd": "weight_decay",
        "train": "train_data", "test": "test_data", "val": "val_data", "save_dir": "output", "output_dir": "output",
        "checkpoint_freq": "checkpoint_every", "save_checkpoint_freq": "checkpoint_every", "num_threads": "threads",
        "fp16_allreduce": "grad_dtype", "compression": "grad_dtype", "bucket_cap_mb": "bucket_mb",
    ]

    /// The known key closest to an unknown one: an alias, else the nearest by edit distance (at most a third of
    /// the name's length, at least 2); nil when nothing is close.
    public static func suggestion(for key: String) -> String? {
        if let a = aliases[key.lowercased()] { return a }
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var row = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var prev = row[0]
                row[0] = i
                for j in 1...max(b.count, 1) where !b.isEmpty {
                    let cur = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                    prev = cur
                }
            }
            return row[b.count]
        }
        let k = Array(key.lowercased())
        let best = keys.map { ($0, distance(k, Array($0))) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= max(2, key.count / 3) else { return nil }
        return best.0
    }

    /// The photo corpus of `datasets/fetch-photos.sh`: `photos/train` and `photos/test` of the first data folder
    /// (`DataLocations`) whose `photos/COMPLETE` says the script finished and checked every file; nil when none has.
    public static func photoCorpus(_ locations: DataLocations = .current) -> (train: String, test: String)? {
        guard let stamp = locations.find(photoCorpusStamp) else { return nil }
        let root = (stamp as NSString).deletingLastPathComponent
        return ((root as NSString).appendingPathComponent("train"), (root as NSString).appendingPathComponent("test"))
    }

    /// Written by `datasets/fetch-photos.sh` last, after every PNG matched its pinned SHA-256.
    public static let photoCorpusStamp = "photos/COMPLETE"

    /// `adaptir-dist train` with neither `--config` nor `--train-data`: the embedded default, a short demonstration
    /// on the bundled small backbone, 500 steps, trained on the photo corpus (64 patches per photo) and scored on its
    /// test split when `datasets/fetch-photos.sh` has fetched it (`make run` does), else on the four bundled
    /// training photos (256 patches per photo) and the two bundled test photos. The fields above
    /// hold the paper's recipe (spec 4.1: AdamW lr 1e-4, weight decay 0.01), which assumes some 10^5 steps on
    /// DF2K-sized data; in 500 steps lr 1e-4 moves the adapter too little to show anything (measured in
    /// datasets/README.md), so each method runs at its `demoLearningRate` (AdaptIR 1e-2; full fine-tuning keeps the
    /// recipe's 1e-4, it diverges at 1e-2). Options given on the command line still override these.
    public static func embeddedDefault(method: String, corpus: (train: String, test: String)? = photoCorpus()) -> TrainConfig {
        var c = TrainConfig()
        c.method = method
        c.steps = 500
        if let corpus {
            c.trainDirs = [corpus.train]
            c.testData = corpus.test
            c.patchesPerImage = 64
        } else {
            c.patchesPerImage = 256
        }
        if let t = try? MethodRegistry.type(named: method), t.demoLearningRate > 0 { c.lr = t.demoLearningRate }
        return c
    }

    /// The method with its options.
    public var methodChoice: MethodChoice { MethodChoice(method, options: methodOptions) }

    /// The tasks trained: `tasks`, or the single `task`.
    public var trainedTasks: [RestorationTask] { (tasks.isEmpty ? [task] : tasks).compactMap(RestorationTask.init(rawValue:)) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainConfig()
        preset = try c.decodeIfPresent(String.self, forKey: .preset) ?? d.preset
        method = try c.decodeIfPresent(String.self, forKey: .method) ?? d.method
        methodOptions = try c.decodeIfPresent([String: Double].self, forKey: .methodOptions) ?? d.methodOptions
        task = try c.decodeIfPresent(String.self, forKey: .task) ?? d.task
        trainData = try c.decodeIfPresent(String.self, forKey: .trainData) ?? d.trainData
        testData = try c.decodeIfPresent(String.self, forKey: .testData) ?? d.testData
        backbone = try c.decodeIfPresent(String.self, forKey: .backbone) ?? d.backbone
        globalBatch = try c.decodeIfPresent(Int.self, forKey: .globalBatch) ?? d.globalBatch
        steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? d.steps
        lr = try c.decodeIfPresent(Float.self, forKey: .lr) ?? d.lr
        weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? d.weightDecay
        milestones = try c.decodeIfPresent([Double].self, forKey: .milestones) ?? d.milestones
        gamma = try c.decodeIfPresent(Float.self, forKey: .gamma) ?? d.gamma
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        syncBN = try c.decodeIfPresent(Bool.self, forKey: .syncBN) ?? d.syncBN
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? d.checkpointEvery
        output = try c.decodeIfPresent(String.self, forKey: .output) ?? d.output
        cache = try c.decodeIfPresent(String.self, forKey: .cache) ?? d.cache
        threads = try c.decodeIfPresent(Int.self, forKey: .threads) ?? d.threads
        patchesPerImage = try c.decodeIfPresent(Int.self, forKey: .patchesPerImage) ?? d.patchesPerImage
        valData = try c.decodeIfPresent(String.self, forKey: .valData) ?? d.valData
        valEvery = try c.decodeIfPresent(Int.self, forKey: .valEvery) ?? d.valEvery
        tasks = try c.decodeIfPresent([String].self, forKey: .tasks) ?? d.tasks
        trainDirs = try c.decodeIfPresent([String].self, forKey: .trainDirs) ?? d.trainDirs
        bucketMB = try c.decodeIfPresent(Double.self, forKey: .bucketMB) ?? d.bucketMB
        attentionMemoryMiB = try c.decodeIfPresent(Int.self, forKey: .attentionMemoryMiB) ?? d.attentionMemoryMiB
        if let text = try c.decodeIfPresent(String.self, forKey: .gradDtype) {
            guard let w = GradientWireType(rawValue: text) else {
                throw DecodingError.dataCorruptedError(forKey: .gradDtype, in: c, debugDescription:
                    "unknown gradient type '\(text)' (\(GradientWireType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            gradDtype = w
        }
    }

    /// Checks every field; the error names the field and the value.
    public func validate() throws {
        func bad(_ field: String, _ why: String) -> TrainingError { .configuration("config field '\(field)': \(why)") }
        guard let p = Preset.named(preset) else { throw bad("preset", "unknown preset '\(preset)' (\(Preset.all.map(\.name).joined(separator: ", ")))") }
        let m: any AdaptationMethod
        do { m = try MethodRegistry.make(methodChoice, preset: p) } catch {
            throw bad(methodOptions.isEmpty ? "method" : "method_options", "\(error)")
        }
        guard AdaptedIPT.parameterSpecs(preset: p, method: m).contains(where: m.trainsTensor) else {
            throw bad("method", "'\(method)' trains nothing (it is for evaluation); train with one of \(MethodRegistry.names.filter { $0 != method }.joined(separator: ", "))")
        }
        guard RestorationTask(rawValue: task) != nil else {
            throw bad("task", "unknown task '\(task)' (\(RestorationTask.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard globalBatch >= 2 else { throw bad("global_batch", "must be >= 2, got \(globalBatch)") }
        guard steps >= 1 else { throw bad("steps", "must be >= 1, got \(steps)") }
        guard lr.isFinite, lr > 0 else { throw bad("lr", "must be a positive number, got \(lr)") }
        guard weightDecay.isFinite, weightDecay >= 0 else { throw bad("weight_decay", "must be >= 0, got \(weightDecay)") }
        guard milestones.allSatisfy({ $0 > 0 && $0 < 1 }) else { throw bad("milestones", "fractions of the run must be in (0, 1), got \(milestones)") }
        guard gamma.isFinite, gamma > 0, gamma <= 1 else { throw bad("gamma", "must be in (0, 1], got \(gamma)") }
        guard checkpointEvery >= 0 else { throw bad("checkpoint_every", "must be >= 0, got \(checkpointEvery)") }
        guard threads >= 1 else { throw bad("threads", "must be >= 1, got \(threads)") }
        guard patchesPerImage >= 1 else { throw bad("patches_per_image", "must be >= 1, got \(patchesPerImage)") }
        guard !output.isEmpty else { throw bad("output", "must name a folder") }
        guard bucketMB.isFinite, bucketMB >= 0, bucketMB <= 4096 else { throw bad("bucket_mb", "must be in [0, 4096] MiB (0: no buckets), got \(bucketMB)") }
        let memoryRange = Self.attentionMemoryMiBRange
        guard memoryRange.contains(attentionMemoryMiB) else {
            throw bad("attention_memory_mib", "must be in [\(memoryRange.lowerBound), \(memoryRange.upperBound)] MiB (0: recompute every attention's probabilities in the backward), got \(attentionMemoryMiB)")
        }
        guard valEvery >= 0 else { throw bad("val_every", "must be >= 0, got \(valEvery)") }
        guard valEvery == 0 || !valData.isEmpty else { throw bad("val_every", "needs val_data (a packed validation file)") }
        for t in tasks where RestorationTask(rawValue: t) == nil || Degradation.forTask(t) == nil {
            throw bad("tasks", "'\(t)' is not a task with synthetic degradations (\(RestorationTask.allCases.filter { Degradation.forTask($0.rawValue) != nil }.map(\.rawValue).joined(separator: ", ")))")
        }
        guard Set(tasks).count == tasks.count else { throw bad("tasks", "a task is listed twice: \(tasks)") }
        guard tasks.isEmpty || trainData.isEmpty else { throw bad("tasks", "multi-task training packs its data per task from train_dirs; train_data must be empty") }
        guard trainDirs.isEmpty || trainData.isEmpty else { throw bad("train_dirs", "give either train_data (a packed file) or train_dirs (image folders), not both") }
    }

    /// The backbone file to load, or nil for a random backbone. "auto": `ipt_<preset>_backbone.h5` in the bundled
    /// data folder (`DataLocations`: $ADAPTIR_DATA, ./datasets, the install prefix, the executable's checkout).
    public var resolvedBackbone: String? {
        if backbone == "auto" { return DataLocations.current.find("ipt_\(preset)_backbone.h5") }
        return backbone.isEmpty ? nil : backbone
    }

    /// The test folder: as configured, except the default `datasets/samples/test`, which is the bundled
    /// `samples/test` wherever `DataLocations` finds it (an error lists the places when it is nowhere).
    public func resolvedTestData() throws -> String {
        testData == TrainConfig().testData ? try DataLocations.current.locate("samples/test") : testData
    }

    /// Canonical JSON (sorted keys): stored in checkpoints and compared across ranks.
    public var canonicalJSON: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
    }
}
