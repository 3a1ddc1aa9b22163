import Foundation

/// Which tensors a checkpoint file holds. One backbone file serves many adapter files.
public enum CheckpointPart: String, Sendable, CaseIterable {
    /// The IPT backbone (and its position-id buffer).
    case backbone
    /// Every tensor the adaptation method owns, with its running statistics.
    case adapter
    /// Everything of the model.
    case all

    /// Whether a state_dict entry belongs to this part.
    public func contains(_ spec: ParameterSpec) -> Bool {
        switch self {
        case .backbone: return spec.owner == .backbone
        case .adapter: return spec.owner == .method
        case .all: return true
        }
    }
}

/// File attributes of a checkpoint.
public struct CheckpointMetadata: Sendable, Equatable {
    public var formatVersion: Int
    public var preset: String
    public var method: String
    /// Every hyper-parameter of the method (canonical JSON), so an adapter file rebuilds its method alone.
    public var methodOptions: [String: Double]
    public var part: String
    /// Task index the file was trained for (-1: multi-task pre-training or unknown).
    public var task: Int
    public var step: Int

    public init(formatVersion: Int, preset: String, method: String, methodOptions: [String: Double] = [:], part: String,
                task: Int, step: Int) {
        self.formatVersion = formatVersion
        self.preset = preset
        self.method = method
        self.methodOptions = methodOptions
        self.part = part
        self.task = task
        self.step = step
    }
}

/// Model checkpoints in HDF5: one float32 dataset per tensor at the file's root, named by its PyTorch state_dict key
/// and in PyTorch's layout (integer buffers as float32, like the fixtures), plus attributes `format_version`,
/// `preset`, `method`, `part`, `task`, `step`. Other data (optimizer state, RNG) may live in groups; loading ignores
/// groups. Loading is strict: a missing, extra or mis-shaped tensor is an error naming it.
public enum Checkpoint {
    public static let formatVersion = 1

    /// Writes `part` of `model` to `path` atomically (temporary name, then rename). `extra` may add groups.
    public static func save(_ model: AdaptedIPT, part: CheckpointPart, to path: String, task: Int = -1, step: Int = 0,
                            extra: ((HDF5File) throws -> Void)? = nil) throws {
        try HDF5File.writeAtomically(to: path) { f in
            for spec in model.store.specs where part.contains(spec) {
                try f.write(spec.key, tensor: model.store[spec.key])
            }
            try f.setAttribute("format_version", formatVersion)
            try f.setAttribute("preset", model.preset.name)
            try f.setAttribute("method", model.choice.name)
            try f.setAttribute("method_options", MethodChoice(model.choice.name, options: model.method.values).optionsJSON)
            try f.setAttribute("part", part.rawValue)
            try f.setAttribute("task", task)
            try f.setAttribute("step", step)
            try extra?(f)
        }
    }

    /// Reads the attributes of a checkpoint.
    public static func metadata(of f: HDF5File) throws -> CheckpointMetadata {
        func req<T>(_ v: T?, _ name: String) throws -> T {
            guard let v else { throw HDF5Error(file: f.path, message: "not an adaptir-dist checkpoint: attribute '\(name)' missing") }
            return v
        }
        let version = try req(f.attributeInt("format_version"), "format_version")
        guard version == formatVersion else {
            throw HDF5Error(file: f.path, message: "checkpoint format version \(version), this build reads \(formatVersion)")
        }
        return CheckpointMetadata(
            formatVersion: version, preset: try req(f.attributeString("preset"), "preset"),
            method: try f.attributeString("method") ?? "",
            methodOptions: try MethodChoice.options(fromJSON: f.attributeString("method_options") ?? ""), part: try f.attributeString("part") ?? CheckpointPart.all.rawValue,
            task: try f.attributeInt("task") ?? -1, step: try f.attributeInt("step") ?? 0)
    }

    /// Loads `part` of the model from `path`, strictly: the file's root datasets must be exactly that part's keys,
    /// with the model's shapes. Nothing is modified unless every tensor checks out.
    @discardableResult
    public static func load(_ path: String, into model: AdaptedIPT, part: CheckpointPart) throws -> CheckpointMetadata {
        let f = try HDF5File.open(path)
        defer { f.close() }
        let meta = try metadata(of: f)
        guard meta.preset == model.preset.name else {
            throw HDF5Error(file: path, message: "checkpoint is for preset '\(meta.preset)', the model is '\(model.preset.name)'")
        }
        if part == .adapter, meta.method != model.choice.name {
            throw HDF5Error(file: path, message: "adapter file is for method '\(meta.method)', the model has method '\(model.choice.name)'")
        }
        let wanted = model.store.specs.filter { part.contains($0) }
        let present = Set(try f.datasetNames(recursive: false).map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 })
        let wantedKeys = Set(wanted.map(\.key))
        if let missing = wanted.first(where: { !present.contains($0.key) }) {
            throw HDF5Error(file: path, object: "dataset '\(missing.key)'", message: "missing from checkpoint (strict load of part '\(part.rawValue)')")
        }
        if let extra = present.subtracting(wantedKeys).sorted().first {
            throw HDF5Error(file: path, object: "dataset '\(extra)'", message: "unexpected in a '\(part.rawValue)' checkpoint of preset \(model.preset.name) with method \(model.choice.name)")
        }
        var loaded: [(Tensor, Tensor)] = []
        for spec in wanted {
            let t = try f.readTensor(spec.key, expectedShape: spec.shape)
            guard t.allFinite() else {
                throw HDF5Error(file: path, object: "dataset '\(spec.key)'", message: "contains NaN or Inf")
            }
            loaded.append((model.store[spec.key], t))
        }
        for (dst, src) in loaded { dst.copy(from: src) }
        return meta
    }
}

/// What `adaptir-dist inspect FILE` prints: every root tensor of a checkpoint with its role under the file's method.
public struct CheckpointInfo {
    public let metadata: CheckpointMetadata
    public let entries: [(key: String, shape: [Int], role: String, owner: ParameterOwner)]

    public static func read(_ path: String) throws -> CheckpointInfo {
        let f = try HDF5File.open(path)
        defer { f.close() }
        let meta = try Checkpoint.metadata(of: f)
        var specsByKey: [String: ParameterSpec] = [:]
        var method: (any AdaptationMethod)?
        if let preset = Preset.named(meta.preset) {
            // The file's own method when it names one this build knows, else AdaptIR's layout for the roles.
            let choice = MethodChoice(meta.method, options: meta.methodOptions)
            method = try? MethodRegistry.make(choice, preset: preset)
            let layout = method ?? (try? MethodRegistry.make(.adaptir, preset: preset))
            for s in layout.map({ AdaptedIPT.parameterSpecs(preset: preset, method: $0) }) ?? [] { specsByKey[s.key] = s }
        }
        var entries: [(String, [Int], String, ParameterOwner)] = []
        for name in try f.datasetNames(recursive: false) {
            let key = name.hasPrefix("/") ? String(name.dropFirst()) : name
            let shape = try f.shape(of: name)
            var role = "unknown"
            if let spec = specsByKey[key] {
                let trains = method.map { $0.trainsTensor(spec) } ?? false
                role = trains ? "trainable" : spec.role.rawValue
            }
            entries.append((key, shape, role, specsByKey[key]?.owner ?? .backbone))
        }
        return CheckpointInfo(metadata: meta, entries: entries)
    }
}
