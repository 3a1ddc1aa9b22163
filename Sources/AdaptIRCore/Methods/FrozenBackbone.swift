/// The bare pretrained backbone, nothing trainable: the "Pretrain" rows of the paper's tables (eval only).
public final class FrozenBackbone: AdaptationMethod {
    public static let name = "frozen"
    public static let summary = "the unadapted backbone (nothing trains; evaluation only)"
    public static let hyperParameters: [MethodHyperParameter] = []
    public static let demoLearningRate: Float = 0
    public static let paperLR4Noise30Set5: Double? = 19.74

    public let preset: Preset
    public let values: [String: Double]
    public init(preset: Preset, values: [String: Double]) { self.preset = preset; self.values = values }

    public func trains(_ spec: ParameterSpec) -> Bool { false }
    public func bind(_ store: ParameterStore) {}
    public var hasHooks: Bool { false }
}
