/// VPT-deep (Jia et al., ECCV 2022): P learnable prompt tokens prepended to the input of every encoder and decoder
/// layer and dropped again after it. Prompts have no position embedding and a zero query position (the decoder
/// pads `query_pos` with zeros in front, as the released IPT code does), so they steer the image tokens only through
/// attention. Initialised U(+-sqrt(6 / (3 * 3 * 3 + d))), VPT's rule with IPT's 3x3 patches.
/// With P = 64 at ipt: 24 x 64 x 576 = 884,736 parameters (the paper's 884K).
public final class VPTDeep: AdaptationMethod {
    public static let name = "vpt"
    public static let summary = "VPT-deep: prompt tokens prepended to every layer's input, dropped after the layer"
    public static let hyperParameters = [
        MethodHyperParameter("prompts", "prompt tokens per layer (64 at ipt: a quarter of the 256 tokens)", integer: true, range: 1...4096) {
            Double(max(1, $0.tokens / 4))
        },
    ]
    /// VPT sweeps large rates for its prompts (its VTAB grid goes up to 50 with SGD); with AdamW on the short
    /// embedded budget 1e-2 is used.
    public static let demoLearningRate: Float = 1e-2
    public static let paperLR4Noise30Set5: Double? = 24.11
    public static let identityAtInitialisation = false

    public let preset: Preset
    public let values: [String: Double]
    private var prompts: [LayerSite: Tensor] = [:]

    public init(preset: Preset, values: [String: Double]) { self.preset = preset; self.values = values }

    public func layerParameters(site: LayerSite) -> [ParameterSpec] {
        let d = preset.embed, bound = (6 / Float(3 * preset.patchDim * preset.patchDim + d)).squareRoot()
        return [ParameterSpec("\(site.prefix).vpt.prompt", [int("prompts"), d], .adapter, .uniform(bound))]
    }

    public func bind(_ store: ParameterStore) {
        for site in sites { prompts[site] = store["\(site.prefix).vpt.prompt"] }
    }

    public func layerInput(_ x: Tensor, at site: LayerSite) -> Tensor {
        guard let p = prompts[site] else { return x }
        let n = x.shape[0]
        return concatenate([expand(reshape(p, [1] + p.shape), to: [n] + p.shape), x], axis: 1)
    }

    public func layerOutput(_ x: Tensor, at site: LayerSite) -> Tensor {
        guard prompts[site] != nil else { return x }
        let p = int("prompts")
        return narrow(x, axis: 1, start: p, length: x.shape[1] - p)
    }

    /// What P more tokens cost in every layer: projections and MLP grow with the token count, self-attention with
    /// its square, cross-attention (keys are the encoder's 256 tokens) linearly.
    public func extraForwardFLOPs() -> Double {
        let l = Double(preset.tokens), d = Double(preset.embed), m = Double(preset.mlpHidden), p = Double(int("prompts"))
        let selfAttention = 2 * 4 * p * d * d + 2 * 2 * d * ((l + p) * (l + p) - l * l)
        let crossAttention = 2 * 2 * p * d * d + 2 * 2 * d * p * l
        let mlp = 2 * 2 * p * d * m
        return Double(preset.encoderLayers) * (selfAttention + mlp)
            + Double(preset.decoderLayers) * (selfAttention + crossAttention + mlp)
    }
}
