import Foundation

/// AdaptIR (Guo et al., NeurIPS 2024): a heterogeneous mixture-of-experts adapter parallel to the MLP of every
/// transformer layer (spec section 2). Tokens (N, 256, d) are viewed as a 16x16 map with d channels, projected down
/// to h channels, and three experts run on that map:
/// - `LocalInteraction` (LIM, local spatial): a per-channel 3x3 kernel built from A(h x r) B(r x 9);
/// - `FrequencyAffine` (FAM, global spatial): affine maps on the magnitude and phase of the orthonormal rfft2;
/// - `ChannelGating` (CGM, channel): an attention-pooled descriptor through a small FFN (no sigmoid);
/// the `AdaptiveFeatureEnsemble` cross-gates LIM and FAM, CGM scales the result, and a bias-free up-projection
/// (zero at start, so the adapted model equals the backbone at step 0) maps back to d.
public final class AdaptIRModule {
    public let prefix: String
    let grid: Int
    let down, downBias, bnWeight, bnBias: Tensor
    let bn: BatchNormState
    let lim: LocalInteraction
    let fam: FrequencyAffine
    let cgm: ChannelGating
    let afe: AdaptiveFeatureEnsemble
    let up: Tensor

    public init(_ store: ParameterStore, prefix: String, grid: Int) {
        self.prefix = prefix
        self.grid = grid
        down = store["\(prefix).head.weight"]
        downBias = store["\(prefix).head.bias"]
        bnWeight = store["\(prefix).BN.weight"]; bnBias = store["\(prefix).BN.bias"]
        bn = BatchNormState(runningMean: store["\(prefix).BN.running_mean"], runningVar: store["\(prefix).BN.running_var"],
                            numBatchesTracked: store["\(prefix).BN.num_batches_tracked"])
        lim = LocalInteraction(store, prefix)
        fam = FrequencyAffine(store, prefix)
        cgm = ChannelGating(store, prefix)
        afe = AdaptiveFeatureEnsemble(store, prefix)
        up = store["\(prefix).tail.weight"]
    }

    /// s: the norm output feeding the MLP, (N, L, d) -> the adapter's output (N, L, d).
    public func callAsFunction(_ s: Tensor, training: Bool, reducer: BatchNormReducer? = nil) -> Tensor {
        let n = s.shape[0], l = s.shape[1]
        let h = downBias.count, d = s.shape[2]
        // x = BN(Conv1x1_down(x0)): the 1x1 conv on the token map is a linear on the tokens.
        var x = linear(s, reshape(down, [h, d]), downBias)                         // [N, L, h]
        x = reshape(permute(x, [0, 2, 1]), [n, h, grid, grid])                   // [N, h, 16, 16]
        x = batchNorm2d(x, weight: bnWeight, bias: bnBias, state: bn, training: training, reducer: reducer)
        let g = fam(x)
        let lo = lim(x)
        let cs = cgm(x)                                                          // [N, h]
        let y = afe(local: lo, global: g)                                        // [N, h, 16, 16]
        let z = reshape(cs, [n, h, 1, 1]) * y
        // out = Conv1x1_up_nobias(z), back to tokens.
        let zt = permute(reshape(z, [n, h, l]), [0, 2, 1])                      // [N, L, h]
        return linear(zt, reshape(up, [d, h]))
    }

    /// LIM rank and CGM width for bottleneck width h: max(1, h / 2) (12 at h = 24).
    public static func rank(hidden h: Int) -> Int { max(1, h / 2) }
    /// Channel-interaction width of the Adaptive Feature Ensemble: max(1, h / 8) (3 at h = 24).
    public static func gateHidden(hidden h: Int) -> Int { max(1, h / 8) }

    /// The tensors of one module (token width d, bottleneck h) in state_dict order, initialised as spec 2.4.
    public static func parameterSpecs(prefix p: String, embed d: Int, hidden h: Int) -> [ParameterSpec] {
        let r = rank(hidden: h), c = gateHidden(hidden: h)
        let k = r  // CGM FFN width: h / 2, same rule as the LIM rank
        func u(_ fanIn: Int) -> Initializer { .uniform(1 / Float(fanIn).squareRoot()) }
        return [
            ParameterSpec("\(p).conv_weight_A", [h, r], .adapter, u(r)),
            ParameterSpec("\(p).conv_weight_B", [r, 9], .adapter, u(9)),
            ParameterSpec("\(p).conv_bias", [h], .adapter, .constant(0)),
            ParameterSpec("\(p).head.weight", [h, d, 1, 1], .adapter, u(d)),
            ParameterSpec("\(p).head.bias", [h], .adapter, u(d)),
            ParameterSpec("\(p).BN.weight", [h], .adapter, .constant(1)),
            ParameterSpec("\(p).BN.bias", [h], .adapter, .constant(0)),
            ParameterSpec("\(p).BN.running_mean", [h], .buffer, .constant(0)),
            ParameterSpec("\(p).BN.running_var", [h], .buffer, .constant(1)),
            ParameterSpec("\(p).BN.num_batches_tracked", [], .buffer, .constant(0)),
            ParameterSpec("\(p).amp_fuse.weight", [h, 1, 1, 1], .adapter, .constant(1)),
            ParameterSpec("\(p).amp_fuse.bias", [h], .adapter, .constant(0)),
            ParameterSpec("\(p).pha_fuse.weight", [h, 1, 1, 1], .adapter, .constant(1)),
            ParameterSpec("\(p).pha_fuse.bias", [h], .adapter, .constant(0)),
            ParameterSpec("\(p).compress.weight", [1, h, 1, 1], .adapter, u(h)),
            ParameterSpec("\(p).compress.bias", [1], .adapter, u(h)),
            ParameterSpec("\(p).proj.0.weight", [k, h], .adapter, u(h)),
            ParameterSpec("\(p).proj.0.bias", [k], .adapter, u(h)),
            ParameterSpec("\(p).proj.2.weight", [h, k], .adapter, u(k)),
            ParameterSpec("\(p).proj.2.bias", [h], .adapter, u(k)),
            ParameterSpec("\(p).tail.weight", [d, h, 1, 1], .adapter, .constant(0)),
            ParameterSpec("\(p).channel_interaction.1.weight", [c, h, 1, 1], .adapter, u(h)),
            ParameterSpec("\(p).channel_interaction.1.bias", [c], .adapter, u(h)),
            ParameterSpec("\(p).channel_interaction.3.weight", [h, c, 1, 1], .adapter, .constant(0)),
            ParameterSpec("\(p).channel_interaction.3.bias", [h], .adapter, .constant(0)),
            ParameterSpec("\(p).spatial_interaction.weight", [1, h, 1, 1], .adapter, .constant(0)),
            ParameterSpec("\(p).spatial_interaction.bias", [1], .adapter, .constant(0)),
        ]
    }
}

/// LIM: l = depthwise_conv3x3(x, (A B).reshape(h, 1, 3, 3), conv_bias), zero padding 1.
struct LocalInteraction {
    let a, b, bias: Tensor
    init(_ store: ParameterStore, _ p: String) {
        a = store["\(p).conv_weight_A"]; b = store["\(p).conv_weight_B"]; bias = store["\(p).conv_bias"]
    }
    func callAsFunction(_ x: Tensor) -> Tensor {
        let kernel = reshape(matmul(a, b), [a.shape[0], 1, 3, 3])
        return depthwiseConv2d(x, kernel, bias)
    }
}

/// FAM: X = rfft2_ortho(x); Mag = a_c |X| + b_c; Pha = p_c angle(X) + q_c; g = |irfft2_ortho(Mag e^{i Pha})|.
public struct FrequencyAffine {
    let ampW, ampB, phaW, phaB: Tensor
    /// The FAM of the AdaptIR module whose state_dict prefix is `p` (e.g. `body.encoder.layers.0.adaptir`).
    public init(_ store: ParameterStore, _ p: String) {
        ampW = store["\(p).amp_fuse.weight"]; ampB = store["\(p).amp_fuse.bias"]
        phaW = store["\(p).pha_fuse.weight"]; phaB = store["\(p).pha_fuse.bias"]
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let c = x.shape[1], hh = x.shape[2], ww = x.shape[3]
        let spectrum = rfft2(x)                                                  // [N, h, H, W/2+1, 2]
        // Depthwise 1x1 convs = per-channel scale and shift, broadcast as [h, 1, 1].
        let mag = complexAbs(spectrum) * reshape(ampW, [c, 1, 1]) + reshape(ampB, [c, 1, 1])
        let pha = complexAngle(spectrum) * reshape(phaW, [c, 1, 1]) + reshape(phaB, [c, 1, 1])
        return absolute(irfft2(polar(magnitude: mag, phase: pha), height: hh, width: ww))
    }
}

/// CGM: w = softmax_p(Conv1x1(h->1)(x)); v = sum_p x[:, :, p] w[p]; score = Linear(k->h)(GELU(Linear(h->k)(v))).
struct ChannelGating {
    let compressW, compressB, w0, b0, w2, b2: Tensor
    init(_ store: ParameterStore, _ p: String) {
        compressW = store["\(p).compress.weight"]; compressB = store["\(p).compress.bias"]
        w0 = store["\(p).proj.0.weight"]; b0 = store["\(p).proj.0.bias"]
        w2 = store["\(p).proj.2.weight"]; b2 = store["\(p).proj.2.bias"]
    }
    func callAsFunction(_ x: Tensor) -> Tensor {
        let n = x.shape[0], c = x.shape[1], positions = x.shape[2] * x.shape[3]
        let logits = reshape(conv2d(x, compressW, compressB), [n, 1, positions])
        let w = softmax(logits, axis: 2)
        let v = sum(reshape(x, [n, c, positions]) * w, axes: [2])               // [N, h]
        return linear(gelu(linear(v, w0, b0)), w2, b2)
    }
}

/// Adaptive Feature Ensemble: y = sigmoid(Conv(GELU(Conv(GAP(g))))) * l + sigmoid(Conv1x1(h->1)(l)) * g —
/// the global branch gates the local one per channel, the local branch gates the global one per position.
struct AdaptiveFeatureEnsemble {
    let c1W, c1B, c3W, c3B, sW, sB: Tensor
    init(_ store: ParameterStore, _ p: String) {
        c1W = store["\(p).channel_interaction.1.weight"]; c1B = store["\(p).channel_interaction.1.bias"]
        c3W = store["\(p).channel_interaction.3.weight"]; c3B = store["\(p).channel_interaction.3.bias"]
        sW = store["\(p).spatial_interaction.weight"]; sB = store["\(p).spatial_interaction.bias"]
    }
    func callAsFunction(local l: Tensor, global g: Tensor) -> Tensor {
        let n = g.shape[0], c = g.shape[1], hidden = c1W.shape[0]
        let pooled = mean(g, axes: [2, 3])                                       // [N, h]
        let t = gelu(linear(pooled, reshape(c1W, [hidden, c]), c1B))
        let channelGate = sigmoid(linear(t, reshape(c3W, [c, hidden]), c3B))     // [N, h]
        let spatialGate = sigmoid(conv2d(l, sW, sB))                             // [N, 1, 16, 16]
        return reshape(channelGate, [n, c, 1, 1]) * l + spatialGate * g
    }
}
