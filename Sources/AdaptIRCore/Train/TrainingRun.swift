import Foundation

/// Where a rank's training batches come from: the local batch of a global step. Implementations must be
/// deterministic in the step (resume replays the same data) and give every rank its own disjoint part.
public protocol BatchSource: AnyObject {
    func batch(forStep step: Int) throws -> (lq: Tensor, gt: Tensor)
    /// The IPT task of a step when it varies (multi-task pre-training); nil keeps the trainer's task.
    func task(forStep step: Int) -> Int?
}

extension BatchSource {
    public func task(forStep step: Int) -> Int? { nil }
}

/// Multi-task batches (IPT pre-training): step s trains task s mod T on batch s div T of that task's source.
public final class RoundRobinTasks: BatchSource {
    public let sources: [(task: Int, source: BatchSource)]

    public init(_ sources: [(task: Int, source: BatchSource)]) {
        precondition(!sources.isEmpty, "RoundRobinTasks needs at least one task")
        self.sources = sources
    }

    public func batch(forStep step: Int) throws -> (lq: Tensor, gt: Tensor) {
        try sources[step % sources.count].source.batch(forStep: step / sources.count)
    }

    public func task(forStep step: Int) -> Int? { sources[step % sources.count].task }
}

/// SIGTERM / SIGINT request a clean stop: the current step finishes, a checkpoint is written, the run ends with
/// success. The flag is agreed across ranks every step, so all ranks stop after the same step.
public final class StopRequest: @unchecked Sendable {
    public static let shared = StopRequest()
    private let lock = NSLock()
    private var requested = false
    private var sources: [DispatchSourceSignal] = []

    public var isRequested: Bool { lock.lock(); defer { lock.unlock() }; return requested }

    public func request() { lock.lock(); requested = true; lock.unlock() }

    /// Clears a handled request (tests run several stops in one process).
    public func reset() { lock.lock(); requested = false; lock.unlock() }

    /// Routes SIGTERM and SIGINT to `request()` instead of killing the process.
    public func installSignalHandlers() {
        lock.lock(); defer { lock.unlock() }
        guard sources.isEmpty else { return }
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [weak self] in self?.request() }
            s.resume()
            sources.append(s)
        }
    }
}

/// Options of a training run (what the CLI's flags and config file set).
public struct TrainingRunOptions {
    public var steps: Int
    public var checkpointEvery: Int
    /// Folder for checkpoints and the CSV log (rank 0 writes).
    public var outputDirectory: String
    /// The run's configuration text, stored in every checkpoint.
    public var configText: String = ""
    public var dataSeed: UInt64 = 0
    /// Seconds a rank may wait for the others at the start of a step or at any collective of the loop before the
    /// job is ended with a report of the late ranks (0: no watchdog).
    public var watchdogSeconds: Double = 300
    /// Called on rank 0 after every step (progress bar, logs).
    public var onStep: ((StepStats) -> Void)? = nil
    /// Validation (every rank calls it, a collective): before the first step, every `validateEvery` steps and
    /// after the last; rank 0 appends (step, loss) to `val.csv`, where step counts the steps done.
    public var validator: Validator? = nil
    public var validateEvery = 0

    public init(steps: Int, checkpointEvery: Int, outputDirectory: String) {
        self.steps = steps
        self.checkpointEvery = checkpointEvery
        self.outputDirectory = outputDirectory
    }

    public var checkpointPath: String { (outputDirectory as NSString).appendingPathComponent("checkpoint.h5") }
    public var csvPath: String { (outputDirectory as NSString).appendingPathComponent("train.csv") }
    public var validationCSVPath: String { (outputDirectory as NSString).appendingPathComponent("val.csv") }
}

/// The training loop around `Trainer`: steps until `steps` (continuing from the trainer's step after a resume),
/// agreed stop requests, rank-0 checkpoints every `checkpointEvery` steps and at the end, and a CSV of step, loss,
/// lr, patches/s, forward/backward/allreduce/optimizer milliseconds and bytes reduced.
public final class TrainingRun {
    public let trainer: Trainer
    public let source: BatchSource
    public let options: TrainingRunOptions
    /// Why the run ended.
    public enum Outcome: Equatable { case finished, stopped(atStep: Int) }

    public init(trainer: Trainer, source: BatchSource, options: TrainingRunOptions) {
        self.trainer = trainer
        self.source = source
        self.options = options
    }

    /// wait_ms: the loss/flag allreduce right after the backward (it absorbs the wait for the slowest rank); scan_ms:
    /// the non-finite scan of the gradients; allreduce_ms: the gradient allreduce and its 1/p scaling only.
    public static let csvHeader = "step,loss,lr,patches_per_s,forward_ms,backward_ms,wait_ms,scan_ms,allreduce_ms,optimizer_ms,bytes_reduced"
    public static let validationCSVHeader = "step,val_loss"

    /// A resumed run continues the CSV of the run it resumes; rows of steps at or after the checkpoint's (steps the
    /// stopped run finished after its last checkpoint, which are run again) are dropped, so every step has one row.
    static func dropRows(ofCSV path: String, fromStep step: Int) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        let before = lines.count
        lines.removeAll { line in
            guard let first = line.split(separator: ",", maxSplits: 1).first, let s = Int(first) else { return false }
            return s >= step
        }
        if lines.count != before {
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        }
    }

    /// A CSV log for appending: new (header only) for a run from step 0, else the resumed run's file without the
    /// rows of steps it will run again.
    private func openLog(_ path: String, header: String) throws -> FileHandle {
        if trainer.step == 0 || !FileManager.default.fileExists(atPath: path) {
            try Data((header + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } else {
            try TrainingRun.dropRows(ofCSV: path, fromStep: trainer.step)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        return handle
    }

    public func run() throws -> Outcome {
        let comm = trainer.comm
        let root = comm.isRoot
        var csv: FileHandle?, valCSV: FileHandle?
        if root {
            try FileManager.default.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
            csv = try openLog(options.csvPath, header: TrainingRun.csvHeader)
            // A resumed run validates again at its first validation step; rows from there on are the stopped run's.
            if options.validator != nil { valCSV = try openLog(options.validationCSVPath, header: TrainingRun.validationCSVHeader) }
        }
        defer { try? csv?.close(); try? valCSV?.close() }
        func validate() throws {
            guard let v = options.validator else { return }
            let loss = try v.loss(model: trainer.model, task: trainer.task)
            valCSV?.write(Data(String(format: "%d,%.6f\n", trainer.step, loss).utf8))
        }
        if trainer.step == 0 || (options.validateEvery > 0 && trainer.step % options.validateEvery == 0) { try validate() }
        // The watchdog guards every collective of the loop (sync batch norm, loss, gradients, stop flag, the barrier
        // after a checkpoint), not only the start of a step: a rank stalled inside a step would otherwise hang the
        // others in the next allreduce.
        let watchdogBefore = comm.watchdogSeconds
        comm.watchdogSeconds = options.watchdogSeconds
        defer { comm.watchdogSeconds = watchdogBefore }
        while trainer.step < options.steps {
            comm.watchdogStep = trainer.step
            if options.watchdogSeconds > 0 {
                do { try comm.rendezvous(tag: trainer.step, timeout: comm.watchdogDeadline(options.watchdogSeconds)) }
                catch let stall as StallError { comm.endJob(for: stall) }
            }
            let t0 = monotonicSeconds()
            let (lq, gt) = try source.batch(forStep: trainer.step)
            if let t = source.task(forStep: trainer.step) { trainer.task = t }
            let stats = try trainer.trainStep(lq: lq, gt: gt)
            let seconds = monotonicSeconds() - t0
            let rate = Double(trainer.globalBatch) / seconds
            if let csv {
                let row = String(format: "%d,%.6f,%.6g,%.2f,%.1f,%.1f,%.2f,%.2f,%.2f,%.2f,%d", stats.step, stats.loss, Double(stats.lr), rate,
                                 stats.forwardSeconds * 1e3, stats.backwardSeconds * 1e3, stats.waitSeconds * 1e3, stats.scanSeconds * 1e3,
                                 stats.allreduceSeconds * 1e3, stats.optimizerSeconds * 1e3, stats.bytesReduced)
                csv.write(Data((row + "\n").utf8))
            }
            if root { options.onStep?(stats) }
            if (options.validateEvery > 0 && trainer.step % options.validateEvery == 0) || trainer.step == options.steps { try validate() }
            let stop = try comm.allreduceMax(Int64(StopRequest.shared.isRequested ? 1 : 0)) > 0
            let due = options.checkpointEvery > 0 && trainer.step % options.checkpointEvery == 0
            if stop || due || trainer.step == options.steps {
                if root { try TrainingCheckpoint.save(trainer, to: options.checkpointPath, config: options.configText, dataSeed: options.dataSeed) }
                try comm.barrier()
            }
            if stop { return .stopped(atStep: trainer.step) }
        }
        return .finished
    }
}
