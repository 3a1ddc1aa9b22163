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

    func run() throws {
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

extension Int {
    /// 118892394 -> "118,892,394".
    var grouped: String {
        let s = String(self.magnitude)
        var out = ""
        for (i, ch) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (self < 0 ? "-" : "") + out
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
