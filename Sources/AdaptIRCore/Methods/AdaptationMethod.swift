import Foundation

/// One hyper-parameter of an adaptation method (a rank, a width, a prompt count, a scale): its name in
/// `--method-option NAME=VALUE` and in the YAML map `method_options`, its valid range, and its default, which may
/// scale with the preset (e.g. a width as a fraction of the embedding) so that `small` and `tiny` work too.
public struct MethodHyperParameter: Sendable {
    public let name: String
    public let help: String
    /// Whole numbers only (ranks, widths, counts).
    public let integer: Bool
    public let range: ClosedRange<Double>
    public let defaultValue: @Sendable (Preset) -> Double

    public init(_ name: String, _ help: String, integer: Bool, range: ClosedRange<Double>,
                default defaultValue: @escaping @Sendable (Preset) -> Double) {
        self.name = name
        self.help = help
        self.integer = integer
        self.range = range
        self.defaultValue = defaultValue
    }
}

/// An adaptation method: what it adds to the frozen IPT, what trains, and what it costs. A method is one file under
/// `Methods/` plus one line in `MethodRegistry.all`; the model, the trainer, checkpoints, `inspect`, `bench` and
/// `compare` only talk to this protocol, never to a method's name.
///
/// An instance is built for a preset and resolved hyper-parameter values, declares its tensors (`layerParameters`,
/// `globalParameters`; they are saved in the adapter part of a checkpoint), then `bind`s to the parameter store and
/// acts on the layers through `LayerHooks`.
public protocol AdaptationMethod: LayerHooks {
    /// The `--method` name.
    static var name: String { get }
    /// One line for `--help` and `inspect`.
    static var summary: String { get }
    static var hyperParameters: [MethodHyperParameter] { get }
    /// The learning rate `compare` and the embedded default use when none is given (the method's paper or a sweep,
    /// said in the method's file); the paper's recipe (lr 1e-4) stays the default of `train` with data or a config.
    static var demoLearningRate: Float { get }
    /// Whether the adapted model equals the backbone before any step (a zero-initialised output path).
    static var identityAtInitialisation: Bool { get }
    /// The method's Set5 Y-PSNR in the paper's LR4&Noise30 table (spec 6.1), for `compare`'s side-by-side ordering;
    /// nil when the paper has no row for it.
    static var paperLR4Noise30Set5: Double? { get }

    /// `values` holds every hyper-parameter of `hyperParameters`, validated (`MethodRegistry.resolve`).
    init(preset: Preset, values: [String: Double])
    var preset: Preset { get }
    var values: [String: Double] { get }

    /// Tensors added to one transformer layer (keys under `site.prefix`), in state_dict order.
    func layerParameters(site: LayerSite) -> [ParameterSpec]
    /// Tensors shared by all layers (appended after the backbone's keys).
    func globalParameters() -> [ParameterSpec]
    /// Which tensors train: the method's own (the default), all backbone tensors (full fine-tuning), none (frozen),
    /// or a mix (a method may unfreeze backbone tensors).
    func trains(_ spec: ParameterSpec) -> Bool
    /// Takes the method's tensors from the store; the model then calls the `LayerHooks` during forward.
    func bind(_ store: ParameterStore)
    /// Whether the layers must call the hooks at all (false: the bare backbone's code path).
    var hasHooks: Bool { get }
    /// Batch-norm mode of the method's layers (true: batch statistics and running-stat updates).
    var training: Bool { get set }
    /// Sums batch-norm statistics over ranks (synchronised BN); nil keeps them per rank.
    var reducer: BatchNormReducer? { get set }
    /// Forward FLOPs the method adds to one 48x48 patch (2 per multiply-add of its products, as `ModelCost`).
    func extraForwardFLOPs() -> Double
}

extension AdaptationMethod {
    public func layerParameters(site: LayerSite) -> [ParameterSpec] { [] }
    public func globalParameters() -> [ParameterSpec] { [] }
    public func trains(_ spec: ParameterSpec) -> Bool { spec.owner == .method }
    public var hasHooks: Bool { true }
    public var training: Bool { get { false } set {} }
    public var reducer: BatchNormReducer? { get { nil } set {} }
    public func extraForwardFLOPs() -> Double { 0 }
    public static var identityAtInitialisation: Bool { true }
    public static var paperLR4Noise30Set5: Double? { nil }

    /// Whether `spec` is a trained tensor: a weight (never a buffer such as running statistics, nor a fixed
    /// constant) that the method trains. The one rule the store, the config check, `inspect`, the allreduce
    /// benchmark and checkpoints share.
    public func trainsTensor(_ spec: ParameterSpec) -> Bool {
        spec.role != .buffer && spec.role != .fixed && trains(spec)
    }

    /// An integer hyper-parameter.
    public func int(_ name: String) -> Int {
        guard let v = values[name] else { preconditionFailure("\(Self.name): no hyper-parameter \(name)") }
        return Int(v)
    }

    /// A real hyper-parameter.
    public func float(_ name: String) -> Float {
        guard let v = values[name] else { preconditionFailure("\(Self.name): no hyper-parameter \(name)") }
        return Float(v)
    }

    /// Every transformer layer, encoder first: the sites of per-layer methods.
    public var sites: [LayerSite] {
        (0..<preset.encoderLayers).map { .encoder($0) } + (0..<preset.decoderLayers).map { .decoder($0) }
    }
}

/// A method by name with its hyper-parameters, as a config, the command line and a checkpoint file name it.
/// `options` holds only what was given; the registry fills in the preset's defaults.
public struct MethodChoice: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var options: [String: Double]

    public init(_ name: String, options: [String: Double] = [:]) {
        self.name = name
        self.options = options
    }

    public static let adaptir = MethodChoice("adaptir")
    public static let full = MethodChoice("full")
    public static let frozen = MethodChoice("frozen")

    public var description: String {
        options.isEmpty ? name : name + " (" + options.keys.sorted().map { "\($0)=\(formatValue(options[$0]!))" }.joined(separator: ", ") + ")"
    }

    /// Parses `NAME=VALUE` (a `--method-option`).
    public static func parseOption(_ text: String) throws -> (String, Double) {
        let parts = text.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, !parts[0].isEmpty, let v = Double(parts[1]), v.isFinite else {
            throw MethodError("method option '\(text)': expected NAME=NUMBER, e.g. rank=8")
        }
        return (parts[0], v)
    }

    /// The options as canonical JSON text (sorted keys), stored in checkpoint files.
    public var optionsJSON: String {
        "{" + options.keys.sorted().map { "\"\($0)\":\(formatValue(options[$0]!))" }.joined(separator: ",") + "}"
    }

    /// Reads `optionsJSON`.
    public static func options(fromJSON text: String) throws -> [String: Double] {
        guard !text.isEmpty else { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw MethodError("method options '\(text)' are not a JSON object")
        }
        var out: [String: Double] = [:]
        for (k, v) in object {
            guard let n = v as? NSNumber else { throw MethodError("method option '\(k)' is not a number in '\(text)'") }
            out[k] = n.doubleValue
        }
        return out
    }
}

/// A hyper-parameter value as written in options and tables: whole numbers without a fraction (8, not 8.0).
public func formatValue(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
}

/// A method name or hyper-parameter that cannot be used; the message names it.
public struct MethodError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ message: String) { description = message }
}

/// Every adaptation method. Adding one: a file under `Methods/` and one line here.
public enum MethodRegistry {
    /// An immutable list of metatypes (which hold no state), so it is safe to read from any thread.
    nonisolated(unsafe) public static let all: [any AdaptationMethod.Type] = [
        AdaptIRMethod.self,
        FullFineTuning.self,
        FrozenBackbone.self,
        LoRAMethod.self,
        SequentialAdapter.self,
        AdaptFormerMethod.self,
        SSFMethod.self,
        VPTDeep.self,
        FacTMethod.self,
        ClassicMoE.self,
    ]

    public static var names: [String] { all.map { $0.name } }

    /// The method type of a name; an unknown name is an error listing the known ones.
    public static func type(named name: String) throws -> any AdaptationMethod.Type {
        guard let t = all.first(where: { $0.name == name }) else {
            throw MethodError("unknown method '\(name)' (known: \(names.joined(separator: ", ")))")
        }
        return t
    }

    /// Every hyper-parameter of `choice` at `preset`: the given options checked (known name, range, whole number)
    /// and the preset's defaults for the rest.
    public static func resolve(_ choice: MethodChoice, preset: Preset) throws -> [String: Double] {
        let t = try type(named: choice.name)
        let known = t.hyperParameters
        for key in choice.options.keys.sorted() where !known.contains(where: { $0.name == key }) {
            let list = known.isEmpty ? "it has none" : "known: " + known.map(\.name).joined(separator: ", ")
            throw MethodError("method '\(choice.name)' has no hyper-parameter '\(key)' (\(list))")
        }
        var values: [String: Double] = [:]
        for h in known {
            let v = choice.options[h.name] ?? h.defaultValue(preset)
            if h.integer && v != v.rounded() {
                throw MethodError("method '\(choice.name)' option '\(h.name)': must be a whole number, got \(v)")
            }
            guard v.isFinite, h.range.contains(v) else {
                throw MethodError("method '\(choice.name)' option '\(h.name)': \(formatValue(v)) outside \(formatValue(h.range.lowerBound))...\(formatValue(h.range.upperBound))")
            }
            values[h.name] = v
        }
        return values
    }

    /// A method instance for `preset` (not yet bound to a store).
    public static func make(_ choice: MethodChoice, preset: Preset) throws -> any AdaptationMethod {
        let t = try type(named: choice.name)
        return t.init(preset: preset, values: try resolve(choice, preset: preset))
    }
}
