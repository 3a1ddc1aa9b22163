/// How the backbone is trained.
public enum AdaptationMethod: String, Sendable, CaseIterable {
    /// AdaptIR modules parallel to every MLP; only they train (the paper's method).
    case adaptir
    /// Full fine-tuning / pre-training: every backbone parameter trains, no adapter.
    case full
    /// The bare backbone, nothing trainable (the "Pretrain" rows of the paper's tables).
    case frozen
}

/// IPT with an adaptation method: the one object the trainer, the evaluator and `inspect` build.
public final class AdaptedIPT {
    public let preset: Preset
    public let method: AdaptationMethod
    public let store: ParameterStore
    public let backbone: IPT
    public let adaptir: AdaptIRMethod?

    /// Batch-norm mode of the adapter (IPT itself has no batch norm and no dropout).
    public var training: Bool {
        get { adaptir?.training ?? false }
        set { adaptir?.training = newValue }
    }

    public init(preset: Preset, method: AdaptationMethod, seed: UInt64 = 0) {
        self.preset = preset
        self.method = method
        let specs = AdaptedIPT.parameterSpecs(preset: preset, method: method)
        store = ParameterStore(specs: specs, seed: seed) { AdaptedIPT.isTrainable($0, method: method) }
        adaptir = method == .adaptir ? AdaptIRMethod(store: store, preset: preset) : nil
        backbone = IPT(preset: preset, store: store, hooks: adaptir)
    }

    /// Which tensors a method trains.
    public static func isTrainable(_ spec: ParameterSpec, method: AdaptationMethod) -> Bool {
        switch method {
        case .adaptir: return spec.role == .adapter
        case .full: return spec.role == .backbone
        case .frozen: return false
        }
    }

    /// The state_dict layout of a preset with a method.
    public static func parameterSpecs(preset: Preset, method: AdaptationMethod) -> [ParameterSpec] {
        IPT.parameterSpecs(preset) { site in
            method == .adaptir ? AdaptIRMethod.parameterSpecs(site: site, preset: preset) : []
        }
    }

    /// x [N, 3, 48, 48] in [0, 1] -> restored [N, 3, 48s, 48s].
    public func callAsFunction(_ x: Tensor, task: Int) -> Tensor { backbone(x, task: task) }
}
