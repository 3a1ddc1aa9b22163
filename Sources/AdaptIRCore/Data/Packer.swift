import Foundation

/// What `pack` does for a task name: the scale, where LQ comes from, and the per-patch degradation.
public struct PackTask: Sendable, Equatable {
    public let name: String
    /// GT/LQ size ratio (1 for denoising, deraining, low light).
    public let scale: Int
    /// Whether LQ images must come from files (rain, low light, `pairs`); SR tasks use official LR files when the
    /// layout has them and otherwise the MATLAB bicubic downscale.
    public let paired: Bool
    /// Gaussian noise sigma (0..255 scale) added to each LQ patch, then clip and truncation to uint8.
    public let noiseSigma: Float?
    /// JPEG quality applied to each LQ patch (R and B swapped as the paper's OpenCV code does).
    public let jpegQuality: Int?

    /// The synthetic degradation of the task (`Degradation.forTask`), nil for paired tasks.
    public var degradation: Degradation? { Degradation.forTask(name) }

    /// Parses the synthetic tasks of `Degradation.forTask` (`sr_2|3|4`, `lr4_noise30`, `lr4_jpeg30`,
    /// `denoise_<sigma>`, `jpeg_<q>`, `lr<s>_noise<sigma>`, `lr<s>_jpeg<q>`) and the paired tasks `derain_l`,
    /// `derain_h`, `low_light`, `pairs`; nil for anything else.
    public static func parse(_ name: String) -> PackTask? {
        if ["derain_l", "derain_h", "low_light", "pairs"].contains(name) {
            return PackTask(name: name, scale: 1, paired: true, noiseSigma: nil, jpegQuality: nil)
        }
        guard let d = Degradation.forTask(name) else { return nil }
        var noise: Float?, jpeg: Int?
        func visit(_ d: Degradation) {
            switch d {
            case .bicubic: break
            case .noise(let s): noise = s
            case .jpeg(let q): jpeg = q
            case .chain(let steps): steps.forEach(visit)
            }
        }
        visit(d)
        return PackTask(name: name, scale: d.scale, paired: false, noiseSigma: noise, jpegQuality: jpeg)
    }

    /// The task names `parse` accepts, for help texts.
    public static let known = "sr_2, sr_3, sr_4, lr4_noise30, lr4_jpeg30, lr<s>_noise<sigma>, lr<s>_jpeg<q>, denoise_<sigma>, jpeg_<quality>, derain_l, derain_h, low_light, pairs"

    /// The `degradation` attribute: `Degradation.parametersJSON` of the task (fixed key order), with the resize
    /// marked `official_lr_files` when LR images came from disk, plus `crop`/`lq`/`on_the_fly` notes.
    func degradationJSON(lqFromFiles: Bool, kind: PatchFile.Kind) -> String {
        var body = String((degradation?.parametersJSON ?? "{}").dropFirst().dropLast())
        if lqFromFiles {
            if scale > 1 {
                body = body.replacingOccurrences(of: "\"resize\":\"matlab_bicubic\"", with: "\"resize\":\"official_lr_files\"")
            } else {
                body = "\"lq\":\"paired_files\"" + (body.isEmpty ? "" : "," + body)
            }
        }
        var parts = body.isEmpty ? [] : [body]
        if scale == 1 { parts.append("\"crop\":\"center_mod16\"") }
        if kind == .images { parts.append("\"on_the_fly\":true") }
        return "{" + parts.joined(separator: ",") + "}"
    }
}

/// Options of one `pack` run (the CLI flags).
public struct PackOptions: Sendable {
    public var task: String
    /// Input folders (at least one), packed into one file in this order. With several, each source name is
    /// prefixed with its folder's last path component (`train/a.png`), so names stay unique and patch positions
    /// do not depend on where the folders are.
    public var inputs: [String]
    /// The first input folder (the only one of a single-folder pack).
    public var input: String {
        get { inputs.first ?? "" }
        set { inputs = [newValue] }
    }
    public var inputLQ: String?
    public var output: String
    public var kind: PatchFile.Kind = .patches
    public var patchesPerImage = 8
    /// Overrides the task's scale when set (must agree with a task that fixes one).
    public var scale: Int?
    public var seed: UInt64 = 0
    public var force = false
    public var compress = false
    public var layout: DatasetLayout = .auto
    /// LQ patch side.
    public var patchSize = 48
    /// Sub-image side S and grid step (kind images), BasicSR's 480 / 240.
    public var imageSize = 480
    public var imageStep = 240
    /// The limit on an input image's width * height (`readImage`).
    public var maxPixels = defaultMaxImagePixels

    public init(task: String, input: String, output: String) {
        self.init(task: task, inputs: [input], output: output)
    }

    public init(task: String, inputs: [String], output: String) {
        self.task = task; self.inputs = inputs; self.output = output
    }

    /// Each numeric option as its `pack` flag, its value and its valid range (checked by `validate`).
    public var numericOptions: [(flag: String, value: Int, range: ClosedRange<Int>)] {
        [("--patches-per-image", patchesPerImage, 1...100_000), ("--patch-size", patchSize, 1...1024),
         ("--image-size", imageSize, 1...16384), ("--image-step", imageStep, 1...16384),
         ("--max-pixels", maxPixels, maxImagePixelsRange)]
    }

    /// Checks every numeric option against its range before anything is read or written: a `DataError` naming the
    /// flag, its value and the valid range ("--patch-size: -5 is not in 1...1024").
    public func validate() throws {
        if let s = scale, !(1...4).contains(s) { throw DataError(file: "--scale", message: "\(s) is not in 1...4") }
        for (flag, value, range) in numericOptions where !range.contains(value) {
            throw DataError(file: flag, message: "\(value) is not in \(range.lowerBound)...\(range.upperBound)")
        }
    }
}

/// What a finished pack produced.
public struct PackReport: Sendable {
    public let output: String
    public let count: Int
    public let packedImages: Int
    /// Source names skipped because they are smaller than one patch (or one sub-image).
    public let skipped: [String]
    public let contentSHA256: String
}

/// Folders of images -> one patch file (format in `PatchFile`), deterministically: the same inputs, options and seed
/// give a byte-identical file. Patch positions and noise for image `name` come from `SplitMix64(seed, "crop:"+name)`
/// and `SplitMix64(seed, "noise:"+name)`, so they do not depend on the other images.
public enum Packer {
    /// Packs `options.input` into `options.output` (written to a temp name, then renamed; nothing is left behind on
    /// error). `progress(done, total)` is called after each image; `warn` gets one line per skipped image.
    /// Errors are `DataError`s naming the file: unknown task, output exists without `force`, empty folder, unpaired
    /// file, unreadable image, LQ/GT size mismatch, nothing large enough to pack; or naming the flag of a numeric
    /// option out of its range (`PackOptions.validate`, checked before anything is read or written).
    public static func pack(_ o: PackOptions, progress: (Int, Int) -> Void = { _, _ in },
                            warn: (String) -> Void = { _ in }) throws -> PackReport {
        try o.validate()
        guard let task = PackTask.parse(o.task) else {
            throw DataError(file: o.input, message: "unknown task '\(o.task)' (known: \(PackTask.known))")
        }
        let scale = o.scale ?? task.scale
        guard o.scale == nil || task.scale == 1 || o.scale == task.scale else {
            throw DataError(file: o.input, message: "--scale \(scale) contradicts task \(task.name) (scale \(task.scale))")
        }
        if o.kind == .images {
            guard !task.paired, o.inputLQ == nil else {
                throw DataError(file: o.input, message: "--kind images stores clean images only; task \(task.name) needs paired LQ files (use --kind patches)")
            }
            guard o.imageSize >= o.patchSize * scale, o.imageSize % scale == 0 else {
                throw DataError(file: "--image-size", message: "\(o.imageSize) must be a multiple of the scale \(scale) and at least --patch-size times the scale, \(o.patchSize * scale)")
            }
        }
        // One writer per output: two packs to one new file would both pass the existence check. The lock file is
        // removed after the output is renamed into place, so a pack that took the lock after us sees the output.
        let lock = try FileLock(path: o.output + ".lock", what: "pack output \(o.output)")
        defer { unlink(lock.path); withExtendedLifetime(lock) {} }
        if FileManager.default.fileExists(atPath: o.output) && !o.force {
            throw DataError(file: o.output, message: "output exists (use --force to overwrite)")
        }
        let wantLQ = o.kind == .patches && (task.paired || scale > 1)
        let pairs = try findPairs(o, scale: scale, wantLQ: wantLQ)
        if task.paired, let p = pairs.first(where: { $0.lq == nil }) {
            throw DataError(file: p.gt, message: "task \(task.name) needs paired LQ images (--input-lq or a paired layout)")
        }
        let lqFromFiles = pairs.first?.lq != nil

        var count = 0, packed: [String] = [], skipped: [String] = []
        var sha = ""
        var header = PatchFile.Header(kind: o.kind, task: task.name, scale: scale, patchSize: o.patchSize,
                                      imageSize: o.kind == .images ? o.imageSize : nil,
                                      degradation: task.degradationJSON(lqFromFiles: lqFromFiles, kind: o.kind),
                                      seed: Int(bitPattern: UInt(o.seed)))
        try HDF5File.writeAtomically(to: o.output) { f in
            let p = o.patchSize, g = p * scale
            try PatchFile.createDatasets(in: f, header: header, compress: o.compress)
            for (i, pair) in pairs.enumerated() {
                let n: Int
                if o.kind == .patches {
                    n = try packPatches(pair, task: task, scale: scale, o: o, into: f)
                } else {
                    n = try packImages(pair, scale: scale, o: o, into: f)
                }
                if n == 0 {
                    skipped.append(pair.name)
                    warn("warning: \(pair.gt): skipped, smaller than one \(o.kind == .patches ? "patch (\(g)x\(g) GT, \(p)x\(p) LQ)" : "sub-image (\(o.imageSize)x\(o.imageSize))")")
                } else {
                    packed.append(pair.name)
                    count += n
                }
                progress(i + 1, pairs.count)
            }
            guard count > 0 else {
                throw DataError(file: o.inputs.joined(separator: ", "), message: "no image is large enough to give a patch (\(skipped.count) skipped)")
            }
            header.sources = packed
            sha = try PatchFile.writeHeader(header, into: f).contentSHA256
            try f.setAttribute("skipped", jsonArray(skipped))
        }
        return PackReport(output: o.output, count: count, packedImages: packed.count, skipped: skipped, contentSHA256: sha)
    }

    /// The image pairs of every input folder, in the order of `o.inputs` (each folder in its layout's order). One
    /// folder: names relative to it, as always. Several: each name is prefixed with the folder's last path
    /// component; a folder given twice, a name that two folders share, `--input-lq` (which pairs with one folder)
    /// and a mix of folders with and without LQ files are errors naming the folder or file.
    static func findPairs(_ o: PackOptions, scale: Int, wantLQ: Bool) throws -> [ImagePair] {
        guard let first = o.inputs.first else { throw DataError(file: o.output, message: "no input folder given") }
        if o.inputs.count == 1 {
            return try o.layout.find(input: first, inputLQ: o.inputLQ, scale: scale, wantLQ: wantLQ)
        }
        if o.inputLQ != nil {
            throw DataError(file: o.inputLQ!, message: "--input-lq pairs with a single --input; \(o.inputs.count) were given (use paired layouts instead)")
        }
        var seenFolders = Set<String>(), names: [String: String] = [:], out: [ImagePair] = []
        var withLQ: String?, withoutLQ: String?
        for input in o.inputs {
            let key = (input as NSString).standardizingPath
            guard seenFolders.insert(key).inserted else { throw DataError(file: input, message: "input folder given twice") }
            let prefix = (key as NSString).lastPathComponent
            for p in try o.layout.find(input: input, inputLQ: nil, scale: scale, wantLQ: wantLQ) {
                let name = prefix + "/" + p.name
                if let other = names[name] {
                    throw DataError(file: p.gt, message: "source name \(name) is also that of \(other) (several --input folders are named by their last path component)")
                }
                names[name] = p.gt
                if p.lq == nil { withoutLQ = withoutLQ ?? input } else { withLQ = withLQ ?? input }
                out.append(ImagePair(name: name, gt: p.gt, lq: p.lq))
            }
        }
        if let withLQ, let withoutLQ {
            throw DataError(file: withoutLQ, message: "has no LQ images while \(withLQ) has; one file holds one kind of LQ (pack them separately)")
        }
        return out
    }

    /// A JSON array of strings (escaping quotes, backslashes and control characters).
    static func jsonArray(_ items: [String]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: items, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// Centre crop to a multiple of `m` in both sides.
    static func centerCrop(_ im: RGBImage, multiple m: Int) -> RGBImage {
        let w = im.width - im.width % m, h = im.height - im.height % m
        return im.cropped(x: (im.width - w) / 2, y: (im.height - h) / 2, width: w, height: h)
    }

    /// Patches (or sub-images) of one image are appended to the file whenever this many bytes are pending, so a
    /// large --patches-per-image or a small --image-step does not hold them all in memory.
    static let flushBytes = 64 << 20

    /// Uniform integer in 0..<n from `rng` (modulo; the bias is below 2^-40 for image sizes).
    @inline(__always) static func below(_ n: Int, _ rng: inout SplitMix64) -> Int { Int(rng.next() % UInt64(n)) }

    /// Cuts `patchesPerImage` aligned (gt, lq) patches from one image pair and appends them; returns how many (0
    /// when the LQ image is smaller than one patch).
    static func packPatches(_ pair: ImagePair, task: PackTask, scale s: Int, o: PackOptions, into f: HDF5File) throws -> Int {
        var gt = try readImage(pair.gt, maxPixels: o.maxPixels)
        var lq: RGBImage
        if let lqPath = pair.lq {
            lq = try readImage(lqPath, maxPixels: o.maxPixels)
            if s > 1 {
                guard lq.width * s <= gt.width, lq.height * s <= gt.height else {
                    throw DataError(file: lqPath, message: "LQ \(lq.width)x\(lq.height) times \(s) exceeds GT \(gt.width)x\(gt.height) (\(pair.gt))")
                }
                gt = gt.cropped(x: 0, y: 0, width: lq.width * s, height: lq.height * s)
            } else {
                guard lq.width == gt.width, lq.height == gt.height else {
                    throw DataError(file: lqPath, message: "size \(lq.width)x\(lq.height) differs from GT \(gt.width)x\(gt.height) (\(pair.gt))")
                }
                gt = centerCrop(gt, multiple: 16)
                lq = centerCrop(lq, multiple: 16)
            }
        } else if s > 1 {
            gt = gt.modCropped(s)
            lq = matlabBicubicDownscale(gt, by: s)
        } else {
            gt = centerCrop(gt, multiple: 16)
            lq = gt
        }
        let p = o.patchSize, g = p * s
        guard lq.width >= p, lq.height >= p else { return 0 }
        var posRNG = SplitMix64(seed: o.seed, stream: "crop:" + pair.name)
        var noiseRNG = SplitMix64(seed: o.seed, stream: "noise:" + pair.name)
        let k = o.patchesPerImage
        let perFlush = max(1, min(k, flushBytes / ((g * g + p * p) * 3)))
        var gtBytes = [UInt8](), lqBytes = [UInt8](), pending = 0
        gtBytes.reserveCapacity(perFlush * g * g * 3); lqBytes.reserveCapacity(perFlush * p * p * 3)
        func flush() throws {
            try gtBytes.withUnsafeBytes { _ = try f.appendItems("gt", $0, items: pending) }
            try lqBytes.withUnsafeBytes { _ = try f.appendItems("lq", $0, items: pending) }
            gtBytes.removeAll(keepingCapacity: true); lqBytes.removeAll(keepingCapacity: true); pending = 0
        }
        for _ in 0..<k {
            let x = below(lq.width - p + 1, &posRNG), y = below(lq.height - p + 1, &posRNG)
            gtBytes += gt.cropped(x: x * s, y: y * s, width: g, height: g).pixels
            var lp = lq.cropped(x: x, y: y, width: p, height: p)
            if let sigma = task.noiseSigma { lp = addGaussianNoise(lp, sigma: sigma, rng: &noiseRNG) }
            if let q = task.jpegQuality { lp = try jpegRoundTrip(lp, quality: q, swapRedBlue: true) }
            lqBytes += lp.pixels
            pending += 1
            if pending == perFlush { try flush() }
        }
        if pending > 0 { try flush() }
        return k
    }

    /// Cuts clean S x S sub-images on BasicSR's grid (step `imageStep`, plus a last window flush with the border)
    /// and appends them; returns how many (0 when the image is smaller than S).
    static func packImages(_ pair: ImagePair, scale s: Int, o: PackOptions, into f: HDF5File) throws -> Int {
        let im = try readImage(pair.gt, maxPixels: o.maxPixels).modCropped(s)
        let S = o.imageSize
        guard im.width >= S, im.height >= S else { return 0 }
        func grid(_ n: Int) -> [Int] {
            var v = Array(stride(from: 0, through: n - S, by: o.imageStep))
            if n - (v.last! + S) > 0 { v.append(n - S) }
            return v
        }
        let perFlush = max(1, flushBytes / (S * S * 3))
        var bytes = [UInt8]()
        var m = 0, pending = 0
        for y in grid(im.height) {
            for x in grid(im.width) {
                bytes += im.cropped(x: x, y: y, width: S, height: S).pixels
                m += 1; pending += 1
                if pending == perFlush {
                    try bytes.withUnsafeBytes { _ = try f.appendItems("images", $0, items: pending) }
                    bytes.removeAll(keepingCapacity: true); pending = 0
                }
            }
        }
        if pending > 0 { try bytes.withUnsafeBytes { _ = try f.appendItems("images", $0, items: pending) } }
        return m
    }
}
