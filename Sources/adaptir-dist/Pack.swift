import AdaptIRCore
import ArgumentParser
import Foundation

/// `adaptir-dist pack`: folders of images (or paired folders) -> one deterministic HDF5 patch file.
struct Pack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pack folders of images into one HDF5 file of uint8 patches with a content hash, deterministic.",
        discussion: """
            Same inputs, options and seed give a byte-identical file and the same content_sha256. The file is \
            written to OUTPUT.tmp-<pid> and renamed, so an error leaves nothing behind. Examples:
              adaptir-dist pack --task lr4_noise30 --input datasets/samples/train --output lr4n30.h5
              adaptir-dist pack --task sr_4 --input DIV2K --layout div2k --output sr4.h5   (uses DIV2K_train_LR_bicubic/X4)
              adaptir-dist pack --task derain_l --input RainTrainL --output rainl.h5
              adaptir-dist pack --task sr_4 --input datasets/photos/train --input more/photos --output sr4.h5
            """)

    @Option(help: "Task: \(PackTask.known).")
    var task: String

    @Option(help: "Folder of clean (GT) images, or a dataset root in a known layout. Repeat it to pack several folders into one file (in the order given; source names then start with each folder's last path component).")
    var input: [String]

    @Option(name: .customLong("input-lq"), help: "Folder of LQ images paired with --input by name (stem, stemx<s>, stem_LRBI_x<s>).")
    var inputLQ: String?

    @Option(help: "Output HDF5 file.")
    var output: String

    @Option(help: "patches (aligned gt/lq patches) or images (clean sub-images for on-the-fly degradation).")
    var kind: String = "patches"

    @Option(name: .customLong("patches-per-image"), help: "Random patches cut from each image (kind patches), 1...100000.")
    var patchesPerImage: Int = 8

    @Option(help: "Scale, 1...4 (default: the task's).")
    var scale: Int?

    @Option(help: "Seed of the patch positions and the noise.")
    var seed: UInt64 = 0

    @Option(name: .customLong("patch-size"), help: "LQ patch side, 1...1024.")
    var patchSize: Int = 48

    @Option(name: .customLong("image-size"), help: "Sub-image side S (kind images), 1...16384, a multiple of the scale and at least patch-size times it.")
    var imageSize: Int = 480

    @Option(name: .customLong("image-step"), help: "Sub-image grid step (kind images), 1...16384.")
    var imageStep: Int = 240

    @Option(name: .customLong("max-pixels"), help: "Refuse an input image whose header claims more than this many pixels (width x height), before decoding it; 1...\(maxImagePixelsRange.upperBound).")
    var maxPixels: Int = defaultMaxImagePixels

    @Option(help: "Input layout: \(DatasetLayout.allCases.map(\.rawValue).joined(separator: ", ")).")
    var layout: String = "auto"

    @Flag(help: "Overwrite an existing output file.")
    var force = false

    @Flag(help: "gzip (level 4) each chunk; off by default (random patch reads are faster uncompressed).")
    var compress = false

    @Flag(help: "Show the progress bar even when stderr is not a terminal.")
    var progress = false

    func run() throws {
        let k = try PatchFile.Kind(option: kind)
        guard let l = DatasetLayout(rawValue: layout.lowercased()) else {
            throw ValidationError("--layout: unknown layout '\(layout)' (known: \(DatasetLayout.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard !input.isEmpty else { throw ValidationError("--input: give at least one folder") }
        var o = PackOptions(task: task, inputs: input, output: output)
        o.inputLQ = inputLQ; o.kind = k; o.patchesPerImage = patchesPerImage; o.scale = scale; o.seed = seed
        o.force = force; o.compress = compress; o.layout = l; o.patchSize = patchSize; o.imageSize = imageSize
        o.imageStep = imageStep; o.maxPixels = maxPixels
        let showBar = progress || isatty(2) != 0
        let start = Date()
        let bar: (Int, Int) -> Void = { done, total in
            guard showBar else { return }
            let width = 30, filled = total > 0 ? done * width / total : width
            let line = "\rpack [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                + "] \(done)/\(total) images, \(String(format: "%.1f", Date().timeIntervalSince(start))) s"
            FileHandle.standardError.write(Data((line + (done == total ? "\n" : "")).utf8))
        }
        let warn: (String) -> Void = { msg in
            FileHandle.standardError.write(Data(((showBar ? "\r" : "") + msg + "\n").utf8))
        }
        do {
            let r = try Packer.pack(o, progress: bar, warn: warn)
            if !r.skipped.isEmpty {
                FileHandle.standardError.write(Data("warning: \(r.skipped.count) image(s) skipped (smaller than one patch)\n".utf8))
            }
            print("\(r.output): \(r.count) \(k == .patches ? "patch pairs" : "sub-images") from \(r.packedImages) images, task \(task), content_sha256 \(r.contentSHA256)")
        } catch let e as DataError {
            if showBar { FileHandle.standardError.write(Data("\n".utf8)) }
            FileHandle.standardError.write(Data("adaptir-dist pack: \(e.description)\n".utf8))
            throw ExitCode(1)
        } catch let e as HDF5Error {
            FileHandle.standardError.write(Data("adaptir-dist pack: \(e.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}

extension PatchFile.Kind {
    /// The value of a `--kind` option (`pack`, `pretrain`), or a usage error naming it.
    init(option: String) throws {
        guard let k = PatchFile.Kind(rawValue: option) else { throw ValidationError("--kind: '\(option)' is not patches or images") }
        self = k
    }
}
