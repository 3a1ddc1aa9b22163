/// Full fine-tuning: every backbone tensor trains and no tensor is added (the paper's upper row, and pre-training).
/// The mean-shift constants and the position ids never train.
public final class FullFineTuning: AdaptationMethod {
    public static let name = "full"
    public static let summary = "full fine-tuning: every backbone tensor trains, nothing is added"
    public static let hyperParameters: [MethodHyperParameter] = []
    /// 1e-2 diverged at ipt; the recipe's 1e-4 is kept.
    public static let demoLearningRate: Float = 1e-4
    public static let paperLR4Noise30Set5: Double? = 27.24

    public let preset: Preset
    public let values: [String: Double]
    public init(preset: Preset, values: [String: Double]) { self.preset = preset; self.values = values }

    public func trains(_ spec: ParameterSpec) -> Bool { spec.owner == .backbone && spec.role == .backbone }
    public func bind(_ store: ParameterStore) {}
    public var hasHooks: Bool { false }
}
