/// Model sizes. `ipt` is the paper's IPT; `small` and `tiny` are the fixture presets (../shared/fixtures/README.md);
/// `deep` (4 + 4 layers) and `wide` (n_feats 24) are `small` grown by scripts/backbone/ (datasets/README.md,
/// stages 7 and 9).
public struct Preset: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    /// Channels of the convolutional heads and tails.
    public let nFeats: Int
    /// Token width: nFeats * 3 * 3 (IPT's 3x3 patch tokens).
    public let embed: Int
    public let heads: Int
    public let encoderLayers: Int
    public let decoderLayers: Int
    /// FFN width of each transformer layer.
    public let mlpHidden: Int

    /// Input patch size (the transformer only works at this size: 256 learned positions and queries).
    public let patchSize = 48
    /// Token patch size (3x3 pixels of nFeats channels per token).
    public let patchDim = 3
    /// The six pre-training tasks: 0 SR x2, 1 SR x3, 2 SR x4, 3 deraining, 4 denoise sigma 30, 5 denoise sigma 50.
    public let scales = [2, 3, 4, 1, 1, 1]

    public var taskCount: Int { scales.count }
    /// Tokens per patch: (48 / 3)^2 = 256.
    public var tokens: Int { (patchSize / patchDim) * (patchSize / patchDim) }
    /// Side of the token grid (16).
    public var grid: Int { patchSize / patchDim }

    public static let ipt = Preset(name: "ipt", nFeats: 64, heads: 12, encoderLayers: 12, decoderLayers: 12, mlpHidden: 2304)
    public static let small = Preset(name: "small", nFeats: 16, heads: 4, encoderLayers: 2, decoderLayers: 2, mlpHidden: 576)
    /// `small`'s width with twice its layers (4 + 4): made by `scripts/backbone/grow_depth.py` from a `small`
    /// backbone, whose added layers start as exact identities (zero output projections), to test whether depth lifts
    /// the bundled backbone past the plateau `small` reached (datasets/README.md, stage 7).
    public static let deep = Preset(name: "deep", nFeats: 16, heads: 4, encoderLayers: 4, decoderLayers: 4, mlpHidden: 576)
    /// `small` half as wide again (n_feats 24, 6 heads of 36, MLP 864): grown from a `small` backbone by
    /// `scripts/backbone/grow_width.py` (datasets/README.md, stage 9).
    public static let wide = Preset(name: "wide", nFeats: 24, heads: 6, encoderLayers: 2, decoderLayers: 2, mlpHidden: 864)
    public static let tiny = Preset(name: "tiny", nFeats: 4, heads: 2, encoderLayers: 1, decoderLayers: 1, mlpHidden: 72)
    public static let all = [ipt, small, deep, wide, tiny]

    public init(name: String, nFeats: Int, heads: Int, encoderLayers: Int, decoderLayers: Int, mlpHidden: Int) {
        self.name = name
        self.nFeats = nFeats
        self.embed = nFeats * 9
        self.heads = heads
        self.encoderLayers = encoderLayers
        self.decoderLayers = decoderLayers
        self.mlpHidden = mlpHidden
    }

    public static func named(_ name: String) -> Preset? { all.first { $0.name == name } }

    public var description: String {
        "\(name) (n_feats \(nFeats), embed \(embed), \(heads) heads, \(encoderLayers)+\(decoderLayers) layers, MLP \(mlpHidden))"
    }
}
