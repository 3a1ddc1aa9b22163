/// AdaptIR (Guo et al., NeurIPS 2024; spec section 2): one heterogeneous mixture-of-experts module (`AdaptIRModule`)
/// parallel to the MLP of every encoder and decoder layer, fed by the norm output that feeds the MLP, added to the
/// MLP output with scale 1. Keys `body.{encoder,decoder}.layers.{i}.adaptir.*` as in the released code.
/// At preset ipt: 24 modules x 29,069 = 697,656 parameters.
public final class AdaptIRMethod: AdaptationMethod {
    public static let name = "adaptir"
    public static let summary = "AdaptIR: LIM + FAM + CGM with the adaptive feature ensemble, parallel to every MLP (the paper's method)"
    public static let hyperParameters = [
        MethodHyperParameter("hidden", "bottleneck width h (the paper: d/24 = 24 at ipt)", integer: true, range: 2...4096) {
            Double(max(2, $0.embed / 24))
        },
    ]
    /// The embedded default's rate: in 500 steps the paper's 1e-4 does not move the adapter (datasets/README.md).
    public static let demoLearningRate: Float = 1e-2
    public static let paperLR4Noise30Set5: Double? = 26.46

    public let preset: Preset
    public let values: [String: Double]
    public private(set) var modules: [LayerSite: AdaptIRModule] = [:]
    public var training = true
    public var reducer: BatchNormReducer?

    public init(preset: Preset, values: [String: Double]) {
        self.preset = preset
        self.values = values
    }

    public func layerParameters(site: LayerSite) -> [ParameterSpec] {
        AdaptIRModule.parameterSpecs(prefix: "\(site.prefix).adaptir", embed: preset.embed, hidden: int("hidden"))
    }

    public func bind(_ store: ParameterStore) {
        for site in sites { modules[site] = AdaptIRModule(store, prefix: "\(site.prefix).adaptir", grid: preset.grid) }
    }

    public func parallelToMLP(residual: Tensor, normed: Tensor, at site: LayerSite) -> Tensor? {
        modules[site].map { $0(normed, training: training, reducer: reducer) }
    }

    /// Down and up projections, the LIM depthwise 3x3, the 1x1 convs and the CGM/AFE linears, per layer.
    public func extraForwardFLOPs() -> Double {
        let l = Double(preset.tokens), d = Double(preset.embed), h = Double(int("hidden"))
        return Double(sites.count) * (2 * 2 * l * d * h + 2 * h * 9 * l + 2 * 4 * h * l)
    }
}
