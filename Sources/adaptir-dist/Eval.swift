import AdaptIRCore
import ArgumentParser
import Foundation

/// Loads a backbone and (optionally) an adapter into a model of the files' preset. The adapter file names its
/// method and every hyper-parameter, so the method is rebuilt from it alone.
func loadModel(backbone: String, adapter: String?) throws -> AdaptedIPT {
    func metadata(_ path: String) throws -> CheckpointMetadata {
        let f = try HDF5File.open(path)
        defer { f.close() }
        return try Checkpoint.metadata(of: f)
    }
    let meta = try metadata(backbone)
    guard let preset = Preset.named(meta.preset) else {
        throw ValidationError("\(backbone): unknown preset '\(meta.preset)'")
    }
    var choice = MethodChoice.frozen
    if let adapter {
        let a = try metadata(adapter)
        guard a.preset == meta.preset else {
            throw ValidationError("\(adapter): adapter of preset '\(a.preset)', the backbone \(backbone) is '\(meta.preset)'")
        }
        choice = MethodChoice(a.method, options: a.methodOptions)
    }
    let model: AdaptedIPT
    do { model = try AdaptedIPT(preset: preset, choice: choice) } catch {
        throw ValidationError("\(adapter ?? backbone): \(error)")
    }
    try Checkpoint.load(backbone, into: model, part: .backbone)
    if let adapter { try Checkpoint.load(adapter, into: model, part: .adapter) }
    model.training = false
    return model
}

/// The task a training checkpoint was trained for (its stored run config), nil for files without one.
func trainedTask(of path: String) -> String? {
    guard let f = try? HDF5File.open(path) else { return nil }
    defer { f.close() }
    guard let text = (try? f.attributeString("config", on: "trainer")) ?? nil,
          let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else { return nil }
    return object["task"] as? String
}

/// The model options `eval` and `restore` share.
struct ModelOptions: ParsableArguments {
    @Option(help: "Backbone checkpoint.") var backbone: String
    @Option(help: "Adapter checkpoint (omit for the bare backbone).") var adapter: String?
    @Option(help: "Task, e.g. lr4_noise30, sr_4, denoise_30 (selects the head, query, tail, scale and metric).") var task: String
    @Option(help: "Threads (intra-op pool; OpenBLAS itself runs single-threaded).") var threads: Int = 1
    @Flag(name: .customLong("allow-task-mismatch"), help: "Use an adapter trained for another task than --task (refused otherwise).")
    var allowTaskMismatch = false
    @Option(name: .customLong("max-pixels"), help: "Refuse an image whose header claims more than this many pixels (width x height), before decoding it; 1...\(maxImagePixelsRange.upperBound).")
    var maxPixels: Int = defaultMaxImagePixels

    func validate() throws {
        guard maxImagePixelsRange.contains(maxPixels) else {
            throw ValidationError("--max-pixels: \(maxPixels) is not in 1...\(maxImagePixelsRange.upperBound)")
        }
    }

    /// The task, with the numeric set-up done and the model loaded.
    func prepare() throws -> (RestorationTask, AdaptedIPT) {
        guard let t = RestorationTask(rawValue: task) else { throw ValidationError("--task: unknown task '\(task)'") }
        if let adapter, let trained = trainedTask(of: adapter), trained != t.rawValue, !allowTaskMismatch {
            throw ValidationError("\(adapter): adapter trained for task '\(trained)', not --task \(t.rawValue) (pass --allow-task-mismatch to use it anyway)")
        }
        Parallel.configure(threads: threads)
        Runtime.flushDenormalsOnThisThread()
        return (t, try loadModel(backbone: backbone, adapter: adapter))
    }
}

/// `adaptir-dist eval`: restore a test folder with the sliding-window chop and report PSNR/SSIM (spec 5.1/5.2).
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a folder of clean test images (degraded as the task prescribes) with IPT's sliding-window chop; PSNR/SSIM table (markdown and CSV) and restored PNGs.")

    @OptionGroup var model: ModelOptions
    @Option(name: .customLong("test-data"), help: "Folder of clean test images.") var testData: String
    @Option(help: "Output folder for restored PNGs, results.md and results.csv.") var output: String = "runs/eval"
    @Option(help: "Seed of the test degradations (noise).") var seed: UInt64 = 0

    func run() throws {
        let (t, model) = try self.model.prepare()
        let evaluator = Evaluator(task: t, seed: seed, maxPixels: self.model.maxPixels)
        let pairs = try evaluator.testPairs(folder: testData) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        let results = try evaluator.evaluate(model: model, pairs: pairs,
                                             outputFolder: (output as NSString).appendingPathComponent("restored"))
        // The plain baseline of the same inputs beside the model (bicubic for SR, the degraded input at scale 1).
        let base = evaluator.baseline(pairs: pairs), b = evaluator.baselineName
        var md = "| image | PSNR \(b) | SSIM \(b) | PSNR | SSIM |\n|---|---|---|---|---|\n", csv = "image,psnr_\(b),ssim_\(b),psnr,ssim\n"
        for (r, q) in zip(results, base) {
            md += String(format: "| %@ | %.2f | %.4f | %.2f | %.4f |\n", r.name, q.quality.psnr, q.quality.ssim, r.quality.psnr, r.quality.ssim)
            csv += String(format: "%@,%.4f,%.6f,%.4f,%.6f\n", r.name, q.quality.psnr, q.quality.ssim, r.quality.psnr, r.quality.ssim)
        }
        md += String(format: "| **mean** | %.2f | %.4f | %.2f | %.4f |\n", base.mean.psnr, base.mean.ssim, results.mean.psnr, results.mean.ssim)
        print(md + "\n\(t.rawValue): \(t.metricOnY ? "Y" : "RGB"), border \(t.metricBorder); \(b) = \(t.scale > 1 ? "MATLAB-style bicubic enlargement of the degraded input" : "the degraded input itself")")
        try Data(md.utf8).write(to: URL(fileURLWithPath: (output as NSString).appendingPathComponent("results.md")), options: .atomic)
        try Data(csv.utf8).write(to: URL(fileURLWithPath: (output as NSString).appendingPathComponent("results.csv")), options: .atomic)
    }
}

/// `adaptir-dist restore`: one degraded image in, the restored PNG out.
struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore one image (already degraded) with a backbone file and an optional adapter file, writing a PNG.")

    @OptionGroup var model: ModelOptions
    @Argument(help: "Input image (PNG, JPEG or BMP).") var input: String
    @Argument(help: "Output PNG.") var output: String

    func validate() throws {
        guard (output as NSString).pathExtension.lowercased() == "png" else {
            throw ValidationError("\(output): restore writes PNG; name the output file .png")
        }
    }

    func run() throws {
        let (t, model) = try self.model.prepare()
        let image = try readImage(input, maxPixels: self.model.maxPixels)
        if let problem = chopSizeProblem(width: image.width, height: image.height) { throw DataError(file: input, message: problem) }
        let y = Evaluator(task: t).restore(image, model: model)
        try writePNG(RGBImage(tensor: y), to: output)
        print("\(output): \(y.shape[2])x\(y.shape[1])")
    }
}
