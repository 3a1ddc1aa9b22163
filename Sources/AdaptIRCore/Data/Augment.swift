/// The training augmentation of the paper's code (`utils/image_utils.py`: `random_augmentation` draws
/// `random.randint(1, 7)`, then `data_augmentation(image, mode)`), applied with the same mode to LQ and GT.
///
/// Mode 0 (identity) exists in `data_augmentation` but `random_augmentation` never draws it, so training never sees an
/// unaugmented patch; we follow the code (modes 1...7, identity never), as spec 4.2 states. Definitions on an
/// H x W x C array (numpy, axes 0 = rows, 1 = columns; `rot90` is counter-clockwise):
/// 1 flipud; 2 rot90; 3 rot90 then flipud; 4 rot90 k=2; 5 rot90 k=2 then flipud; 6 rot90 k=3; 7 rot90 k=3 then flipud.
/// The 7 modes plus identity are the 8 elements of the dihedral group of the square.
public enum Augment {
    /// The modes drawn by `random_augmentation`.
    public static let modes = 1...7

    /// Draws a mode uniformly from 1...7 (one 32-bit word of the sample's augment stream).
    public static func randomMode(_ rng: inout SampleRNG) -> Int { 1 + rng.below(7) }

    /// Output (height, width) of `mode` on an h x w image: odd rotations swap them.
    public static func outputSize(height h: Int, width w: Int, mode: Int) -> (height: Int, width: Int) {
        (mode == 2 || mode == 3 || mode == 6 || mode == 7) ? (w, h) : (h, w)
    }

    /// For output pixel (i, j) of `mode` on an h x w image, the source pixel (r, c) = a0 + ai*i + aj*j for rows and
    /// b0 + bi*i + bj*j for columns. Derived from numpy: rot90(m)[i, j] = m[j, W-1-i], flipud(m)[i, j] = m[H-1-i, j].
    static func sourceMap(h: Int, w: Int, mode: Int) -> (a0: Int, ai: Int, aj: Int, b0: Int, bi: Int, bj: Int) {
        switch mode {
        case 0: return (0, 1, 0, 0, 0, 1)
        case 1: return (h - 1, -1, 0, 0, 0, 1)           // flipud: m[H-1-i, j]
        case 2: return (0, 0, 1, w - 1, -1, 0)           // rot90: m[j, W-1-i]
        case 3: return (0, 0, 1, 0, 1, 0)                // flipud(rot90): rot90[W-1-i, j] = m[j, i]
        case 4: return (h - 1, -1, 0, w - 1, 0, -1)      // rot180: m[H-1-i, W-1-j]
        case 5: return (0, 1, 0, w - 1, 0, -1)           // flipud(rot180): m[i, W-1-j]
        case 6: return (h - 1, 0, -1, 0, 1, 0)           // rot270: m[H-1-j, i]
        case 7: return (h - 1, 0, -1, w - 1, -1, 0)      // flipud(rot270): rot270[H'-1-i, j], H' = W: m[H-1-j, W-1-i]
        default: preconditionFailure("Augment: mode \(mode) outside 0...7")
        }
    }

    /// Applies `mode` (0...7; 0 is the identity) to an HWC uint8 image `src` of `height` x `width` x `channels`,
    /// writing the result (shape `outputSize` x channels) to `dst`: `dst[i, j, :] = src[r(i, j), c(i, j), :]`.
    public static func apply(mode: Int, src: UnsafeBufferPointer<UInt8>, height h: Int, width w: Int, channels ch: Int,
                             dst: UnsafeMutableBufferPointer<UInt8>) {
        precondition(src.count >= h * w * ch && dst.count >= h * w * ch,
                     "Augment.apply: buffers \(src.count)/\(dst.count) bytes for \(h)x\(w)x\(ch)")
        let m = sourceMap(h: h, w: w, mode: mode)
        let (oh, ow) = outputSize(height: h, width: w, mode: mode)
        let s = src.baseAddress!, d = dst.baseAddress!
        for i in 0..<oh {
            var r = m.a0 + m.ai * i, c = m.b0 + m.bi * i
            var o = i * ow * ch
            for _ in 0..<ow {
                let base = (r * w + c) * ch
                for k in 0..<ch { d[o + k] = s[base + k] }
                o += ch
                r += m.aj; c += m.bj
            }
        }
    }

    /// Applies `mode` to an HWC uint8 array, returning the new array and its (height, width).
    public static func apply(mode: Int, _ pixels: [UInt8], height h: Int, width w: Int, channels ch: Int = 3)
        -> (pixels: [UInt8], height: Int, width: Int) {
        var out = [UInt8](repeating: 0, count: h * w * ch)
        pixels.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in apply(mode: mode, src: s, height: h, width: w, channels: ch, dst: d) }
        }
        let (oh, ow) = outputSize(height: h, width: w, mode: mode)
        return (out, oh, ow)
    }
}
