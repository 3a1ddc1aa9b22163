/// IPT with an adaptation method: the one object the trainer, the evaluator, `inspect` and `bench` build.
public final class AdaptedIPT {
    public let preset: Preset
    /// The method as chosen (name and the options given); `method.values` holds every resolved hyper-parameter.
    public let choice: MethodChoice
    public let method: any AdaptationMethod
    public let store: ParameterStore
    public let backbone: IPT

    /// Batch-norm mode of the method's layers (IPT itself has no batch norm and no dropout).
    public var training: Bool {
        get { method.training }
        set { method.training = newValue }
    }

    /// A model of `preset` adapted with `choice`. An unknown method or a bad hyper-parameter is a programming
    /// error here; user input goes through `MethodRegistry.resolve` (or `init(preset:choice:seed:)`) first.
    public convenience init(preset: Preset, method choice: MethodChoice, seed: UInt64 = 0) {
        do { try self.init(preset: preset, choice: choice, seed: seed) } catch {
            preconditionFailure("AdaptedIPT: \(error)")
        }
    }

    public init(preset: Preset, choice: MethodChoice, seed: UInt64 = 0) throws {
        self.preset = preset
        self.choice = choice
        let method = try MethodRegistry.make(choice, preset: preset)
        self.method = method
        let specs = AdaptedIPT.parameterSpecs(preset: preset, method: method)
        store = ParameterStore(specs: specs, seed: seed) { method.trains($0) }
        method.bind(store)
        backbone = IPT(preset: preset, store: store, hooks: method.hasHooks ? method : nil)
    }

    /// The state_dict layout of a preset with a method: the backbone's tensors with the method's per-layer tensors
    /// at the end of each layer and its global tensors at the end, those marked as owned by the method.
    public static func parameterSpecs(preset: Preset, method: any AdaptationMethod) -> [ParameterSpec] {
        func owned(_ specs: [ParameterSpec]) -> [ParameterSpec] {
            specs.map { var s = $0; s.owner = .method; return s }
        }
        return IPT.parameterSpecs(preset, layerExtras: { owned(method.layerParameters(site: $0)) })
            + owned(method.globalParameters())
    }

    /// The layout for a method choice; a bad choice is a programming error here (user input is resolved first).
    public static func parameterSpecs(preset: Preset, method choice: MethodChoice) -> [ParameterSpec] {
        do { return parameterSpecs(preset: preset, method: try MethodRegistry.make(choice, preset: preset)) } catch {
            preconditionFailure("AdaptedIPT.parameterSpecs: \(error)")
        }
    }

    /// x [N, 3, 48, 48] in [0, 1] -> restored [N, 3, 48s, 48s].
    public func callAsFunction(_ x: Tensor, task: Int) -> Tensor { backbone(x, task: task) }

    /// The checkpoint part that holds what this model trains and the method's state: the adapter part, or the whole
    /// model when backbone tensors train (full fine-tuning, or a method that unfreezes some).
    public var trainedPart: CheckpointPart { trainsBackbone ? .all : .adapter }

    /// Whether any backbone tensor trains (full fine-tuning, or a method that unfreezes some): then the backward
    /// computes weight gradients through the backbone, not only the input gradients an adapter needs.
    public var trainsBackbone: Bool { store.specs.contains { $0.owner == .backbone && store.isTrainable($0.key) } }
}
