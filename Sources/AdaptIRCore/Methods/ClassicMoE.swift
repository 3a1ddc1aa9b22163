/// A classic mixture of experts on AdaptIR's shared projections (the paper's Appendix H ablation and SIDD table:
/// homogeneous experts instead of AdaptIR's heterogeneous LIM/FAM/CGM): parallel to every MLP,
///
///     x = BN(Down(s)) on the 16x16 token map;  g = softmax(Router(GAP(x)))  (per sample, over E experts)
///     y = Up( sum_e g_e * GELU(DWConv3x3_e(x)) )   with Up zero-initialised (identity at initialisation).
///
/// Down (d -> h, with bias), BN and Up (h -> d, no bias) are AdaptIR's. The experts are E = 3 depthwise 3x3
/// convolutions with bias (the same local operator for every expert). Spec section 3 fits 667,080 = 24 x (13,848 +
/// 48 + 13,824 + 75) with parameter-free experts; experts with weights of their own give 24 x 28,515 = 684,360 at
/// ipt (2.6% above the paper's 667K), which is the configuration here.
public final class ClassicMoE: AdaptationMethod {
    public static let name = "moe"
    public static let summary = "classic MoE: three homogeneous depthwise-conv experts and a learned router on AdaptIR's projections"
    public static let hyperParameters = [
        MethodHyperParameter("hidden", "bottleneck width h (d/24 = 24 at ipt)", integer: true, range: 1...4096) { Double(max(2, $0.embed / 24)) },
        MethodHyperParameter("experts", "number of experts E", integer: true, range: 1...64) { _ in 3 },
    ]
    /// As AdaptIR, which shares its projections.
    public static let demoLearningRate: Float = 1e-2

    public let preset: Preset
    public let values: [String: Double]
    public var training = true
    public var reducer: BatchNormReducer?
    private var layers: [LayerSite: Weights] = [:]

    struct Weights {
        let down, downB, bnW, bnB, router, routerB, up: Tensor
        let bn: BatchNormState
        let experts: [(w: Tensor, b: Tensor)]
    }

    public init(preset: Preset, values: [String: Double]) { self.preset = preset; self.values = values }

    public func layerParameters(site: LayerSite) -> [ParameterSpec] {
        let p = "\(site.prefix).moe", d = preset.embed, h = int("hidden"), e = int("experts")
        func u(_ fanIn: Int) -> Initializer { .uniform(1 / Float(fanIn).squareRoot()) }
        var specs = [
            ParameterSpec("\(p).head.weight", [h, d], .adapter, u(d)),
            ParameterSpec("\(p).head.bias", [h], .adapter, u(d)),
            ParameterSpec("\(p).BN.weight", [h], .adapter, .constant(1)),
            ParameterSpec("\(p).BN.bias", [h], .adapter, .constant(0)),
            ParameterSpec("\(p).BN.running_mean", [h], .buffer, .constant(0)),
            ParameterSpec("\(p).BN.running_var", [h], .buffer, .constant(1)),
            ParameterSpec("\(p).BN.num_batches_tracked", [], .buffer, .constant(0)),
            ParameterSpec("\(p).router.weight", [e, h], .adapter, u(h)),
            ParameterSpec("\(p).router.bias", [e], .adapter, u(h)),
        ]
        for i in 0..<e {
            specs.append(ParameterSpec("\(p).experts.\(i).weight", [h, 1, 3, 3], .adapter, u(9)))
            specs.append(ParameterSpec("\(p).experts.\(i).bias", [h], .adapter, u(9)))
        }
        specs.append(ParameterSpec("\(p).tail.weight", [d, h], .adapter, .constant(0)))
        return specs
    }

    public func bind(_ store: ParameterStore) {
        for site in sites {
            let p = "\(site.prefix).moe"
            layers[site] = Weights(
                down: store["\(p).head.weight"], downB: store["\(p).head.bias"],
                bnW: store["\(p).BN.weight"], bnB: store["\(p).BN.bias"],
                router: store["\(p).router.weight"], routerB: store["\(p).router.bias"], up: store["\(p).tail.weight"],
                bn: BatchNormState(runningMean: store["\(p).BN.running_mean"], runningVar: store["\(p).BN.running_var"],
                                   numBatchesTracked: store["\(p).BN.num_batches_tracked"]),
                experts: (0..<int("experts")).map { (store["\(p).experts.\($0).weight"], store["\(p).experts.\($0).bias"]) })
        }
    }

    public func parallelToMLP(residual: Tensor, normed s: Tensor, at site: LayerSite) -> Tensor? {
        guard let w = layers[site] else { return nil }
        let n = s.shape[0], l = s.shape[1], h = w.downB.count, grid = preset.grid
        var x = permute(linear(s, w.down, w.downB), [0, 2, 1])                      // [N, h, L]
        x = batchNorm2d(reshape(x, [n, h, grid, grid]), weight: w.bnW, bias: w.bnB, state: w.bn, training: training, reducer: reducer)
        let gates = softmax(linear(mean(x, axes: [2, 3]), w.router, w.routerB), axis: 1)   // [N, E]
        var y: Tensor?
        for (e, expert) in w.experts.enumerated() {
            let g = reshape(narrow(gates, axis: 1, start: e, length: 1), [n, 1, 1, 1])
            let term = g * gelu(depthwiseConv2d(x, expert.w, expert.b))
            y = y.map { $0 + term } ?? term
        }
        let tokens = permute(reshape(y!, [n, h, l]), [0, 2, 1])                     // [N, L, h]
        return linear(tokens, w.up)
    }

    public func extraForwardFLOPs() -> Double {
        let l = Double(preset.tokens), d = Double(preset.embed), h = Double(int("hidden")), e = Double(int("experts"))
        return Double(sites.count) * (2 * 2 * l * d * h + e * 2 * h * 9 * l)
    }
}
