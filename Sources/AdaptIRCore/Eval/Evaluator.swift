import Foundation

extension RGBImage {
    /// CHW float tensor in [0, 1]: [3, height, width].
    public func tensor() -> Tensor {
        let t = Tensor(uninitialized: [3, height, width])
        let p = t.data, hw = width * height
        pixels.withUnsafeBufferPointer { px in
            for i in 0..<hw { for c in 0..<3 { p[c * hw + i] = Float(px[3 * i + c]) / 255 } }
        }
        return t
    }

    /// From a CHW tensor in [0, 1] (clamped, x255, rounded half to even like the metrics' uint8 conversion).
    public init(tensor t: Tensor) {
        precondition(t.rank == 3 && t.shape[0] == 3, "RGBImage(tensor:) needs [3, H, W], got \(t.shape)")
        let h = t.shape[1], w = t.shape[2], hw = h * w
        var px = [UInt8](repeating: 0, count: 3 * hw)
        let p = t.data
        for i in 0..<hw {
            for c in 0..<3 { px[3 * i + c] = UInt8((min(max(p[c * hw + i], 0), 1) * 255).rounded(.toNearestOrEven)) }
        }
        self.init(width: w, height: h, pixels: px)
    }
}

/// One test image's result.
public struct ImageResult: Sendable {
    public let name: String
    public let quality: ImageQuality

    public init(name: String, quality: ImageQuality) {
        self.name = name
        self.quality = quality
    }
}

/// Restores a folder of clean test images with IPT's sliding-window chop and scores them (spec 5.1/5.2): each
/// image is cropped to a multiple of the scale, degraded as the task prescribes (a fixed seed per image name, so
/// every run and every rank count sees the same inputs), restored, and compared in the task's metric space.
public struct Evaluator {
    public let task: RestorationTask
    public let seed: UInt64
    public let batchSize: Int
    /// The limit on a test image's width * height (`readImage`).
    public let maxPixels: Int

    public init(task: RestorationTask, seed: UInt64 = 0, batchSize: Int = 16, maxPixels: Int = defaultMaxImagePixels) {
        self.task = task
        self.seed = seed
        self.batchSize = batchSize
        self.maxPixels = maxPixels
    }

    /// The test inputs: (name, degraded LQ, clean GT) for every PNG/JPEG/BMP image of `folder`, sorted by name.
    ///
    /// An image whose LQ is smaller than the restoration's 48x48 window (`chopSizeProblem`) is skipped, with one
    /// `warn` line naming it and its sizes, and the others are scored: IPT's protocol has no padding rule, and a
    /// reflect-padded image would be scored mostly on mirrored pixels, so its PSNR would not be comparable. Throws
    /// when the folder has no image, or no image large enough.
    public func testPairs(folder: String, warn: (String) -> Void) throws -> [(name: String, lq: RGBImage, gt: RGBImage)] {
        guard let degradation = Degradation.forTask(task.rawValue) else {
            throw DataError(file: folder, message: "task \(task.rawValue) needs paired test data, not clean images")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataError(file: folder, message: "no such test folder")
        }
        guard let listing = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw DataError(file: folder, message: "cannot list the test folder: \(String(cString: strerror(errno)))")
        }
        let names = listing
            .filter { ["png", "jpg", "jpeg", "bmp"].contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
        guard !names.isEmpty else { throw DataError(file: folder, message: "no test images (png, jpg, bmp)") }
        var pairs: [(name: String, lq: RGBImage, gt: RGBImage)] = []
        for name in names {
            let path = (folder as NSString).appendingPathComponent(name)
            let image = try readImage(path, maxPixels: maxPixels)
            let gt = image.modCropped(task.scale)
            let lqWidth = gt.width / task.scale, lqHeight = gt.height / task.scale
            if let problem = chopSizeProblem(width: lqWidth, height: lqHeight) {
                let what = task.scale > 1 ? "image \(image.width)x\(image.height), its x\(task.scale) LQ " : ""
                warn("warning: \(path): skipped: \(what)\(problem)")
                continue
            }
            var rng = SplitMix64(seed: seed, stream: name)
            pairs.append((name, try degradation.apply(gt, rng: &rng), gt))
        }
        guard !pairs.isEmpty else {
            let lq = task.scale > 1 ? " at their x\(task.scale) LQ size" : ""
            throw DataError(file: folder, message: "no test image is large enough: all \(names.count) are smaller than the 48x48 window\(lq)")
        }
        return pairs
    }

    /// Restores `lq` with `model` (eval mode, no graph): [3, h*s, w*s] in [0, 1] (not clamped).
    public func restore(_ lq: RGBImage, model: AdaptedIPT) -> Tensor {
        let wasTraining = model.training
        model.training = false
        defer { model.training = wasTraining }
        return Autograd.withoutGrad {
            forwardChop(lq.tensor(), scale: task.scale, batchSize: batchSize) { model($0, task: task.iptTask) }
        }
    }

    /// The plain baseline of every pair, scored like a restoration: MATLAB bicubic enlargement of the LQ image for
    /// SR tasks (the "Bicubic" row of SR papers), the degraded input itself for tasks at scale 1.
    public func baseline(pairs: [(name: String, lq: RGBImage, gt: RGBImage)]) -> [ImageResult] {
        pairs.map { pair in
            let up = matlabBicubicUpscale(pair.lq, by: task.scale)
            let q = psnrSSIM(output: chwToHWC(up.tensor()), target: chwToHWC(pair.gt.tensor()), yChannel: task.metricOnY, border: task.metricBorder)
            return ImageResult(name: pair.name, quality: q)
        }
    }

    /// What `baseline` is called in tables: "bicubic" for SR tasks, "input" at scale 1.
    public var baselineName: String { task.scale > 1 ? "bicubic" : "input" }

    /// Scores every pair; writes the restored PNGs into `outputFolder` when given.
    public func evaluate(model: AdaptedIPT, pairs: [(name: String, lq: RGBImage, gt: RGBImage)],
                         outputFolder: String? = nil) throws -> [ImageResult] {
        if let outputFolder { try FileManager.default.createDirectory(atPath: outputFolder, withIntermediateDirectories: true) }
        return try pairs.map { pair in
            let y = restore(pair.lq, model: model)
            if let outputFolder {
                let base = ((pair.name as NSString).deletingPathExtension as NSString).appendingPathExtension("png")!
                try writePNG(RGBImage(tensor: y), to: (outputFolder as NSString).appendingPathComponent(base))
            }
            let q = psnrSSIM(output: chwToHWC(y), target: chwToHWC(pair.gt.tensor()), yChannel: task.metricOnY, border: task.metricBorder)
            return ImageResult(name: pair.name, quality: q)
        }
    }
}

extension Array where Element == ImageResult {
    /// The mean PSNR and SSIM over the images (0 for none).
    public var mean: ImageQuality {
        guard !isEmpty else { return ImageQuality(psnr: 0, ssim: 0) }
        return ImageQuality(psnr: map(\.quality.psnr).reduce(0, +) / Double(count), ssim: map(\.quality.ssim).reduce(0, +) / Double(count))
    }
}
