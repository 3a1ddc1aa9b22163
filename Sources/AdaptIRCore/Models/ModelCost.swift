/// Floating-point operations of IPT with an adaptation method per 48x48 input patch, counted analytically (2 FLOPs
/// per multiply-add of every convolution, linear layer and attention product; elementwise work is not counted). The
/// method's share comes from its `extraForwardFLOPs`.
public struct ModelCost: Sendable {
    /// Forward FLOPs per patch.
    public let forward: Double
    /// FLOPs per patch of the backward pass when only the method trains: input gradients through every frozen
    /// layer after the first adapted one (attention products twice: dQ, dK and dV, dP), plus the method's own.
    public let adapterBackward: Double
    /// Forward FLOPs per patch spent in matrix products (linears, convs, attention): what BLAS runs.
    public let parts: [(name: String, flops: Double)]

    public init(preset p: Preset, task: Int, method: (any AdaptationMethod)? = nil) {
        let l = Double(p.tokens), d = Double(p.embed), m = Double(p.mlpHidden), nf = Double(p.nFeats)
        let px = Double(p.patchSize * p.patchSize)
        let scale = p.scales[task]
        func conv(_ cout: Double, _ cin: Double, _ k: Double, _ pixels: Double) -> Double { 2 * cout * cin * k * k * pixels }
        let head = conv(nf, 3, 3, px) + 2 * 2 * conv(nf, nf, 5, px)
        let encoding = 2 * l * d * d
        let projections = 2 * 4 * l * d * d          // q, k, v, out
        let core = 2 * 2 * l * l * d                 // Q K^T and P V over all heads
        let ffn = 2 * 2 * l * d * m
        let methodFLOPs = method?.extraForwardFLOPs() ?? 0
        let encoderLayer = projections + core + ffn
        let decoderLayer = 2 * (projections + core) + ffn
        let mlpHead = 2 * 2 * l * d * m
        var tail = 0.0, side = Double(p.patchSize)
        var stages = 0.0
        for r in IPT.upsamplerStages(scale: scale) {
            stages += conv(Double(r * r) * nf, nf, 3, side * side)
            side *= Double(r)
        }
        tail = stages + conv(3, nf, 3, side * side)
        let encoder = Double(p.encoderLayers) * encoderLayer
        let decoder = Double(p.decoderLayers) * decoderLayer
        parts = [("head", head), ("linear encoding", encoding), ("encoder", encoder), ("decoder", decoder),
                 ("mlp head", mlpHead), ("tail", tail), ("method", methodFLOPs)]
        forward = head + encoding + encoder + decoder + mlpHead + tail + methodFLOPs
        // Backward when only the method's tensors train: the graph starts at encoder layer 0 (every per-layer
        // method has tensors there); the head, the linear encoding and layer 0's frozen attention and FFN never see
        // a gradient. The method's own part costs about twice its forward (input and weight gradients).
        let throughEncoder = Double(max(p.encoderLayers - 1, 0)) * (encoderLayer + core)
        let throughDecoder = Double(p.decoderLayers) * (decoderLayer + 2 * core)
        adapterBackward = method == nil ? 0 : tail + mlpHead + throughDecoder + throughEncoder + 2 * methodFLOPs
    }

    /// Backward FLOPs per patch: the adapter-only backward, or about twice the forward when the backbone itself
    /// trains (full fine-tuning: input and weight gradients of every layer).
    public func backward(trainsBackbone: Bool) -> Double { trainsBackbone ? 2 * forward : adapterBackward }
}
