import Foundation

/// The numbers of one `train` run, written by rank 0 to OUTPUT/results.json: what `compare` and scripts read
/// instead of parsing logs. PSNR/SSIM are means over the test images in the task's metric space.
public struct RunResults: Codable, Equatable, Sendable {
    public struct Quality: Codable, Equatable, Sendable {
        public var psnr: Double
        public var ssim: Double
    }

    public var method: String
    public var methodOptions: [String: Double]
    public var preset: String
    public var task: String
    public var lr: Float
    public var seed: UInt64
    public var globalBatch: Int
    public var ranks: Int
    public var threads: Int
    public var trainable = 0
    public var parameters = 0
    /// The steps this process ran: first ..< last (a resumed run starts after 0).
    public var firstStep = 0
    public var lastStep = 0
    /// Wall-clock seconds of this process's training loop (steps, checkpoints, validation).
    public var trainSeconds = 0.0
    /// Peak resident set of each rank's process, bytes.
    public var peakResidentBytes: [Int] = []
    /// Floats and bytes in the gradient allreduce of one step (one flat buffer of the trainable parameters).
    public var floatsReducedPerStep: Int { trainable }
    public var bytesReducedPerStep: Int { trainable * MemoryLayout<Float>.size }
    public var baselineName = ""
    public var baseline: Quality?
    public var before: Quality?
    public var after: Quality?
    public var testImages = 0
    public var finalValidationLoss: Double?

    enum CodingKeys: String, CodingKey {
        case method, preset, task, lr, seed, ranks, threads, trainable, parameters, baseline, before, after
        case methodOptions = "method_options", globalBatch = "global_batch", firstStep = "first_step", lastStep = "last_step"
        case trainSeconds = "train_seconds", peakResidentBytes = "peak_resident_bytes", baselineName = "baseline_name"
        case testImages = "test_images", finalValidationLoss = "final_val_loss"
    }

    public init(config: TrainConfig, method: MethodChoice, ranks: Int) {
        self.method = method.name
        methodOptions = method.options
        preset = config.preset
        task = config.task
        lr = config.lr
        seed = config.seed
        globalBatch = config.globalBatch
        self.ranks = ranks
        threads = config.threads
    }

    public var steps: (Int, Int) {
        get { (firstStep, lastStep) }
        set { (firstStep, lastStep) = newValue }
    }

    public func write(to path: String) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        var data = try e.encode(self)
        data.append(0x0a)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    public static func read(_ path: String) throws -> RunResults {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(file: path, message: "cannot read the run's results") }
        do { return try JSONDecoder().decode(RunResults.self, from: data) } catch {
            throw DataError(file: path, message: "not a results file: \(error)")
        }
    }
}

extension RunResults.Quality {
    public init(_ q: ImageQuality) { self.init(psnr: q.psnr, ssim: q.ssim) }
}
