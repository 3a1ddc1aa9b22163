/// SSF (Lian et al., NeurIPS 2022): a learnable per-feature scale and shift, y * gamma + beta, after every
/// LayerNorm, after the q, k and v projections and the output projection of every attention block (the decoder's
/// cross-attention counts as a second block), and after both MLP layers (before the ReLU for the first).
/// gamma ~ N(1, 0.02^2), beta ~ N(0, 0.02^2) as in SSF's code, so the model is close to, not equal to, the backbone
/// at initialisation. At ipt: 12 x 12,672 + 12 x 18,432 = 373,248 parameters (spec section 3, exact).
public final class SSFMethod: AdaptationMethod {
    public static let name = "ssf"
    public static let summary = "SSF: scale and shift after every norm, q/k/v, attention output and both MLP layers"
    public static let hyperParameters: [MethodHyperParameter] = []
    /// SSF trains ViTs at 5e-3 to 1e-2 (its VTAB configs); the short embedded budget uses the top of that range.
    public static let demoLearningRate: Float = 1e-2
    public static let paperLR4Noise30Set5: Double? = 25.41
    public static let identityAtInitialisation = false

    public let preset: Preset
    public let values: [String: Double]
    private var pairs: [String: (scale: Tensor, shift: Tensor)] = [:]

    public init(preset: Preset, values: [String: Double]) { self.preset = preset; self.values = values }

    public var adaptsProjections: Bool { true }

    static func name(of projection: Projection) -> String {
        switch projection {
        case .query(let b): return "\(b.rawValue).q"
        case .key(let b): return "\(b.rawValue).k"
        case .value(let b): return "\(b.rawValue).v"
        case .output(let b): return "\(b.rawValue).o"
        case .mlpHidden: return "linear1"
        case .mlpOutput: return "linear2"
        }
    }

    /// (name, width) of every scaled point of a layer, in state_dict order.
    func points(_ site: LayerSite) -> [(String, Int)] {
        let d = preset.embed
        let decoder: Bool
        if case .decoder = site { decoder = true } else { decoder = false }
        let blocks: [AttentionBlock] = decoder ? [.selfAttention, .crossAttention] : [.selfAttention]
        var out = (1...(decoder ? 3 : 2)).map { ("norm\($0)", d) }
        for b in blocks { for p in [Projection.query(b), .key(b), .value(b), .output(b)] { out.append((SSFMethod.name(of: p), d)) } }
        out.append((SSFMethod.name(of: .mlpHidden), preset.mlpHidden))
        out.append((SSFMethod.name(of: .mlpOutput), d))
        return out
    }

    public func layerParameters(site: LayerSite) -> [ParameterSpec] {
        points(site).flatMap { name, width in
            [ParameterSpec("\(site.prefix).ssf.\(name).scale", [width], .adapter, .gaussian(mean: 1, std: 0.02)),
             ParameterSpec("\(site.prefix).ssf.\(name).shift", [width], .adapter, .gaussian(mean: 0, std: 0.02))]
        }
    }

    public func bind(_ store: ParameterStore) {
        for site in sites {
            for (name, _) in points(site) {
                let k = "\(site.prefix).ssf.\(name)"
                pairs[k] = (store["\(k).scale"], store["\(k).shift"])
            }
        }
    }

    private func apply(_ y: Tensor, _ key: String) -> Tensor {
        guard let (g, b) = pairs[key] else { return y }
        return y * g + b
    }

    public func afterNorm(_ s: Tensor, index: Int, at site: LayerSite) -> Tensor {
        apply(s, "\(site.prefix).ssf.norm\(index)")
    }

    public func afterProjection(_ y: Tensor, input: Tensor, projection: Projection, at site: LayerSite) -> Tensor {
        apply(y, "\(site.prefix).ssf.\(SSFMethod.name(of: projection))")
    }

    /// One multiply-add per scaled feature and token.
    public func extraForwardFLOPs() -> Double {
        Double(preset.tokens) * 2 * Double(sites.reduce(0) { $0 + points($1).reduce(0) { $0 + $1.1 } })
    }
}
