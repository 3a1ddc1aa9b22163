import AdaptIRCore
import ArgumentParser
import Foundation

/// `adaptir-dist inspect`: the tensors of a checkpoint file or of a fresh model, with counts and trainable fraction.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors, shapes and parameter counts of a checkpoint or of a fresh model preset.")

    @Argument(help: "A checkpoint (HDF5). Omit it to describe a fresh model given by --preset and --method.")
    var file: String?

    @Option(help: "Model preset: \(Preset.all.map(\.name).joined(separator: ", ")).")
    var preset: String = "ipt"

    @Option(help: "Adaptation method: \(AdaptationMethod.allCases.map(\.rawValue).joined(separator: ", ")).")
    var method: String = "adaptir"

    @Flag(help: "Only the totals, not one line per tensor.")
    var summary = false

    @Flag(help: "For a patch file (from `pack`): recompute the SHA-256 of the pixel data and compare it with content_sha256.")
    var verify = false

    func run() throws {
        if let file, verify || PatchFileSummary.looksLikePatchFile(file) {
            try PatchFileSummary.run(file, verify: verify)
            return
        }
        if let file {
            let info = try CheckpointInfo.read(file)
            let m = info.metadata
            print("\(file): format \(m.formatVersion), preset \(m.preset), method \(m.method), part \(m.part), task \(m.task), step \(m.step)")
            printTable(info.entries.map { ($0.key, $0.shape, $0.role) })
            return
        }
        guard let p = Preset.named(preset) else {
            throw ValidationError("--preset: unknown preset '\(preset)' (known: \(Preset.all.map(\.name).joined(separator: ", ")))")
        }
        guard let m = AdaptationMethod(rawValue: method) else {
            throw ValidationError("--method: unknown method '\(method)' (known: \(AdaptationMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        print("fresh model: preset \(p), method \(m.rawValue)")
        let specs = AdaptedIPT.parameterSpecs(preset: p, method: m)
        printTable(specs.map { ($0.key, $0.shape, AdaptedIPT.isTrainable($0, method: m) ? "trainable" : $0.role.rawValue) })
    }

    private func printTable(_ rows: [(String, [Int], String)]) {
        let width = rows.map(\.0.count).max() ?? 10
        var backbone = 0, adapter = 0, trainable = 0, buffers = 0
        for (key, shape, role) in rows {
            let n = shape.product
            if role == ParameterRole.buffer.rawValue { buffers += n }
            else if key.contains(".adaptir.") { adapter += n }
            else { backbone += n }
            if role == "trainable" { trainable += n }
            if !summary {
                print(key.padding(toLength: width + 2, withPad: " ", startingAt: 0)
                      + "[\(shape.map(String.init).joined(separator: ", "))]".padding(toLength: 22, withPad: " ", startingAt: 0)
                      + String(n).leftPadded(12) + "  " + role)
            }
        }
        func pct(_ a: Int, _ b: Int) -> String { String(format: "%.3f%%", 100 * Double(a) / Double(max(b, 1))) }
        print("tensors: \(rows.count)")
        print("backbone parameters: \(backbone.grouped)")
        print("adapter parameters: \(adapter.grouped)")
        print("trainable parameters: \(trainable.grouped) (\(pct(trainable, backbone)) of the backbone, \(pct(trainable, backbone + adapter)) of all)")
        print("buffer values (running statistics, ids): \(buffers.grouped)")
    }
}

/// `inspect` of a patch file: its attributes, and with `--verify` the recomputed content hash.
enum PatchFileSummary {
    /// Whether `path` is an HDF5 file with a root `kind` attribute (patch files have one, checkpoints do not).
    static func looksLikePatchFile(_ path: String) -> Bool {
        guard let f = try? HDF5File.open(path) else { return false }
        return (try? f.attributeString("kind")) != nil
    }

    static func run(_ path: String, verify: Bool) throws {
        do {
            let p = try PatchFile.open(path)
            let shape = p.kind == .patches
                ? "gt [\(p.count), \(p.patchSize * p.scale), \(p.patchSize * p.scale), 3], lq [\(p.count), \(p.patchSize), \(p.patchSize), 3]"
                : "images [\(p.count), \(p.imageSize ?? 0), \(p.imageSize ?? 0), 3]"
            print("\(path): patch file v\(PatchFile.formatVersion), kind \(p.kind.rawValue), task \(p.task), scale \(p.scale), \(shape)")
            print("degradation \(p.degradation), seed \(p.seed), \(p.sources.count) sources")
            print("content_sha256 \(p.contentSHA256)")
            if verify {
                try p.verify()
                print("verified: content_sha256 matches the pixel data")
            }
        } catch let e as DataError {
            FileHandle.standardError.write(Data("adaptir-dist inspect: \(e.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
