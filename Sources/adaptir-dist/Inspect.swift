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

    @Option(help: "Adaptation method: \(MethodRegistry.names.joined(separator: ", ")).")
    var method: String = "adaptir"

    @Option(name: .customLong("method-option"), help: "A hyper-parameter of the method, NAME=VALUE (repeatable).")
    var methodOption: [String] = []

    @Flag(help: "Only the totals, not one line per tensor.")
    var summary = false

    @Flag(help: "List every adaptation method with its hyper-parameters (defaults at --preset) and parameter count.")
    var methods = false

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
            let options = m.methodOptions.isEmpty ? "" : " " + MethodChoice(m.method, options: m.methodOptions).optionsJSON
            print("\(file): format \(m.formatVersion), preset \(m.preset), method \(m.method)\(options), part \(m.part), task \(m.task), step \(m.step)")
            printTable(info.entries.map { ($0.key, $0.shape, $0.role, $0.owner == .method) })
            return
        }
        guard let p = Preset.named(preset) else {
            throw ValidationError("--preset: unknown preset '\(preset)' (known: \(Preset.all.map(\.name).joined(separator: ", ")))")
        }
        if methods {
            listMethods(p)
            return
        }
        var choice = MethodChoice(method)
        for text in methodOption {
            do { let (k, v) = try MethodChoice.parseOption(text); choice.options[k] = v } catch { throw ValidationError("--method-option: \(error)") }
        }
        let m: any AdaptationMethod
        do { m = try MethodRegistry.make(choice, preset: p) } catch { throw ValidationError("--method: \(error)") }
        print("fresh model: preset \(p), method \(MethodChoice(choice.name, options: m.values))")
        let specs = AdaptedIPT.parameterSpecs(preset: p, method: m)
        printTable(specs.map { ($0.key, $0.shape, Self.role($0, m), $0.owner == .method) })
        let cost = ModelCost(preset: p, task: 2, method: m)
        print(String(format: "forward FLOPs per 48x48 patch (x4 task): %.2f G, of which the method %.3f G", cost.forward / 1e9, m.extraForwardFLOPs() / 1e9))
    }

    static func role(_ spec: ParameterSpec, _ m: any AdaptationMethod) -> String {
        m.trainsTensor(spec) ? "trainable" : spec.role.rawValue
    }

    private func listMethods(_ p: Preset) {
        print("adaptation methods at preset \(p.name) (train --method NAME --method-option KEY=VALUE):")
        for t in MethodRegistry.all {
            guard let m = try? MethodRegistry.make(MethodChoice(t.name), preset: p) else { continue }
            let specs = AdaptedIPT.parameterSpecs(preset: p, method: m)
            let trainable = specs.filter(m.trainsTensor).reduce(0) { $0 + $1.count }
            print("  \(t.name.padding(toLength: 12, withPad: " ", startingAt: 0)) \(trainable.grouped.leftPadded(12)) trainable  \(t.summary)")
            for h in t.hyperParameters {
                print("      \(h.name)=\(formatValue(m.values[h.name] ?? 0))  \(h.help); range \(formatValue(h.range.lowerBound))...\(formatValue(h.range.upperBound))")
            }
        }
    }


    private func printTable(_ rows: [(String, [Int], String, Bool)]) {
        let width = rows.map(\.0.count).max() ?? 10
        var backbone = 0, adapter = 0, trainable = 0, buffers = 0
        for (key, shape, role, isMethod) in rows {
            let n = shape.product
            if role == ParameterRole.buffer.rawValue { buffers += n }
            else if isMethod { adapter += n }
            else { backbone += n }
            if role == "trainable" { trainable += n }
            if !summary {
                print(key.padding(toLength: width + 2, withPad: " ", startingAt: 0)
                      + "[\(shape.map(String.init).joined(separator: ", "))]".padding(toLength: 22, withPad: " ", startingAt: 0)
                      + String(n).leftPadded(12) + "  " + role)
            }
        }
        func pct(_ a: Int, _ b: Int) -> String { b > 0 ? String(format: "%.3f%%", 100 * Double(a) / Double(b)) : "n/a" }
        print("tensors: \(rows.count)")
        print("backbone parameters: \(backbone.grouped)")
        print("adapter parameters: \(adapter.grouped)")
        if backbone > 0 {
            print("trainable parameters: \(trainable.grouped) (\(pct(trainable, backbone)) of the backbone, \(pct(trainable, backbone + adapter)) of all)")
        } else {
            print("trainable parameters: \(trainable.grouped) (an adapter file: the backbone is in another file)")
        }
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
            print(p.headerSHA256.map { "header_sha256 \($0) (matches the attributes; checked at every open)" }
                  ?? "header_sha256: none (packed by an older version: the attributes are not covered by a hash; pack again to add it)")
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
