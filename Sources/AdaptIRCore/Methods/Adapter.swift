/// Adapter (Houlsby et al., ICML 2019), sequential form: a bottleneck after the MLP of every layer, inside the
/// residual branch, with a learnable per-channel scale (spec section 3, Fig. 7b: "a bottleneck with an
/// intermediate GELU"):
///
///     y = f + scale * Up(GELU(Down(f))),   f = the MLP output; Down d -> w, Up w -> d with biases.
///
/// Up starts at zero (identity at initialisation), scale at one. With w = 24 at ipt: 24 x (2 x 576 x 24 + 24 + 576
/// + 576) = 691,776 parameters (the paper's 691K). The width scales with the embedding (d / 24).
public final class SequentialAdapter: AdaptationMethod {
    public static let name = "adapter"
    public static let summary = "Adapter: sequential bottleneck d -> w -> d with GELU and a learnable scale after every MLP"
    public static let hyperParameters = [
        MethodHyperParameter("width", "bottleneck width w (d/24 = 24 at ipt)", integer: true, range: 1...4096) { Double(max(1, $0.embed / 24)) },
    ]
    /// Adapters are trained at about 1e-3 in the PETL benchmarks; the short embedded budget prefers more.
    public static let demoLearningRate: Float = 3e-3
    public static let paperLR4Noise30Set5: Double? = 25.6

    public let preset: Preset
    public let values: [String: Double]
    private var weights: [LayerSite: Bottleneck] = [:]

    public init(preset: Preset, values: [String: Double]) { self.preset = preset; self.values = values }

    public func layerParameters(site: LayerSite) -> [ParameterSpec] {
        let p = "\(site.prefix).adapter"
        return Bottleneck.parameterSpecs(prefix: p, embed: preset.embed, width: int("width"), downBias: .uniform(1 / Float(preset.embed).squareRoot()))
            + [ParameterSpec("\(p).scale", [preset.embed], .adapter, .constant(1))]
    }

    public func bind(_ store: ParameterStore) {
        for site in sites { weights[site] = Bottleneck(store, "\(site.prefix).adapter", scale: store["\(site.prefix).adapter.scale"]) }
    }

    public func afterMLP(_ y: Tensor, at site: LayerSite) -> Tensor {
        guard let b = weights[site] else { return y }
        return y + b.scale! * b(y, activation: gelu)
    }

    public func extraForwardFLOPs() -> Double {
        Double(sites.count) * Bottleneck.flops(tokens: preset.tokens, embed: preset.embed, width: int("width"))
    }
}

/// A d -> w -> d bottleneck with biases (Adapter, AdaptFormer): keys `PREFIX.down.{weight,bias}`, `PREFIX.up.*`.
struct Bottleneck {
    let downW, downB, upW, upB: Tensor
    let scale: Tensor?

    init(_ store: ParameterStore, _ p: String, scale: Tensor? = nil) {
        downW = store["\(p).down.weight"]; downB = store["\(p).down.bias"]
        upW = store["\(p).up.weight"]; upB = store["\(p).up.bias"]
        self.scale = scale
    }

    /// Up(activation(Down(x))).
    func callAsFunction(_ x: Tensor, activation: (Tensor) -> Tensor) -> Tensor {
        linear(activation(linear(x, downW, downB)), upW, upB)
    }

    /// Down: torch's default (kaiming-uniform weight, U(+-1/sqrt(d))); its bias as given; Up: zero.
    static func parameterSpecs(prefix p: String, embed d: Int, width w: Int, downBias: Initializer) -> [ParameterSpec] {
        [ParameterSpec("\(p).down.weight", [w, d], .adapter, .uniform(1 / Float(d).squareRoot())),
         ParameterSpec("\(p).down.bias", [w], .adapter, downBias),
         ParameterSpec("\(p).up.weight", [d, w], .adapter, .constant(0)),
         ParameterSpec("\(p).up.bias", [d], .adapter, .constant(0))]
    }

    static func flops(tokens l: Int, embed d: Int, width w: Int) -> Double { 2 * 2 * Double(l * d * w) }
}
