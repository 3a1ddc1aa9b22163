/// One multi-head attention block as torch's `nn.MultiheadAttention(d, heads, bias=False)`: q/k/v from the row
/// blocks of one [3d, d] `in_proj_weight`, scaled dot-product attention, bias-free output projection.
struct AttentionWeights {
    let inProj: Tensor
    let outProj: Tensor
    let block: AttentionBlock

    init(_ store: ParameterStore, _ prefix: String, _ block: AttentionBlock) {
        inProj = store["\(prefix).\(block.rawValue).in_proj_weight"]
        outProj = store["\(prefix).\(block.rawValue).out_proj.weight"]
        self.block = block
    }

    func callAsFunction(query: Tensor, key: Tensor, value: Tensor, heads: Int, hooks: LayerHooks?, site: LayerSite) -> Tensor {
        let d = outProj.shape[0]
        func project(_ x: Tensor, _ rows: Range<Int>, _ p: Projection) -> Tensor {
            let y = linear(x, inProj, nil, rows: rows)
            return hooks?.afterProjection(y, input: x, projection: p, at: site) ?? y
        }
        let q = project(query, 0..<d, .query(block))
        let k = project(key, d..<(2 * d), .key(block))
        let v = project(value, (2 * d)..<(3 * d), .value(block))
        let o = scaledDotProductAttention(q: q, k: k, v: v, heads: heads)
        let y = linear(o, outProj)
        return hooks?.afterProjection(y, input: o, projection: .output(block), at: site) ?? y
    }
}

/// The FFN of a layer: linear2(ReLU(linear1(s))).
struct FeedForwardWeights {
    let w1, b1, w2, b2: Tensor

    init(_ store: ParameterStore, _ prefix: String) {
        w1 = store["\(prefix).linear1.weight"]; b1 = store["\(prefix).linear1.bias"]
        w2 = store["\(prefix).linear2.weight"]; b2 = store["\(prefix).linear2.bias"]
    }

    func callAsFunction(_ s: Tensor, hooks: LayerHooks?, site: LayerSite) -> Tensor {
        if let hooks, hooks.adaptsProjections {
            let a = relu(hooks.afterProjection(linear(s, w1, b1), input: s, projection: .mlpHidden, at: site))
            return hooks.afterProjection(linear(a, w2, b2), input: a, projection: .mlpOutput, at: site)
        }
        let a = linearReLU(s, w1, b1)
        let y = linear(a, w2, b2)
        // The hidden layer (4d wide: the largest activation of a layer) is read again only by the weight gradient of
        // linear2; linearReLU's backward keeps its own bit mask. With linear2 frozen (every PETL method here), its
        // values can go now instead of staying alive through the graph until the backward.
        if Autograd.isEnabled && !w2.requiresGrad { a.releaseStorage() }
        return y
    }
}

/// LayerNorm over the token features, eps 1e-5.
struct NormWeights {
    let weight, bias: Tensor
    init(_ store: ParameterStore, _ key: String) {
        weight = store["\(key).weight"]; bias = store["\(key).bias"]
    }
    func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias, eps: 1e-5) }
}

/// The FFN sublayer shared by both layer kinds: x + (FFN(s) + parallel(s)), s = norm(x).
private func feedForwardSublayer(_ x: Tensor, norm: NormWeights, normIndex: Int, ffn: FeedForwardWeights,
                                 hooks: LayerHooks?, site: LayerSite) -> Tensor {
    var s = norm(x)
    if let hooks { s = hooks.afterNorm(s, index: normIndex, at: site) }
    var y = ffn(s, hooks: hooks, site: site)
    if let hooks {
        if let p = hooks.parallelToMLP(residual: x, normed: s, at: site) { y = y + p }
        y = hooks.afterMLP(y, at: site)
    }
    return x + y
}

/// IPT encoder layer (pre-norm, DETR style):
///   s = LN1(x); x = x + MHA(s, s, s);  s = LN2(x); x = x + (FFN(s) + adapter(s)).
struct EncoderLayer {
    let site: LayerSite
    let heads: Int
    let norm1, norm2: NormWeights
    let attention: AttentionWeights
    let ffn: FeedForwardWeights

    init(_ store: ParameterStore, index: Int, heads: Int) {
        site = .encoder(index)
        let p = site.prefix
        self.heads = heads
        norm1 = NormWeights(store, "\(p).norm1"); norm2 = NormWeights(store, "\(p).norm2")
        attention = AttentionWeights(store, p, .selfAttention)
        ffn = FeedForwardWeights(store, p)
    }

    func callAsFunction(_ input: Tensor, hooks: LayerHooks?) -> Tensor {
        var x = hooks?.layerInput(input, at: site) ?? input
        var s = norm1(x)
        if let hooks { s = hooks.afterNorm(s, index: 1, at: site) }
        x = x + attention(query: s, key: s, value: s, heads: heads, hooks: hooks, site: site)
        x = feedForwardSublayer(x, norm: norm2, normIndex: 2, ffn: ffn, hooks: hooks, site: site)
        return hooks?.layerOutput(x, at: site) ?? x
    }
}

/// IPT decoder layer with per-task query positions qp (added to queries and self-attention keys):
///   s = LN1(t); t = t + MHA(s+qp, s+qp, s);  s = LN2(t); t = t + MHA(s+qp, mem, mem);
///   s = LN3(t); t = t + (FFN(s) + adapter(s)).
struct DecoderLayer {
    let site: LayerSite
    let heads: Int
    let norm1, norm2, norm3: NormWeights
    let selfAttention, crossAttention: AttentionWeights
    let ffn: FeedForwardWeights

    init(_ store: ParameterStore, index: Int, heads: Int) {
        site = .decoder(index)
        let p = site.prefix
        self.heads = heads
        norm1 = NormWeights(store, "\(p).norm1"); norm2 = NormWeights(store, "\(p).norm2"); norm3 = NormWeights(store, "\(p).norm3")
        selfAttention = AttentionWeights(store, p, .selfAttention)
        crossAttention = AttentionWeights(store, p, .crossAttention)
        ffn = FeedForwardWeights(store, p)
    }

    func callAsFunction(_ input: Tensor, memory: Tensor, queryPos: Tensor, hooks: LayerHooks?) -> Tensor {
        var t = hooks?.layerInput(input, at: site) ?? input
        // Tokens a method prepended (VPT's prompts) get a zero query position, as the released IPT code's
        // `with_pos_embed` pads `query_pos` with zeros in front when the sequence is longer than 256 tokens.
        var queryPos = queryPos
        if t.shape[1] > queryPos.shape[0] {
            queryPos = concatenate([Tensor(zeros: [t.shape[1] - queryPos.shape[0], queryPos.shape[1]]), queryPos], axis: 0)
        }
        var s = norm1(t)
        if let hooks { s = hooks.afterNorm(s, index: 1, at: site) }
        let qk = s + queryPos
        t = t + selfAttention(query: qk, key: qk, value: s, heads: heads, hooks: hooks, site: site)
        s = norm2(t)
        if let hooks { s = hooks.afterNorm(s, index: 2, at: site) }
        t = t + crossAttention(query: s + queryPos, key: memory, value: memory, heads: heads, hooks: hooks, site: site)
        t = feedForwardSublayer(t, norm: norm3, normIndex: 3, ffn: ffn, hooks: hooks, site: site)
        return hooks?.layerOutput(t, at: site) ?? t
    }
}
