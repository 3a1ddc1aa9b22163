import Foundation

// IPT / AdaptIR full-image inference (`forward_chop`), spec 5.3, ported from `spec/ref/chop_check.py`.
//
// P = 48 (window), shave = 24, stride st = 12, s = scale. With h_cut = (h-48) % 12, H' = h - h_cut (same for w):
//   main   = every 48x48 window at (12i, 12j) of [0,H') x [0,W'), sum-folded into (H's, W's)
//   y[:48s, :] = CUT_H(top strip), y[:, :48s] = CUT_W(left strip)
//   y[12s:(H'-12)s, 12s:(W'-12)s] = fold(centre crops [12s:36s, 12s:36s]) / fold(ones)
//   bottom = CUT_H(x[h-48:, :]), right = CUT_W(x[:, w-48:]), corner = model(x[h-48:, w-48:])
//   a = int((48-h_cut)/2*s), b = int((48-h_cut)/2*s + 0.5)  (a2, b2 likewise with w_cut)
//   y = vcat(y[:H's-a], bottom[b:]); ycol = vcat(right[:H's-a], corner[b:]); y = hcat(y[:, :W's-a2], ycol[:, b2:])
// CUT_H(strip 48 x w): windows at columns 12j, sum-fold, then columns [12s, (W'-12)s) replaced by the average of
// the windows' column-centre crops [12s:36s] (full height). CUT_W is its transpose.
//
// Differences from the reference that do not change the result: all windows (main grid, the four strips and the
// corner) are collected first and the model runs on them in batches; a window position shared by several of these
// (the top strip's windows are the main grid's first row, and so on) is evaluated once, since in eval mode the
// model is a pure function of each window. The window outputs are accumulated as batches arrive (in each fold's
// own row-major order), so the memory is O(output image), not O(number of windows x window output).
// Centre-crop sums and their division by the overlap counts are done in Double (sums of <= 4 Floats are exact,
// so an identity model reproduces its input bit for bit); the plain sum-folds are Float (every pixel of them that
// survives into the output is covered by exactly one window).

private let chopPatch = 48
private let chopShave = 24
private let chopStride = 12

/// One sum-fold of window outputs (an `unfold`/`fold` pair of the reference) plus the fold of their centre crops.
/// The grid has `nI` x `nJ` windows of `P*s` x `P*s` outputs at stride `12s`. Along a cropped dimension the crop is
/// `[12s, 36s)` of each window and the averaged result replaces `[12s, L - 12s)` of the sum (L the fold length);
/// along an uncropped one the crop is the whole window (only used with a single window, count 1).
private final class ChopFold {
    let channels: Int, ps: Int, step: Int
    let nI: Int, nJ: Int
    let fullH: Int, fullW: Int
    let cropRows: Bool, cropCols: Bool
    let cropH: Int, cropW: Int, innerH: Int, innerW: Int, crop0H: Int, crop0W: Int
    var full: [Float]
    var inner: [Double]

    init(channels: Int, scale s: Int, nI: Int, nJ: Int, cropRows: Bool, cropCols: Bool) {
        precondition(cropRows || nI == 1, "forwardChop: an uncropped fold direction has one window")
        precondition(cropCols || nJ == 1, "forwardChop: an uncropped fold direction has one window")
        self.channels = channels
        ps = chopPatch * s
        step = chopStride * s
        self.nI = nI
        self.nJ = nJ
        fullH = step * (nI - 1) + ps
        fullW = step * (nJ - 1) + ps
        self.cropRows = cropRows
        self.cropCols = cropCols
        crop0H = cropRows ? chopStride * s : 0
        crop0W = cropCols ? chopStride * s : 0
        cropH = cropRows ? (chopPatch - chopShave) * s : ps
        cropW = cropCols ? (chopPatch - chopShave) * s : ps
        innerH = step * (nI - 1) + cropH
        innerW = step * (nJ - 1) + cropW
        full = [Float](repeating: 0, count: channels * fullH * fullW)
        inner = [Double](repeating: 0, count: channels * innerH * innerW)
    }

    /// Adds window (i, j)'s output `win` ([channels, ps, ps]) into the sum-fold and its centre crop into the
    /// centre-crop fold.
    func add(_ win: UnsafePointer<Float>, i: Int, j: Int) {
        let ps = ps, fullH = fullH, fullW = fullW, innerH = innerH, innerW = innerW
        let r0 = i * step, c0 = j * step
        let cropH = cropH, cropW = cropW, crop0H = crop0H, crop0W = crop0W
        full.withUnsafeMutableBufferPointer { fb in
            let f = fb.baseAddress!
            for c in 0..<channels {
                for r in 0..<ps {
                    let src = win + (c * ps + r) * ps
                    let dst = f + (c * fullH + r0 + r) * fullW + c0
                    for q in 0..<ps { dst[q] += src[q] }
                }
            }
        }
        inner.withUnsafeMutableBufferPointer { ib in
            let d = ib.baseAddress!
            for c in 0..<channels {
                for r in 0..<cropH {
                    let src = win + (c * ps + crop0H + r) * ps + crop0W
                    let dst = d + (c * innerH + r0 + r) * innerW + c0
                    for q in 0..<cropW { dst[q] += Double(src[q]) }
                }
            }
        }
    }

    /// Number of windows whose crop (offset `step*k`, length `len`) covers position `x` of a fold with `n`
    /// windows: the reference's `fold(ones)` along one dimension (the 2-D count is the product).
    private static func coverage(_ x: Int, n: Int, step: Int, len: Int) -> Int {
        var k = 0
        for t in 0..<n where step * t <= x && x < step * t + len { k += 1 }
        return k
    }

    /// Overwrites `full[:, rows, cols]` with `inner / count`, rows = [12s, fullH-12s) if cropped, else all
    /// (likewise cols): the reference's `y[..., ST*s:L-ST*s] = yi/div`.
    func replaceCentre() {
        let rowCount = (0..<innerH).map { Double(ChopFold.coverage($0, n: nI, step: step, len: cropH)) }
        let colCount = (0..<innerW).map { Double(ChopFold.coverage($0, n: nJ, step: step, len: cropW)) }
        let fullH = fullH, fullW = fullW, innerH = innerH, innerW = innerW, crop0H = crop0H, crop0W = crop0W
        full.withUnsafeMutableBufferPointer { fb in
            let f = fb.baseAddress!
            inner.withUnsafeBufferPointer { ib in
                let d = ib.baseAddress!
                for c in 0..<channels {
                    for r in 0..<innerH {
                        let src = d + (c * innerH + r) * innerW
                        let dst = f + (c * fullH + crop0H + r) * fullW + crop0W
                        let rc = rowCount[r]
                        for q in 0..<innerW { dst[q] = Float(src[q] / (rc * colCount[q])) }
                    }
                }
            }
        }
    }
}

/// Why `forwardChop` cannot restore an image of `width` x `height` (on the model's input scale): nil when both sides
/// are at least its 48-pixel window, else a one-line reason. The one size check of `eval`, `train`'s evaluation and
/// `restore`, made before the model runs (`forwardChop` itself stops the process on such an image).
public func chopSizeProblem(width: Int, height: Int) -> String? {
    guard width < chopPatch || height < chopPatch else { return nil }
    return "\(width)x\(height) is smaller than the \(chopPatch)x\(chopPatch) window of the sliding-window restoration"
}

/// IPT's sliding-window full-image inference (`forward_chop`, spec 5.3): the image is cut into overlapping 48x48
/// windows at stride 12, the model restores every window, and the outputs are stitched; interior pixels are the
/// mean of the centre 24s x 24s crops of the windows covering them, `y = Σ_k crop_k / Σ_k 1`, the 12-pixel
/// outer bands come from edge strips, and the bottom/right remainders (when (h-48) or (w-48) is not a multiple of
/// 12) from strips anchored at the image edge. Exact port of `spec/ref/chop_check.py`.
///
/// - Parameters:
///   - image: [C, h, w] with h, w >= 48 (on the scale the model expects).
///   - scale: the model's upscaling factor s.
///   - batchSize: number of windows per model call.
///   - model: maps windows [B, C, 48, 48] to [B, C', 48s, 48s]; must treat the windows independently.
/// - Returns: [C', h*s, w*s].
public func forwardChop(_ image: Tensor, scale s: Int, batchSize: Int = 64, model: (Tensor) -> Tensor) -> Tensor {
    precondition(image.rank == 3, "forwardChop: image must be [C, h, w], got \(image.shape)")
    let C = image.shape[0], h = image.shape[1], w = image.shape[2]
    precondition(h >= chopPatch && w >= chopPatch,
                 "forwardChop: image \(image.shape) is smaller than the 48x48 window; h and w must be >= 48")
    precondition(s >= 1, "forwardChop: scale must be >= 1, got \(s)")
    precondition(batchSize >= 1, "forwardChop: batchSize must be >= 1, got \(batchSize)")
    let P = chopPatch, ST = chopStride
    let hCut = (h - P) % ST, wCut = (w - P) % ST
    let Hp = h - hCut, Wp = w - wCut
    let nH = (Hp - P) / ST + 1, nW = (Wp - P) / ST + 1

    // Window list: (top, left) in the image, deduplicated; each window feeds one or more folds at grid (i, j).
    struct Use { let fold: Int; let i: Int; let j: Int }
    var positions: [(top: Int, left: Int)] = []
    var uses: [[Use]] = []
    var index: [Int: Int] = [:]
    func register(_ top: Int, _ left: Int, _ use: Use) {
        let key = top * w + left
        if let k = index[key] { uses[k].append(use); return }
        index[key] = positions.count
        positions.append((top, left))
        uses.append([use])
    }
    // Folds: 0 main, 1 top strip, 2 left strip, 3 bottom strip, 4 right strip, 5 corner. The model's output
    // channel count is only known after the first call, so the folds are created lazily.
    let foldGrids: [(nI: Int, nJ: Int, cropRows: Bool, cropCols: Bool)] = [
        (nH, nW, true, true), (1, nW, false, true), (nH, 1, true, false),
        (1, nW, false, true), (nH, 1, true, false), (1, 1, false, false),
    ]
    // Main grid first, in row-major order, so that every fold receives its windows in its own row-major order.
    for i in 0..<nH { for j in 0..<nW { register(ST * i, ST * j, Use(fold: 0, i: i, j: j)) } }
    for j in 0..<nW { register(0, ST * j, Use(fold: 1, i: 0, j: j)) }
    for i in 0..<nH { register(ST * i, 0, Use(fold: 2, i: i, j: 0)) }
    for j in 0..<nW { register(h - P, ST * j, Use(fold: 3, i: 0, j: j)) }
    for i in 0..<nH { register(ST * i, w - P, Use(fold: 4, i: i, j: 0)) }
    register(h - P, w - P, Use(fold: 5, i: 0, j: 0))

    var folds: [ChopFold] = []
    var outChannels = 0
    let img = image.data
    let winSize = C * P * P
    var start = 0
    while start < positions.count {
        let B = min(batchSize, positions.count - start)
        let batch = Tensor(uninitialized: [B, C, P, P])
        let bp = batch.data
        for b in 0..<B {
            let (top, left) = positions[start + b]
            for c in 0..<C {
                for r in 0..<P {
                    (bp + b * winSize + (c * P + r) * P).update(from: img + (c * h + top + r) * w + left, count: P)
                }
            }
        }
        let out = model(batch)
        precondition(out.rank == 4 && out.shape[0] == B && out.shape[2] == P * s && out.shape[3] == P * s,
                     "forwardChop: model output \(out.shape) for input \(batch.shape); expected [\(B), C', \(P * s), \(P * s)]")
        if folds.isEmpty {
            outChannels = out.shape[1]
            folds = foldGrids.map {
                ChopFold(channels: outChannels, scale: s, nI: $0.nI, nJ: $0.nJ, cropRows: $0.cropRows, cropCols: $0.cropCols)
            }
        }
        precondition(out.shape[1] == outChannels, "forwardChop: model output channels changed to \(out.shape[1])")
        let op = UnsafePointer(out.data)
        let outWin = outChannels * P * s * P * s
        for b in 0..<B {
            for u in uses[start + b] { folds[u.fold].add(op + b * outWin, i: u.i, j: u.j) }
        }
        start += B
    }

    // Strips: sum-fold with the centre replaced by the crop average (cut_h / cut_w).
    for k in 1...4 { folds[k].replaceCentre() }
    // Main: y[:48s, :] = top, y[:, :48s] = left, then the interior average.
    let main = folds[0]
    let Hs = Hp * s, Ws = Wp * s, Ps = P * s
    let Co = outChannels
    main.full.withUnsafeMutableBufferPointer { yb in
        let y = yb.baseAddress!
        folds[1].full.withUnsafeBufferPointer { tb in
            for c in 0..<Co { for r in 0..<Ps {
                (y + (c * Hs + r) * Ws).update(from: tb.baseAddress! + (c * Ps + r) * Ws, count: Ws)
            } }
        }
        folds[2].full.withUnsafeBufferPointer { lb in
            for c in 0..<Co { for r in 0..<Hs {
                (y + (c * Hs + r) * Ws).update(from: lb.baseAddress! + (c * Hs + r) * Ps, count: Ps)
            } }
        }
    }
    main.replaceCentre()

    // Concatenations with the bottom strip, right strip and corner.
    let a = Int(Double(P - hCut) / 2 * Double(s)), b = Int(Double(P - hCut) / 2 * Double(s) + 0.5)
    let a2 = Int(Double(P - wCut) / 2 * Double(s)), b2 = Int(Double(P - wCut) / 2 * Double(s) + 0.5)
    let oh = h * s, ow = w * s
    precondition(Hs - a + Ps - b == oh && Ws - a2 + Ps - b2 == ow, "forwardChop: internal size mismatch")
    let result = Tensor(uninitialized: [Co, oh, ow])
    let o = result.data
    let splitR = Hs - a, splitC = Ws - a2
    main.full.withUnsafeBufferPointer { yb in
    folds[3].full.withUnsafeBufferPointer { bb in
    folds[4].full.withUnsafeBufferPointer { rb in
    folds[5].full.withUnsafeBufferPointer { cb in
        let y = yb.baseAddress!, bottom = bb.baseAddress!, right = rb.baseAddress!, corner = cb.baseAddress!
        for c in 0..<Co {
            for r in 0..<oh {
                let dst = o + (c * oh + r) * ow
                if r < splitR {
                    dst.update(from: y + (c * Hs + r) * Ws, count: splitC)
                    (dst + splitC).update(from: right + (c * Hs + r) * Ps + b2, count: ow - splitC)
                } else {
                    let rr = r - splitR + b
                    dst.update(from: bottom + (c * Ps + rr) * Ws, count: splitC)
                    (dst + splitC).update(from: corner + (c * Ps + rr) * Ps + b2, count: ow - splitC)
                }
            }
        }
    } } } }
    return result
}
