import Foundation

/// Sums per-channel statistics across data-parallel ranks (synchronised BatchNorm, e.g. an in-place
/// `MPI_Allreduce` with `MPI_SUM` over doubles). `sum` must replace `values` by their element-wise sum over all ranks.
///
/// `batchNorm2d` calls it, in training mode only:
/// - in forward on `[sum x (C), sum x^2 (C), count (1)]`, so mean, variance and count become global;
/// - in backward (only when the input needs a gradient) on `[sum dy (C), sum dy * xhat (C)]`.
/// Every rank must therefore run the same sequence of BN forwards and backwards.
public protocol BatchNormReducer: AnyObject {
    func sum(_ values: UnsafeMutableBufferPointer<Double>)
}

/// Non-learned state of a `BatchNorm2d(C)`: running statistics (start at 0 and 1), the batch counter, momentum and eps,
/// exactly as PyTorch's buffers `running_mean`, `running_var`, `num_batches_tracked`.
public final class BatchNormState: @unchecked Sendable {
    public let channels: Int
    public let runningMean: Tensor
    public let runningVar: Tensor
    /// PyTorch's int64 `num_batches_tracked`, kept as a one-element Float tensor so it can live in a checkpoint
    /// beside the other buffers (exact up to 2^24 batches).
    public let batchCounter: Tensor
    public var momentum: Float
    public var eps: Float

    public var numBatchesTracked: Int {
        get { Int(batchCounter.data[0]) }
        set { batchCounter.data[0] = Float(newValue) }
    }

    public convenience init(channels: Int, momentum: Float = 0.1, eps: Float = 1e-5) {
        precondition(channels > 0, "BatchNormState: channels must be positive, got \(channels)")
        self.init(runningMean: Tensor(zeros: [channels]), runningVar: Tensor(shape: [channels], repeating: 1),
                  numBatchesTracked: Tensor(zeros: []), momentum: momentum, eps: eps)
    }

    /// State over existing tensors (e.g. the `running_mean`, `running_var`, `num_batches_tracked` buffers of a
    /// parameter store), which the forward updates in place.
    public init(runningMean: Tensor, runningVar: Tensor, numBatchesTracked: Tensor, momentum: Float = 0.1, eps: Float = 1e-5) {
        precondition(runningMean.rank == 1 && runningVar.shape == runningMean.shape && numBatchesTracked.count == 1,
                     "BatchNormState: running_mean \(runningMean.shape), running_var \(runningVar.shape), counter \(numBatchesTracked.shape)")
        self.channels = runningMean.count
        self.runningMean = runningMean
        self.runningVar = runningVar
        self.batchCounter = numBatchesTracked
        self.momentum = momentum
        self.eps = eps
    }
}

/// BatchNorm2d over NCHW, per channel c (PyTorch `nn.BatchNorm2d`, affine, momentum 0.1, eps 1e-5).
///
/// Training: with n = N*H*W (summed over ranks when `reducer` is given),
///
///     mu_c = sum x / n,  var_c = sum x^2 / n - mu_c^2  (biased),  xhat = (x - mu_c) / sqrt(var_c + eps)
///     y = xhat * weight_c + bias_c
///     running_mean = (1 - m) * running_mean + m * mu_c
///     running_var  = (1 - m) * running_var  + m * var_c * n / (n - 1)   (unbiased),  numBatchesTracked += 1
///
/// backward: dx = weight_c * rstd_c * (dy - sum(dy) / n - xhat * sum(dy * xhat) / n) with global sums;
/// dweight_c += sum(dy * xhat), dbias_c += sum(dy) over the LOCAL batch (the data-parallel gradient all-reduce
/// sums them over ranks).
///
/// Eval: y = (x - running_mean_c) / sqrt(running_var_c + eps) * weight_c + bias_c, with the affine backward.
public func batchNorm2d(_ x: Tensor, weight: Tensor, bias: Tensor, state: BatchNormState, training: Bool,
                        reducer: BatchNormReducer? = nil) -> Tensor {
    precondition(x.rank == 4, "batchNorm2d: input must be NCHW, got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], hw = x.shape[2] * x.shape[3]
    precondition(c == state.channels, "batchNorm2d: input \(x.shape) has \(c) channels, state has \(state.channels)")
    precondition(weight.shape == [c] && bias.shape == [c],
                 "batchNorm2d: weight \(weight.shape) and bias \(bias.shape) must be [\(c)] for input \(x.shape)")
    let out = Tensor(uninitialized: x.shape)
    // Per-channel mean and 1/std used in this forward (batch or running statistics).
    let meanT = Tensor(uninitialized: [c]), rstdT = Tensor(uninitialized: [c])
    let mp = meanT.data, rp = rstdT.data
    let xp = x.data, yp = out.data, wp = weight.data, bp = bias.data
    let eps = Double(state.eps)
    var globalCount = 0.0
    if training {
        var sums = [Double](repeating: 0, count: 2 * c + 1)
        sums.withUnsafeMutableBufferPointer { s in
            for i in 0..<n {
                for ch in 0..<c {
                    let row = xp + (i * c + ch) * hw
                    var a = 0.0, b = 0.0
                    for j in 0..<hw { let v = Double(row[j]); a += v; b += v * v }
                    s[ch] += a
                    s[c + ch] += b
                }
            }
            s[2 * c] = Double(n * hw)
            reducer?.sum(s)
        }
        globalCount = sums[2 * c]
        precondition(globalCount > 1, "batchNorm2d: training needs more than 1 value per channel, input \(x.shape)")
        let mom = Double(state.momentum)
        let rm = state.runningMean.data, rv = state.runningVar.data
        for ch in 0..<c {
            let mean = sums[ch] / globalCount
            let variance = max(sums[c + ch] / globalCount - mean * mean, 0)
            mp[ch] = Float(mean)
            rp[ch] = Float(1.0 / (variance + eps).squareRoot())
            let unbiased = variance * globalCount / (globalCount - 1)
            rm[ch] = Float((1 - mom) * Double(rm[ch]) + mom * mean)
            rv[ch] = Float((1 - mom) * Double(rv[ch]) + mom * unbiased)
        }
        state.numBatchesTracked += 1
    } else {
        let rm = state.runningMean.data, rv = state.runningVar.data
        for ch in 0..<c {
            mp[ch] = rm[ch]
            rp[ch] = Float(1.0 / (Double(rv[ch]) + eps).squareRoot())
        }
    }
    for i in 0..<n {
        for ch in 0..<c {
            let xr = xp + (i * c + ch) * hw, yr = yp + (i * c + ch) * hw
            let m = mp[ch], rs = rp[ch], w = wp[ch], b = bp[ch]
            for j in 0..<hw { yr[j] = (xr[j] - m) * rs * w + b }
        }
    }
    let count = globalCount
    Autograd.record(out, op: training ? "batchNorm2d" : "batchNorm2dEval", parents: [x, weight, bias]) { g in
        let gp = g.data, xp = x.data, wp = weight.data, mp = meanT.data, rp = rstdT.data
        // Local per-channel sums of dy and dy * xhat.
        var sums = [Double](repeating: 0, count: 2 * c)
        for i in 0..<n {
            for ch in 0..<c {
                let xr = xp + (i * c + ch) * hw, gr = gp + (i * c + ch) * hw
                let m = mp[ch], rs = rp[ch]
                var a = 0.0, b = 0.0
                for j in 0..<hw { let dy = Double(gr[j]); a += dy; b += dy * Double((xr[j] - m) * rs) }
                sums[ch] += a
                sums[c + ch] += b
            }
        }
        if weight.requiresGrad {
            let gw = weight.gradData()
            for ch in 0..<c { gw[ch] += Float(sums[c + ch]) }
        }
        if bias.requiresGrad {
            let gb = bias.gradData()
            for ch in 0..<c { gb[ch] += Float(sums[ch]) }
        }
        guard x.requiresGrad else { return }
        let gx = x.gradData()
        if training {
            if let reducer { sums.withUnsafeMutableBufferPointer { reducer.sum($0) } }
            for i in 0..<n {
                for ch in 0..<c {
                    let off = (i * c + ch) * hw
                    let xr = xp + off, gr = gp + off, gxr = gx + off
                    let m = mp[ch], rs = rp[ch]
                    let meanDy = Float(sums[ch] / count), meanDyXhat = Float(sums[c + ch] / count)
                    let k = wp[ch] * rs
                    for j in 0..<hw { gxr[j] += k * (gr[j] - meanDy - (xr[j] - m) * rs * meanDyXhat) }
                }
            }
        } else {
            for i in 0..<n {
                for ch in 0..<c {
                    let off = (i * c + ch) * hw
                    let gr = gp + off, gxr = gx + off
                    let k = wp[ch] * rp[ch]
                    for j in 0..<hw { gxr[j] += k * gr[j] }
                }
            }
        }
    }
    return out
}
