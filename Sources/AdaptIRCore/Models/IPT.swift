import Foundation

/// IPT (Chen et al., CVPR 2021) as AdaptIR instantiates it (spec section 1): six task heads and tails around one
/// transformer body, mean shift and a global residual. Images enter in [0, 1] and are processed on the 0..255 scale.
public final class IPT {
    public let preset: Preset
    public let store: ParameterStore
    /// Adapter method plugged into the layers' insertion points (nil: the bare backbone).
    public var hooks: LayerHooks?

    let encoder: [EncoderLayer]
    let decoder: [DecoderLayer]

    /// RGB mean of DIV2K used by MeanShift (spec 1.1).
    public static let rgbMean: [Float] = [0.4488, 0.4371, 0.4040]
    public static let rgbRange: Float = 255

    public init(preset: Preset, store: ParameterStore, hooks: LayerHooks? = nil) {
        self.preset = preset
        self.store = store
        self.hooks = hooks
        encoder = (0..<preset.encoderLayers).map { EncoderLayer(store, index: $0, heads: preset.heads) }
        decoder = (0..<preset.decoderLayers).map { DecoderLayer(store, index: $0, heads: preset.heads) }
    }

    /// Restores a batch of 48x48 patches with task `task`'s head, query and tail:
    /// x [N, 3, 48, 48] in [0, 1] -> [N, 3, 48s, 48s] (not clamped).
    public func callAsFunction(_ x: Tensor, task: Int) -> Tensor {
        let p = preset.patchSize
        precondition(x.rank == 4 && x.shape[1] == 3 && x.shape[2] == p && x.shape[3] == p,
                     "IPT input must be [N, 3, \(p), \(p)], got \(x.shape)")
        precondition(task >= 0 && task < preset.taskCount, "task \(task) outside 0..<\(preset.taskCount)")
        // Each stage frees, when training, the activations it made that no backward reads (Autograd.releasingUnsaved).
        var h = conv2d(scale(x, IPT.rgbRange), store["sub_mean.weight"], store["sub_mean.bias"])
        h = Autograd.releasingUnsaved { head(h, task: task) }
        h = body(h, task: task) + h
        return Autograd.releasingUnsaved {
            let y = tail(h, task: task)
            return scale(conv2d(y, store["add_mean.weight"], store["add_mean.bias"]), 1 / IPT.rgbRange)
        }
    }

    /// conv3x3(3 -> n_feats) then two ResBlocks (conv5x5, ReLU, conv5x5, + identity).
    func head(_ x: Tensor, task t: Int) -> Tensor {
        var h = conv2d(x, store["head.\(t).0.weight"], store["head.\(t).0.bias"])
        for r in 1...2 {
            let k = "head.\(t).\(r).body"
            let a = relu(conv2d(h, store["\(k).0.weight"], store["\(k).0.bias"]))
            h = h + conv2d(a, store["\(k).2.weight"], store["\(k).2.bias"])
        }
        return h
    }

    /// Upsampler (conv + PixelShuffle stages, none at scale 1) then conv3x3(n_feats -> 3).
    func tail(_ x: Tensor, task t: Int) -> Tensor {
        var h = x
        for (i, r) in IPT.upsamplerStages(scale: preset.scales[t]).enumerated() {
            h = pixelShuffle(conv2d(h, store["tail.\(t).0.\(2 * i).weight"], store["tail.\(t).0.\(2 * i).bias"]), r)
        }
        return conv2d(h, store["tail.\(t).1.weight"], store["tail.\(t).1.bias"])
    }

    /// Pixel-shuffle factors of the upsampler stages: x2 -> [2], x3 -> [3], x4 -> [2, 2], x1 -> [].
    static func upsamplerStages(scale: Int) -> [Int] {
        switch scale {
        case 1: return []
        case 2, 3: return [scale]
        case 4: return [2, 2]
        default: preconditionFailure("unsupported scale \(scale)")
        }
    }

    /// The transformer body on [N, n_feats, 48, 48] (spec 1.3).
    func body(_ h: Tensor, task t: Int) -> Tensor {
        let d = preset.embed, l = preset.tokens
        var x = unfold(h, patch: preset.patchDim)                                            // [N, L, d]
        x = linear(x, store["body.linear_encoding.weight"], store["body.linear_encoding.bias"]) + x
        x = x + store["body.position_encoding.pe.weight"]                                    // added once
        for layer in encoder { x = Autograd.releasingUnsaved { layer(x, hooks: hooks) } }
        let queryPos = reshape(select(store["body.query_embed.weight"], index: t), [l, d])
        var y = x
        for layer in decoder { y = Autograd.releasingUnsaved { layer(y, memory: x, queryPos: queryPos, hooks: hooks) } }
        let m = linear(linearReLU(y, store["body.mlp_head.0.weight"], store["body.mlp_head.0.bias"]),
                       store["body.mlp_head.3.weight"], store["body.mlp_head.3.bias"])
        y = m + y
        return fold(y, channels: preset.nFeats, height: preset.patchSize, width: preset.patchSize, patch: preset.patchDim)
    }

    // MARK: - State dict layout

    /// Every backbone tensor in PyTorch state_dict order (`keys_ipt_adaptir.txt`), with torch's default
    /// initialisation; `layerExtras` inserts an adapter's tensors at the end of each layer (as AdaptIR's
    /// `self.adaptir` submodule appears after the norms).
    public static func parameterSpecs(_ p: Preset, layerExtras: (LayerSite) -> [ParameterSpec] = { _ in [] }) -> [ParameterSpec] {
        var s: [ParameterSpec] = []
        let nf = p.nFeats, d = p.embed
        func conv(_ key: String, _ cout: Int, _ cin: Int, _ k: Int, bias: Bool = true) {
            let bound = 1 / Float(cin * k * k).squareRoot()
            s.append(ParameterSpec("\(key).weight", [cout, cin, k, k], .backbone, .uniform(bound)))
            if bias { s.append(ParameterSpec("\(key).bias", [cout], .backbone, .uniform(bound))) }
        }
        func lin(_ key: String, _ out: Int, _ inF: Int) {
            let bound = 1 / Float(inF).squareRoot()
            s.append(ParameterSpec("\(key).weight", [out, inF], .backbone, .uniform(bound)))
            s.append(ParameterSpec("\(key).bias", [out], .backbone, .uniform(bound)))
        }
        func norm(_ key: String) {
            s.append(ParameterSpec("\(key).weight", [d], .backbone, .constant(1)))
            s.append(ParameterSpec("\(key).bias", [d], .backbone, .constant(0)))
        }
        func attention(_ key: String) {
            // torch: xavier_uniform on in_proj_weight [3d, d]; out_proj keeps Linear's default.
            s.append(ParameterSpec("\(key).in_proj_weight", [3 * d, d], .backbone, .uniform((6 / Float(4 * d)).squareRoot())))
            s.append(ParameterSpec("\(key).out_proj.weight", [d, d], .backbone, .uniform(1 / Float(d).squareRoot())))
        }
        let identity: [Float] = [1, 0, 0, 0, 1, 0, 0, 0, 1]
        s.append(ParameterSpec("sub_mean.weight", [3, 3, 1, 1], .fixed, .values(identity)))
        s.append(ParameterSpec("sub_mean.bias", [3], .fixed, .values(rgbMean.map { -rgbRange * $0 })))
        s.append(ParameterSpec("add_mean.weight", [3, 3, 1, 1], .fixed, .values(identity)))
        s.append(ParameterSpec("add_mean.bias", [3], .fixed, .values(rgbMean.map { rgbRange * $0 })))
        for t in 0..<p.taskCount {
            conv("head.\(t).0", nf, 3, 3)
            for r in 1...2 { conv("head.\(t).\(r).body.0", nf, nf, 5); conv("head.\(t).\(r).body.2", nf, nf, 5) }
        }
        lin("body.linear_encoding", d, d)
        lin("body.mlp_head.0", p.mlpHidden, d)
        lin("body.mlp_head.3", d, p.mlpHidden)
        s.append(ParameterSpec("body.query_embed.weight", [p.taskCount, p.tokens * d], .backbone, .normal(1)))
        for i in 0..<p.encoderLayers {
            let k = LayerSite.encoder(i).prefix
            attention("\(k).self_attn")
            lin("\(k).linear1", p.mlpHidden, d); lin("\(k).linear2", d, p.mlpHidden)
            norm("\(k).norm1"); norm("\(k).norm2")
            s += layerExtras(.encoder(i))
        }
        for i in 0..<p.decoderLayers {
            let k = LayerSite.decoder(i).prefix
            attention("\(k).self_attn"); attention("\(k).multihead_attn")
            lin("\(k).linear1", p.mlpHidden, d); lin("\(k).linear2", d, p.mlpHidden)
            norm("\(k).norm1"); norm("\(k).norm2"); norm("\(k).norm3")
            s += layerExtras(.decoder(i))
        }
        s.append(ParameterSpec("body.position_encoding.position_ids", [1, p.tokens], .buffer, .values((0..<p.tokens).map(Float.init))))
        s.append(ParameterSpec("body.position_encoding.pe.weight", [p.tokens, d], .backbone, .normal(1)))
        for t in 0..<p.taskCount {
            let scale = p.scales[t]
            for (i, r) in upsamplerStages(scale: scale).enumerated() { conv("tail.\(t).0.\(2 * i)", r * r * nf, nf, 3) }
            conv("tail.\(t).1", 3, nf, 3)
        }
        return s
    }
}
