/// Which transformer layer: encoder or decoder, with its index (state_dict prefix `body.encoder.layers.{i}`).
public enum LayerSite: Hashable, Sendable, CustomStringConvertible {
    case encoder(Int)
    case decoder(Int)

    public var prefix: String {
        switch self {
        case .encoder(let i): return "body.encoder.layers.\(i)"
        case .decoder(let i): return "body.decoder.layers.\(i)"
        }
    }

    public var description: String { prefix }
}

/// The attention blocks of a layer: every layer has self-attention, decoder layers also cross-attention.
public enum AttentionBlock: String, Sendable {
    case selfAttention = "self_attn"
    case crossAttention = "multihead_attn"
}

/// The linear projections of a layer that PETL methods adapt (LoRA, SSF, FacT).
public enum Projection: Sendable, Equatable {
    case query(AttentionBlock), key(AttentionBlock), value(AttentionBlock), output(AttentionBlock)
    /// linear1 (d -> mlp) and linear2 (mlp -> d) of the FFN.
    case mlpHidden, mlpOutput
}

/// Insertion points of IPT's transformer layers. Adapter methods implement the ones they need; every default is the
/// identity, so the bare backbone is `IPT(hooks: nil)` and no method edits the layers:
/// - AdaptIR, AdaptFormer, parallel adapters: `parallelToMLP` (the result is added to the FFN output);
/// - LoRA, FacT: `afterProjection` (add a low-rank path computed from `input`);
/// - SSF: `afterNorm` and `afterProjection` (scale and shift);
/// - VPT: `layerInput` / `layerOutput` (prepend prompt tokens, drop them again);
/// - sequential adapters: `afterMLP`.
public protocol LayerHooks: AnyObject {
    /// Whether `afterProjection` may change a projection's output or read its input. When false (AdaptIR, VPT,
    /// AdaptFormer), `afterProjection` must be the identity: the layers fuse a projection with what follows it (the
    /// FFN's bias and ReLU) and free the FFN's hidden layer once the frozen second linear layer has read it.
    var adaptsProjections: Bool { get }
    /// Tokens (N, L, d) entering the layer.
    func layerInput(_ x: Tensor, at site: LayerSite) -> Tensor
    /// Tokens leaving the layer.
    func layerOutput(_ x: Tensor, at site: LayerSite) -> Tensor
    /// The output of norm{index} (1-based as in the state_dict: norm1, norm2, norm3).
    func afterNorm(_ s: Tensor, index: Int, at site: LayerSite) -> Tensor
    /// y = W x of one projection, with its input x.
    func afterProjection(_ y: Tensor, input: Tensor, projection: Projection, at site: LayerSite) -> Tensor
    /// A branch parallel to the FFN: `normed` is the norm output that feeds the FFN, `residual` the stream before
    /// that norm. A non-nil result is added to the FFN output inside the residual branch (scale 1).
    func parallelToMLP(residual: Tensor, normed: Tensor, at site: LayerSite) -> Tensor?
    /// The FFN output (before the residual add), for sequential adapters.
    func afterMLP(_ y: Tensor, at site: LayerSite) -> Tensor
}

extension LayerHooks {
    public var adaptsProjections: Bool { false }
    public func layerInput(_ x: Tensor, at site: LayerSite) -> Tensor { x }
    public func layerOutput(_ x: Tensor, at site: LayerSite) -> Tensor { x }
    public func afterNorm(_ s: Tensor, index: Int, at site: LayerSite) -> Tensor { s }
    public func afterProjection(_ y: Tensor, input: Tensor, projection: Projection, at site: LayerSite) -> Tensor { y }
    public func parallelToMLP(residual: Tensor, normed: Tensor, at site: LayerSite) -> Tensor? { nil }
    public func afterMLP(_ y: Tensor, at site: LayerSite) -> Tensor { y }
}
