/// AdaptFormer (Chen et al., NeurIPS 2022): a bottleneck parallel to the MLP whose input is the residual stream
/// before the MLP's norm ("before the second LayerNorm", spec section 3), scaled by s = 0.1 and added to the MLP
/// output:
///
///     y = MLP(LN(x)) + s * Up(ReLU(Down(x))),   Down d -> w (bias 0), Up w -> d zero-initialised.
///
/// With w = 24 at ipt: 24 x (2 x 576 x 24 + 24 + 576) = 677,952 parameters (the paper's 677K).
public final class AdaptFormerMethod: AdaptationMethod {
    public static let name = "adaptformer"
    public static let summary = "AdaptFormer: parallel bottleneck d -> w -> d with ReLU on the stream before the MLP's norm, scale 0.1"
    public static let hyperParameters = [
        MethodHyperParameter("width", "bottleneck width w (d/24 = 24 at ipt)", integer: true, range: 1...4096) { Double(max(1, $0.embed / 24)) },
        MethodHyperParameter("scale", "s multiplying the branch (AdaptFormer: 0.1)", integer: false, range: 1e-6...1e6) { _ in 0.1 },
    ]
    /// AdaptFormer's video recipe uses 1e-3 (batch 1024 scaled); the short embedded budget prefers more.
    public static let demoLearningRate: Float = 1e-2
    public static let paperLR4Noise30Set5: Double? = 26.1

    public let preset: Preset
    public let values: [String: Double]
    private var weights: [LayerSite: Bottleneck] = [:]

    public init(preset: Preset, values: [String: Double]) { self.preset = preset; self.values = values }

    public func layerParameters(site: LayerSite) -> [ParameterSpec] {
        Bottleneck.parameterSpecs(prefix: "\(site.prefix).adaptformer", embed: preset.embed, width: int("width"), downBias: .constant(0))
    }

    public func bind(_ store: ParameterStore) {
        for site in sites { weights[site] = Bottleneck(store, "\(site.prefix).adaptformer") }
    }

    public func parallelToMLP(residual: Tensor, normed: Tensor, at site: LayerSite) -> Tensor? {
        weights[site].map { scale($0(residual, activation: relu), float("scale")) }
    }

    public func extraForwardFLOPs() -> Double {
        Double(sites.count) * Bottleneck.flops(tokens: preset.tokens, embed: preset.embed, width: int("width"))
    }
}
