import AdaptIRCore
import ArgumentParser
import Foundation

/// `adaptir-dist compare`: the paper's main table on the user's backbone, data and machine. Every method adapts the
/// same backbone to one task with the same budget, several seeds each, every run a separate `train` process (under
/// mpirun for more than one rank, so its peak memory is its own); then one table with the bicubic baseline and the
/// unadapted backbone, mean and spread over seeds, time, memory and bytes reduced, and the validation-loss curves.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare adaptation methods on one backbone and task: same budget, several seeds, per-method learning rates; table, CSV and validation-loss plot.",
        discussion: """
            Data: the training images (--train-dir, default the photo corpus of datasets/fetch-photos.sh, \
            datasets/photos/train wherever the bundled data is found) are split by a hash of each file name into training and validation images \
            (--val-percent); the validation patches decide --lr-sweep and give the loss curves; the test folder \
            (default the corpus's test split) is only scored. Runs that finished (OUTPUT/runs/METHOD-seedS/results.json \
            with the same settings) are reused, so an interrupted comparison continues where it stopped. Each run's \
            log is OUTPUT/runs/.../log.txt. Writes OUTPUT/compare.md, runs.csv, val-curves.csv and val-curves.svg \
            (gnuplot); --report copies compare.md (with the plot beside it) elsewhere, e.g. docs/.
            """)

    @Option(help: "Task.") var task: String = "lr4_noise30"
    @Option(help: "Model preset of the backbone.") var preset: String = "small"
    @Option(help: "Comma-separated methods (default: every method that trains).") var methods: String?
    @Option(help: "Comma-separated seeds (method initialisation, data order, augmentation); at least 3 give a spread.") var seeds: String = "0,1,2"
    @Option(help: "Optimisation steps of every run (the same budget for all).") var steps: Int = 300
    @Option(name: .customLong("global-batch")) var globalBatch: Int = 16
    @Option(help: "MPI ranks per run (1: a plain process).") var ranks: Int = 2
    @Option(help: "Threads per rank (intra-op pool; OpenBLAS itself runs single-threaded).") var threads: Int = 1
    @Option(help: "Backbone file ('auto': the bundled one of the preset).") var backbone: String = "auto"
    @Option(name: .customLong("train-dir"), help: "Folder of clean training images (repeatable).") var trainDirs: [String] = []
    @Option(name: .customLong("val-percent"), help: "Percent of the training images held out for validation (by name hash).") var valPercent: Int = 15
    @Option(name: .customLong("test-data"), help: "Folder of clean test images (only scored, never used to choose anything; default: the photo corpus's test split).") var testData: String?

    /// The photo corpus of datasets/fetch-photos.sh where `DataLocations` finds it, else its checkout path (named in
    /// the error when it is missing).
    private var corpus: (train: String, test: String) { TrainConfig.photoCorpus() ?? ("datasets/photos/train", "datasets/photos/test") }
    private var testFolder: String { testData ?? corpus.test }
    @Option(name: .customLong("patches-per-image"), help: "Training patches cut from each training image.") var patchesPerImage: Int = 64
    @Option(name: .customLong("val-every"), help: "Steps between validations.") var valEvery: Int = 25
    @Option(name: .customLong("lr"), help: "A method's learning rate, METHOD=RATE (repeatable); otherwise the sweep's choice or the method's default.") var lrOverrides: [String] = []
    @Option(name: .customLong("lr-sweep"), help: "Comma-separated rates tried per method (seed 0, --sweep-steps); the lowest final validation loss wins.") var lrSweep: String?
    @Option(name: .customLong("sweep-steps"), help: "Steps of a sweep run (default: --steps).") var sweepSteps: Int?
    @Option(help: "Output folder.") var output: String?
    @Option(help: "Also write the report (markdown, plot beside it) to this file, e.g. docs/compare-lr4_noise30.md.") var report: String?
    @Option(help: "The MPI launcher and its options for runs with more than one rank.") var mpirun: String = "mpirun --bind-to none --oversubscribe"

    // MARK: options

    var methodNames: [String] {
        if let methods { return methods.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        guard let p = Preset.named(preset) else { return [] }
        return MethodRegistry.names.filter { (try? Compare.trainsSomething($0, preset: p)) == true }
    }

    var seedList: [UInt64] { seeds.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) } }
    var outputFolder: String { output ?? "runs/compare-\(task)" }

    static func trainsSomething(_ name: String, preset: Preset) throws -> Bool {
        let m = try MethodRegistry.make(MethodChoice(name), preset: preset)
        return AdaptedIPT.parameterSpecs(preset: preset, method: m).contains(where: m.trainsTensor)
    }

    func validate() throws {
        guard let p = Preset.named(preset) else { throw ValidationError("--preset: unknown preset '\(preset)'") }
        guard let t = RestorationTask(rawValue: task), Degradation.forTask(t.rawValue) != nil else {
            throw ValidationError("--task: '\(task)' is not a task with synthetic degradations")
        }
        guard !methodNames.isEmpty else { throw ValidationError("--methods: no method given") }
        for name in methodNames {
            do {
                guard try Compare.trainsSomething(name, preset: p) else { throw ValidationError("--methods: '\(name)' trains nothing; its score is the unadapted row, which is always in the table") }
            } catch let e as ValidationError { throw e } catch { throw ValidationError("--methods: \(error)") }
        }
        guard Set(methodNames).count == methodNames.count else { throw ValidationError("--methods: a method is listed twice") }
        let seedTexts = seeds.split(separator: ",")
        guard !seedTexts.isEmpty, seedList.count == seedTexts.count, Set(seedList).count == seedList.count else {
            throw ValidationError("--seeds: expected distinct whole numbers separated by commas, got '\(seeds)'")
        }
        guard steps >= 1 else { throw ValidationError("--steps must be >= 1, got \(steps)") }
        guard (1...4096).contains(ranks) else { throw ValidationError("--ranks must be in 1...4096, got \(ranks)") }
        guard globalBatch >= 2, globalBatch % ranks == 0 else { throw ValidationError("--global-batch must be >= 2 and a multiple of --ranks (\(ranks)), got \(globalBatch)") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, got \(threads)") }
        guard (1...50).contains(valPercent) else { throw ValidationError("--val-percent must be in 1...50, got \(valPercent)") }
        guard (1...100_000).contains(patchesPerImage) else { throw ValidationError("--patches-per-image must be in 1...100000, got \(patchesPerImage)") }
        guard valEvery >= 1 else { throw ValidationError("--val-every must be >= 1, got \(valEvery)") }
        if let sweepSteps, sweepSteps < 1 { throw ValidationError("--sweep-steps must be >= 1, got \(sweepSteps)") }
        _ = try explicitRates()
        _ = try sweepRates()
    }

    func explicitRates() throws -> [String: Float] {
        var out: [String: Float] = [:]
        for text in lrOverrides {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let r = Float(parts[1]), r.isFinite, r > 0 else {
                throw ValidationError("--lr: expected METHOD=RATE with a positive rate, got '\(text)'")
            }
            guard methodNames.contains(parts[0]) else {
                throw ValidationError("--lr: '\(parts[0])' is not one of the compared methods (\(methodNames.joined(separator: ", ")))")
            }
            out[parts[0]] = r
        }
        return out
    }

    func sweepRates() throws -> [Float] {
        guard let lrSweep else { return [] }
        let rates = lrSweep.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard !rates.isEmpty, rates.allSatisfy({ $0 != nil && $0!.isFinite && $0! > 0 }) else {
            throw ValidationError("--lr-sweep: expected positive rates separated by commas, got '\(lrSweep)'")
        }
        return rates.map { $0! }
    }

    // MARK: run

    func run() throws {
        do { try compare() } catch let e as ValidationError { throw e } catch let e as ExitCode { throw e } catch {
            FileHandle.standardError.write(Data("adaptir-dist compare: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    private func say(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

    private func compare() throws {
        // The runs get the environment as it was before this process initialised MPI (for its own validation
        // pass): a singleton's OMPI_/PMIX_ variables would make the child mpirun fail.
        let environment = ProcessInfo.processInfo.environment
        Parallel.configure(threads: threads)
        Runtime.flushDenormalsOnThisThread()
        let fm = FileManager.default
        let out = outputFolder
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        let p = Preset.named(preset)!, t = RestorationTask(rawValue: task)!
        let backbonePath: String
        if backbone == "auto" {
            guard let b = DataLocations.current.find("ipt_\(preset)_backbone.h5") else {
                throw DataError(file: "ipt_\(preset)_backbone.h5", message: "no bundled backbone of preset \(preset) (\(DataLocations.current.searched("ipt_\(preset)_backbone.h5")))")
            }
            backbonePath = b
        } else { backbonePath = backbone }
        let data = try prepareData(out: out)
        let exe = Compare.executablePath()
        let backboneSHA = try Compare.fileSHA256(backbonePath)

        // The two reference rows, computed once in this process: bicubic and the unadapted backbone.
        let evaluator = Evaluator(task: t, seed: 0)
        let pairs = try evaluator.testPairs(folder: testFolder) { say($0) }
        let frozen = try AdaptedIPT(preset: p, choice: .frozen)
        try Checkpoint.load(backbonePath, into: frozen, part: .backbone)
        let baseline = evaluator.baseline(pairs: pairs)
        let unadapted = try evaluator.evaluate(model: frozen, pairs: pairs)
        let unadaptedVal = try Validator(path: data.val, comm: Communicator.world).loss(model: frozen, task: t.iptTask)
        say(String(format: "references on %d test images: %@ %.2f dB, unadapted backbone %.2f dB (validation L1 %.5f)",
                   pairs.count, evaluator.baselineName, baseline.mean.psnr, unadapted.mean.psnr, unadaptedVal))

        // Learning rates: given, swept on the validation patches, or the method's default.
        let given = try explicitRates(), sweep = try sweepRates()
        var rates: [String: (lr: Float, how: String)] = [:]
        var plan: [(name: String, dir: String, method: String, lr: Float, seed: UInt64, steps: Int, eval: Bool)] = []
        for m in methodNames where given[m] == nil && !sweep.isEmpty {
            for r in sweep {
                plan.append(("sweep \(m) lr \(r)", "\(out)/sweep/\(m)-lr\(r)", m, r, seedList[0], sweepSteps ?? steps, false))
            }
        }
        let sweepCount = plan.count
        let runsTotal = sweepCount + methodNames.count * seedList.count
        say("\(methodNames.count) methods x \(seedList.count) seeds x \(steps) steps at global batch \(globalBatch) on \(ranks) rank(s) x \(threads) thread(s)"
            + (sweepCount > 0 ? ", after \(sweepCount) sweep runs of \(sweepSteps ?? steps) steps" : "") + ": \(runsTotal) runs; output \(out)")
        var done = 0
        var secondsPerStep: Double?
        func execute(_ job: (name: String, dir: String, method: String, lr: Float, seed: UInt64, steps: Int, eval: Bool)) throws -> RunResults {
            done += 1
            let arguments = trainArguments(dir: job.dir, method: job.method, lr: job.lr, seed: job.seed, steps: job.steps,
                                           evaluate: job.eval, data: data, backbone: backbonePath)
            let key = runKey(arguments, backboneSHA: backboneSHA)
            if let r = reusable(dir: job.dir, key: key) {
                say("[\(done)/\(runsTotal)] \(job.name): reused \(job.dir)")
                return r
            }
            if let s = secondsPerStep {
                say(String(format: "[%d/%d] %@ (about %.0f min left)", done, runsTotal, job.name, s * Double(remainingSteps(from: done, sweepCount: sweepCount)) / 60))
            } else { say("[\(done)/\(runsTotal)] \(job.name)") }
            let r = try launch(exe: exe, dir: job.dir, arguments: arguments, environment: environment)
            try Data(key.utf8).write(to: URL(fileURLWithPath: "\(job.dir)/compare-key.txt"), options: .atomic)
            let ms = try medianStepMilliseconds(csv: "\(job.dir)/train.csv")
            secondsPerStep = r.trainSeconds / Double(max(r.lastStep - r.firstStep, 1))
            say(String(format: "    %.0f s, %.0f ms/step, final validation L1 %.5f", r.trainSeconds, ms, r.finalValidationLoss ?? .nan)
                + (r.after.map { String(format: ", test %.2f dB", $0.psnr) } ?? ""))
            return r
        }
        var sweepLog: [String: [(Float, Double)]] = [:]
        for job in plan {
            let r = try execute(job)
            sweepLog[job.method, default: []].append((job.lr, r.finalValidationLoss ?? .infinity))
        }
        for m in methodNames {
            if let r = given[m] { rates[m] = (r, "given") }
            else if let tried = sweepLog[m], let best = tried.min(by: { $0.1 < $1.1 }) {
                rates[m] = (best.0, "sweep (" + tried.map { String(format: "%g: %.5f", $0.0, $0.1) }.joined(separator: ", ") + ")")
            } else { rates[m] = (try MethodRegistry.type(named: m).demoLearningRate, "method default") }
        }
        var results: [String: [(seed: UInt64, r: RunResults, dir: String)]] = [:]
        for m in methodNames {
            for s in seedList {
                let dir = "\(out)/runs/\(m)-seed\(s)"
                let r = try execute(("\(m) seed \(s) lr \(rates[m]!.lr)", dir, m, rates[m]!.lr, s, steps, true))
                results[m, default: []].append((s, r, dir))
            }
        }
        let report = try writeReport(out: out, data: data, backbone: backbonePath, evaluator: evaluator,
                                     baseline: baseline.mean, unadapted: unadapted.mean, unadaptedVal: unadaptedVal,
                                     rates: rates, results: results, testImages: pairs.count)
        say(report.table)
        if let reportPath = self.report {
            let dir = (reportPath as NSString).deletingLastPathComponent
            if !dir.isEmpty { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            let stem = ((reportPath as NSString).lastPathComponent as NSString).deletingPathExtension
            var text = report.markdown
            if fm.fileExists(atPath: "\(out)/val-curves.svg") {
                let svg = (dir.isEmpty ? "" : dir + "/") + stem + "-val-curves.svg"
                try? fm.removeItem(atPath: svg)
                try fm.copyItem(atPath: "\(out)/val-curves.svg", toPath: svg)
                text = text.replacingOccurrences(of: "](val-curves.svg)", with: "](\(stem)-val-curves.svg)")
            }
            try Data(text.utf8).write(to: URL(fileURLWithPath: reportPath), options: .atomic)
            say("report: \(reportPath)")
        }
    }

    private func remainingSteps(from done: Int, sweepCount: Int) -> Int {
        let totalRuns = sweepCount + methodNames.count * seedList.count
        let sweepLeft = max(0, sweepCount - done + 1)
        return sweepLeft * (sweepSteps ?? steps) + (totalRuns - done + 1 - sweepLeft) * steps
    }

    /// SHA-256 of a file's bytes, read in blocks.
    static func fileSHA256(_ path: String) throws -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { throw DataError(file: path, message: "cannot read the backbone") }
        defer { try? h.close() }
        var sha = SHA256()
        while let block = try h.read(upToCount: 1 << 20), !block.isEmpty { sha.update(Array(block)) }
        return sha.finalizeHex()
    }

    /// This binary, so the runs use the same build as the comparison.
    static func executablePath() -> String {
        // A rebuilt binary replaces the file: the link then ends in " (deleted)", and the path names the new build.
        let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return link.hasSuffix(" (deleted)") ? String(link.dropLast(" (deleted)".count)) : link
    }

    // MARK: data

    struct Prepared {
        let train: String, val: String
        let trainImages: [String], valImages: [String]
    }

    /// Splits the training images into training and validation by a hash of the file name (fixed before any
    /// result), links them into two folders and packs both (validation: 16 patches per image, another seed).
    private func prepareData(out: String) throws -> Prepared {
        let fm = FileManager.default
        let dirs = trainDirs.isEmpty ? [corpus.train] : trainDirs
        var images: [(name: String, path: String)] = []
        for d in dirs {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: d, isDirectory: &isDir), isDir.boolValue else {
                let hint = trainDirs.isEmpty ? " (run datasets/fetch-photos.sh for the photo corpus, or pass --train-dir)" : ""
                throw DataError(file: d, message: "no such folder\(hint)")
            }
            for n in try fm.contentsOfDirectory(atPath: d).sorted()
            where ["png", "jpg", "jpeg", "bmp"].contains((n as NSString).pathExtension.lowercased()) {
                if images.contains(where: { $0.name == n }) { throw DataError(file: "\(d)/\(n)", message: "a training image of this name is already in another --train-dir") }
                images.append((n, URL(fileURLWithPath: "\(d)/\(n)").standardizedFileURL.path))
            }
        }
        func held(_ name: String) -> Bool {
            var h = SHA256()
            h.update(Array(name.utf8))
            return Int(h.finalizeHex().prefix(8), radix: 16)! % 100 < valPercent
        }
        let val = images.filter { held($0.name) }, train = images.filter { !held($0.name) }
        guard !val.isEmpty, train.count >= 2 else {
            throw DataError(file: dirs.joined(separator: ", "), message: "\(images.count) images give \(train.count) for training and \(val.count) for validation at --val-percent \(valPercent); need at least 2 and 1")
        }
        // The packed files are named by what went into them, so a changed folder or option packs anew.
        var key = SHA256()
        key.update(Array((images.map(\.path).joined(separator: "\n") + "|\(task)|\(patchesPerImage)|\(valPercent)").utf8))
        let dataDir = "\(out)/data-\(key.finalizeHex().prefix(12))"
        for (sub, list) in [("train-images", train), ("val-images", val)] {
            let folder = "\(dataDir)/\(sub)"
            try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for img in list where (try? fm.destinationOfSymbolicLink(atPath: "\(folder)/\(img.name)")) == nil {
                try fm.createSymbolicLink(atPath: "\(folder)/\(img.name)", withDestinationPath: img.path)
            }
        }
        let trainFile = "\(dataDir)/train.h5", valFile = "\(dataDir)/val.h5"
        for (file, folder, k, seed) in [(trainFile, "train-images", patchesPerImage, UInt64(0)), (valFile, "val-images", 16, UInt64(1))]
        where !fm.fileExists(atPath: file) {
            var o = PackOptions(task: task, input: "\(dataDir)/\(folder)", output: file)
            o.patchesPerImage = k
            o.seed = seed
            let r = try Packer.pack(o)
            say("packed \(r.count) patches of \(folder) -> \(file)")
        }
        say("data: \(train.count) training images, \(val.count) validation images (\(val.map(\.name).joined(separator: ", "))), test folder \(testFolder)")
        return Prepared(train: trainFile, val: valFile, trainImages: train.map(\.name), valImages: val.map(\.name))
    }

    // MARK: runs

    /// The `train` arguments of one run: everything that decides its result (data files, named by their content's
    /// inputs; backbone; budget; rate; seed; ranks are in the results).
    private func trainArguments(dir: String, method: String, lr: Float, seed: UInt64, steps: Int, evaluate: Bool,
                                data: Prepared, backbone: String) -> [String] {
        var args = ["train", "--preset", preset, "--method", method, "--task", task, "--train-data", data.train,
                    "--val-data", data.val, "--val-every", "\(valEvery)", "--backbone", backbone,
                    "--global-batch", "\(globalBatch)", "--steps", "\(steps)", "--lr", "\(lr)", "--seed", "\(seed)",
                    "--threads", "\(threads)", "--checkpoint-every", "0", "--output", dir, "--no-eval-before"]
        args += evaluate ? ["--test-data", testFolder] : ["--no-eval"]
        return args
    }

    /// What decides a run's result: its `train` arguments, the backbone's content and the ranks x threads.
    private func runKey(_ arguments: [String], backboneSHA: String) -> String {
        arguments.joined(separator: " ") + "\nbackbone sha256 \(backboneSHA)\nranks \(ranks) threads \(threads)\n"
    }

    /// A finished run in `dir` with exactly this key (its compare-key.txt), if there is one.
    private func reusable(dir: String, key: String) -> RunResults? {
        guard (try? String(contentsOfFile: "\(dir)/compare-key.txt", encoding: .utf8)) == key,
              let r = try? RunResults.read("\(dir)/results.json"), r.firstStep == 0 else { return nil }
        return r
    }

    private func launch(exe: String, dir: String, arguments args: [String], environment: [String: String]) throws -> RunResults {
        let fm = FileManager.default
        try? fm.removeItem(atPath: dir)   // a run that did not finish starts again
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var command: [String]
        if ranks > 1 {
            command = mpirun.split(separator: " ").map(String.init) + ["-n", "\(ranks)", "-x", "OPENBLAS_NUM_THREADS=1", exe] + args
        } else { command = [exe] + args }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        var env = environment
        env["OPENBLAS_NUM_THREADS"] = "1"   // the runs thread with --threads (Parallel), not OpenBLAS
        process.environment = env
        let logPath = "\(dir)/log.txt"
        _ = fm.createFile(atPath: logPath, contents: Data((command.joined(separator: " ") + "\n").utf8))
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        try ChildProcess.shared.run(process)
        try? log.close()
        if ChildProcess.shared.interrupted {
            throw DataError(file: dir, message: "interrupted by a signal during this run; run the same command again to continue (finished runs are reused)")
        }
        guard process.terminationStatus == 0 else {
            let tail = (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").suffix(3).joined(separator: " | ") ?? ""
            throw DataError(file: logPath, message: "the run exited with status \(process.terminationStatus): \(tail)")
        }
        return try RunResults.read("\(dir)/results.json")
    }

    /// The median over a run's steps (train.csv) of its time columns: forward, backward, wait, scan, allreduce and
    /// optimizer milliseconds (found by name, so CSVs of older versions without wait/scan read too).
    private func medianStepMilliseconds(csv: String) throws -> Double {
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        guard let header = lines.first?.split(separator: ",").map(String.init) else { return .nan }
        let columns = ["forward_ms", "backward_ms", "wait_ms", "scan_ms", "allreduce_ms", "optimizer_ms"].compactMap { header.firstIndex(of: $0) }
        let ms = lines.dropFirst().compactMap { row -> Double? in
            let f = row.split(separator: ",")
            guard f.count == header.count else { return nil }
            var sum = 0.0
            for c in columns { guard let v = Double(f[c]) else { return nil }; sum += v }
            return sum
        }.sorted()
        return ms.isEmpty ? .nan : ms[ms.count / 2]
    }

    // MARK: report

    private func meanSD(_ xs: [Double]) -> (Double, Double) {
        let m = xs.reduce(0, +) / Double(max(xs.count, 1))
        let v = xs.count > 1 ? xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1) : 0
        return (m, v.squareRoot())
    }

    private func validationCurve(_ dir: String) -> [(Int, Double)] {
        guard let text = try? String(contentsOfFile: "\(dir)/val.csv", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let f = line.split(separator: ",")
            guard f.count == 2, let s = Int(f[0]), let v = Double(f[1]) else { return nil }
            return (s, v)
        }
    }

    private func writeReport(out: String, data: Prepared, backbone: String, evaluator: Evaluator,
                             baseline: ImageQuality, unadapted: ImageQuality, unadaptedVal: Double,
                             rates: [String: (lr: Float, how: String)],
                             results: [String: [(seed: UInt64, r: RunResults, dir: String)]], testImages: Int) throws -> (table: String, markdown: String) {
        struct Row { let name: String; let psnr: (Double, Double); let ssim: (Double, Double); let val: (Double, Double)
                     let trainable: Int; let parameters: Int; let msPerStep: Double; let seconds: Double; let peakGiB: Double; let bytes: Int }
        var rows: [Row] = []
        var csv = "method,seed,lr,trainable,psnr,ssim,final_val_loss,train_seconds,median_step_ms,peak_rss_gib_max_rank,bytes_reduced_per_step\n"
        for m in methodNames {
            let runs = results[m] ?? []
            var stepMs: [Double] = []
            for (s, r, dir) in runs {
                let ms = try medianStepMilliseconds(csv: "\(dir)/train.csv")
                stepMs.append(ms)
                csv += String(format: "%@,%llu,%g,%d,%.4f,%.6f,%.6f,%.1f,%.1f,%.3f,%d\n", m, s, Double(r.lr), r.trainable, r.after?.psnr ?? .nan,
                              r.after?.ssim ?? .nan, r.finalValidationLoss ?? .nan, r.trainSeconds, ms,
                              Double(r.peakResidentBytes.max() ?? 0) / 1_073_741_824, r.bytesReducedPerStep)
            }
            let rs = runs.map(\.r)
            rows.append(Row(name: m, psnr: meanSD(rs.map { $0.after?.psnr ?? .nan }), ssim: meanSD(rs.map { $0.after?.ssim ?? .nan }),
                            val: meanSD(rs.map { $0.finalValidationLoss ?? .nan }), trainable: rs.first?.trainable ?? 0,
                            parameters: rs.first?.parameters ?? 0, msPerStep: meanSD(stepMs).0, seconds: meanSD(rs.map(\.trainSeconds)).0,
                            peakGiB: Double(rs.flatMap(\.peakResidentBytes).max() ?? 0) / 1_073_741_824, bytes: rs.first?.bytesReducedPerStep ?? 0))
        }
        try Data(csv.utf8).write(to: URL(fileURLWithPath: "\(out)/runs.csv"), options: .atomic)
        // How much of each method's validation-loss drop came in the last fifth of the run (mean curve over seeds): a
        // large share means the loss was still falling when the budget ended.
        // Validation curves: mean over seeds per method (read once; also the columns of val-curves.csv).
        var curves: [String: [Int: Double]] = [:]
        for m in methodNames {
            var sum: [Int: (Double, Int)] = [:]
            for run in results[m] ?? [] { for (s, v) in validationCurve(run.dir) { sum[s, default: (0, 0)].0 += v; sum[s, default: (0, 0)].1 += 1 } }
            curves[m] = sum.mapValues { $0.0 / Double($0.1) }
        }
        var lateShare: [String: Double] = [:]
        for m in methodNames {
            let curve = curves[m] ?? [:]
            guard let first = curve[0], let lastStep = curve.keys.max(), let last = curve[lastStep],
                  let mark = curve.keys.filter({ Double($0) <= 0.8 * Double(lastStep) }).max(), let atMark = curve[mark] else { continue }
            lateShare[m] = first - last > 0 ? (atMark - last) / (first - last) : .nan
        }
        let ranked = rows.sorted { $0.psnr.0 > $1.psnr.0 }
        let b = evaluator.baselineName
        var table = "| rank | method | trained params (% of model) | lr (how chosen) | PSNR mean ± sd | SSIM mean ± sd | gain over unadapted (dB) | final val L1 mean ± sd | val drop in last 20 % of steps | ms/step (median) | train s/run | peak GiB/rank | allreduce bytes/step | paper Set5 |\n"
        table += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        table += String(format: "| – | %@ (no model) | 0 | – | %.2f | %.4f | %+.2f | – | – | – | – | – | – | – |\n", b, baseline.psnr, baseline.ssim, baseline.psnr - unadapted.psnr)
        let paperFrozen = (try? MethodRegistry.type(named: MethodChoice.frozen.name).paperLR4Noise30Set5) ?? nil
        table += String(format: "| – | unadapted backbone | 0 | – | %.2f | %.4f | 0.00 | %.5f | – | – | – | – | – | %@ |\n", unadapted.psnr, unadapted.ssim, unadaptedVal,
                        paperFrozen.map { String(format: "%.2f", $0) } ?? "–")
        for (i, r) in ranked.enumerated() {
            let paper = (try? MethodRegistry.type(named: r.name).paperLR4Noise30Set5) ?? nil
            let rate = rates[r.name]!
            let late = lateShare[r.name].map { $0.isNaN ? "no drop" : String(format: "%.0f %%", 100 * $0) } ?? "–"
            table += String(format: "| %d | %@ | %@ (%.3f%%) | %g (%@) | %.2f ± %.2f | %.4f ± %.4f | %+.2f | %.5f ± %.5f | %@ | %.0f | %.0f | %.2f | %@ | %@ |\n",
                            i + 1, r.name, r.trainable.formatted(), 100 * Double(r.trainable) / Double(max(r.parameters, 1)), Double(rate.lr), rate.how,
                            r.psnr.0, r.psnr.1, r.ssim.0, r.ssim.1, r.psnr.0 - unadapted.psnr, r.val.0, r.val.1, late, r.msPerStep, r.seconds, r.peakGiB,
                            r.bytes.formatted(), paper.map { String(format: "%.2f", $0) } ?? "–")
        }
        // Ordering here and in the paper (parameter-efficient methods that have a paper row; full fine-tuning apart).
        let withPaper = ranked.compactMap { r -> (String, Double)? in
            guard let t = try? MethodRegistry.type(named: r.name), let v = t.paperLR4Noise30Set5,
                  let m = try? MethodRegistry.make(MethodChoice(r.name), preset: Preset.named(preset)!),
                  !AdaptedIPT.parameterSpecs(preset: Preset.named(preset)!, method: m).contains(where: { $0.owner == .backbone && m.trainsTensor($0) })
            else { return nil }
            return (r.name, v)
        }
        let hereOrder = withPaper.map(\.0)
        let paperOrder = withPaper.sorted { $0.1 > $1.1 }.map(\.0)
        let ordering = "Ordering of the parameter-efficient methods that the paper also reports, by mean PSNR here: "
            + hereOrder.joined(separator: " > ") + "; in the paper (LR4&Noise30, Set5, spec 6.1): " + paperOrder.joined(separator: " > ") + "."

        // One column per method, the unadapted loss as a reference.
        let curveSteps = Set(curves.values.flatMap(\.keys))
        var curveCSV = "step," + methodNames.joined(separator: ",") + ",unadapted\n"
        for s in curveSteps.sorted() {
            curveCSV += "\(s)," + methodNames.map { curves[$0]?[s].map { String(format: "%.6f", $0) } ?? "" }.joined(separator: ",") + String(format: ",%.6f\n", unadaptedVal)
        }
        try Data(curveCSV.utf8).write(to: URL(fileURLWithPath: "\(out)/val-curves.csv"), options: .atomic)
        let plotted = plot(out: out, columns: methodNames.count + 1)

        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        let memGiB = Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824
        var md = "# Adaptation methods compared: \(task), preset \(preset)\n\n"
        md += "Written by `adaptir-dist compare` on \(ISO8601DateFormatter().string(from: Date())).\n\n"
        md += "- Command: `adaptir-dist " + CommandLine.arguments.dropFirst().joined(separator: " ") + "`\n"
        md += String(format: "- Machine: %@, %d cores, %.0f GiB; every run: %d MPI rank(s) x %d OpenBLAS thread(s) (`%@`), one run at a time\n",
                     cpu, ProcessInfo.processInfo.activeProcessorCount, memGiB, ranks, threads, ranks > 1 ? mpirun : "no mpirun")
        let cwd = FileManager.default.currentDirectoryPath + "/"
        let shownBackbone = backbone.hasPrefix(cwd) ? String(backbone.dropFirst(cwd.count)) : backbone
        md += "- Backbone: `\(shownBackbone)` (preset \(preset), SHA-256 \((try? Compare.fileSHA256(backbone))?.prefix(16) ?? "?")...); budget: \(steps) steps at global batch \(globalBatch) for every method, AdamW, weight decay 0.01, lr halved at 50/80/90/95 % of the run; seeds \(seeds)\n"
        md += "- Data: \(data.trainImages.count) training images (\(patchesPerImage) patches each), \(data.valImages.count) validation images held out by name hash (\(data.valImages.joined(separator: ", "))), scored on \(testImages) test images of `\(testFolder)` that choose nothing\n"
        md += "- PSNR/SSIM: \(evaluator.task.metricOnY ? "Y channel" : "RGB"), border \(evaluator.task.metricBorder), means over the test images; mean ± sample standard deviation over the seeds. Val drop in last 20 %: the share of the method's validation-loss drop (mean curve) that came in the last fifth of the steps, a large share means the loss was still falling when the budget ended. ms/step: median of forward + backward + wait + scan + allreduce + optimizer; train s/run: the whole loop with validations; peak GiB/rank: the largest peak resident set of any rank of any seed\n\n"
        md += table + "\n" + ordering + "\n\n"
        md += plotted ? "![validation L1 loss per step, mean over seeds](val-curves.svg)\n\n" : "(No plot: gnuplot was not found; the curves are in val-curves.csv.)\n\n"
        md += "Per run: `runs.csv`; curves: `val-curves.csv`; logs: `runs/METHOD-seedS/log.txt` under `\(out)`.\n"
        try Data(md.utf8).write(to: URL(fileURLWithPath: "\(out)/compare.md"), options: .atomic)
        return (table + "\n" + ordering, md)
    }

    /// Draws val-curves.csv into val-curves.svg with gnuplot; false when gnuplot is missing or fails.
    private func plot(out: String, columns: Int) -> Bool {
        let script = """
            set terminal svg size 900,560 dynamic font 'sans,12'
            set output '\(out)/val-curves.svg'
            set datafile separator ','
            set key outside right top noenhanced
            set xlabel 'step'
            set ylabel 'validation L1 loss (mean over seeds)'
            set grid
            plot for [i=2:\(columns + 1)] '\(out)/val-curves.csv' using 1:i with linespoints pointsize 0.5 title columnheader(i)
            """
        return runGnuplot(script, scriptPath: "\(out)/val-curves.gp")
    }
}

/// The run `compare` is waiting for. SIGINT/SIGTERM to `compare` are passed on to it (mpirun forwards them to the
/// ranks, which checkpoint and exit), so stopping the comparison never leaves a training job behind.
final class ChildProcess: @unchecked Sendable {
    static let shared = ChildProcess()
    private let lock = NSLock()
    private var current: Process?
    private var sources: [DispatchSourceSignal] = []
    private var stopped = false

    var interrupted: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    func run(_ process: Process) throws {
        lock.lock()
        if sources.isEmpty {
            for sig in [SIGINT, SIGTERM] {
                signal(sig, SIG_IGN)
                let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                s.setEventHandler { [weak self] in self?.interrupt() }
                s.resume()
                sources.append(s)
            }
        }
        let already = stopped
        if !already { current = process }
        lock.unlock()
        if already { return }
        try process.run()
        process.waitUntilExit()
        lock.lock(); current = nil; lock.unlock()
    }

    private func interrupt() {
        lock.lock(); stopped = true; let p = current; lock.unlock()
        if let p, p.isRunning { p.terminate() }
    }
}
