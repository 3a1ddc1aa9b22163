/// LoRA (Hu et al., ICLR 2022): a low-rank update of the query and value projections of every attention block
/// (self- and cross-attention: 36 blocks at ipt), not merged at test time (the paper's FLOPs grow):
///
///     q = Wq x + s * B_q (A_q x),   v = Wv x + s * B_v (A_v x),   A: [r, d] kaiming-uniform, B: [d, r] zero.
///
/// With r = 12 at ipt: 36 blocks x 2 projections x 2 x 12 x 576 = 995,328 parameters (spec section 3, the paper's
/// 995K). The rank scales with the embedding (d / 48), the scale s = alpha / r defaults to 1 (alpha = r).
public final class LoRAMethod: AdaptationMethod {
    public static let name = "lora"
    public static let summary = "LoRA: low-rank updates of the query and value projections of every attention block"
    public static let hyperParameters = [
        MethodHyperParameter("rank", "rank r of each update (d/48 = 12 at ipt)", integer: true, range: 1...4096) { Double(max(1, $0.embed / 48)) },
        MethodHyperParameter("scale", "s = alpha / r multiplying B A x", integer: false, range: 1e-6...1e6) { _ in 1 },
    ]
    /// LoRA's own recipe for ViTs (e.g. the PETL benchmarks) trains at 1e-3; the short embedded budget at
    /// preset small prefers a larger one (docs/compare.md, the --lr-sweep there).
    public static let demoLearningRate: Float = 3e-3
    public static let paperLR4Noise30Set5: Double? = 25.19

    public let preset: Preset
    public let values: [String: Double]
    private var factors: [String: (a: Tensor, b: Tensor)] = [:]

    public init(preset: Preset, values: [String: Double]) { self.preset = preset; self.values = values }

    public var adaptsProjections: Bool { true }

    static func key(_ site: LayerSite, _ block: AttentionBlock, _ letter: String) -> String {
        "\(site.prefix).\(block.rawValue).lora_\(letter)"
    }

    static func blocks(_ site: LayerSite) -> [AttentionBlock] {
        if case .decoder = site { return [.selfAttention, .crossAttention] }
        return [.selfAttention]
    }

    public func layerParameters(site: LayerSite) -> [ParameterSpec] {
        let d = preset.embed, r = int("rank")
        return LoRAMethod.blocks(site).flatMap { block in
            ["q", "v"].flatMap { letter in
                [ParameterSpec("\(LoRAMethod.key(site, block, letter)).A", [r, d], .adapter, .uniform(1 / Float(d).squareRoot())),
                 ParameterSpec("\(LoRAMethod.key(site, block, letter)).B", [d, r], .adapter, .constant(0))]
            }
        }
    }

    public func bind(_ store: ParameterStore) {
        for site in sites {
            for block in LoRAMethod.blocks(site) {
                for letter in ["q", "v"] {
                    let k = LoRAMethod.key(site, block, letter)
                    factors[k] = (store["\(k).A"], store["\(k).B"])
                }
            }
        }
    }

    public func afterProjection(_ y: Tensor, input: Tensor, projection: Projection, at site: LayerSite) -> Tensor {
        let k: String
        switch projection {
        case .query(let block): k = LoRAMethod.key(site, block, "q")
        case .value(let block): k = LoRAMethod.key(site, block, "v")
        default: return y
        }
        guard let (a, b) = factors[k] else { return y }
        return y + scale(linear(linear(input, a), b), float("scale"))
    }

    public func extraForwardFLOPs() -> Double {
        let l = Double(preset.tokens), d = Double(preset.embed), r = Double(int("rank"))
        let blocks = Double(preset.encoderLayers + 2 * preset.decoderLayers)
        return blocks * 2 * (2 * 2 * l * d * r)
    }
}
