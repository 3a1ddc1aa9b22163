import Foundation

/// `torch.optim.AdamW` (amsgrad off, maximize off) over one flat parameter buffer and its flat gradient buffer.
///
/// Per step t (1-based), elementwise, in torch's order:
///
///     p *= 1 - lr * wd
///     m  = m + (1 - b1) * (g - m)            (torch's lerp; = b1*m + (1-b1)*g)
///     v  = b2 * v + (1 - b2) * g * g
///     step_size = lr / (1 - b1^t),  denom = sqrt(v) / sqrt(1 - b2^t) + eps
///     p -= step_size * m / denom
///
/// `expAvg`, `expAvgSq` and `stepCount` are torch's `exp_avg`, `exp_avg_sq`, `step` (for checkpoints).
public final class AdamW: @unchecked Sendable {
    public let count: Int
    public var lr: Float
    public var betas: (Float, Float)
    public var eps: Float
    public var weightDecay: Float
    /// Number of steps taken (torch's `step`); the next step uses stepCount + 1 for the bias corrections.
    public var stepCount: Int = 0
    /// First moment (torch `exp_avg`).
    public let expAvg: Tensor
    /// Second moment (torch `exp_avg_sq`).
    public let expAvgSq: Tensor

    public init(count: Int, lr: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8,
                weightDecay: Float = 1e-2) {
        precondition(count >= 0, "AdamW: negative parameter count \(count)")
        self.count = count
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.weightDecay = weightDecay
        self.expAvg = Tensor(zeros: [count])
        self.expAvgSq = Tensor(zeros: [count])
    }

    /// One AdamW update of `count` parameters in place from their gradients.
    public func step(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>) {
        stepCount += 1
        let t = Double(stepCount)
        let lrD = Double(lr), b1 = Double(betas.0), b2 = Double(betas.1)
        let decay = Float(1 - lrD * Double(weightDecay))
        let oneMinusB1 = Float(1 - b1)
        let beta2 = betas.1, oneMinusB2 = Float(1 - b2)
        let stepSize = Float(lrD / (1 - pow(b1, t)))
        let bc2Sqrt = Float((1 - pow(b2, t)).squareRoot())
        let eps = self.eps
        let m = expAvg.data, v = expAvgSq.data
        let n = count
        Parallel.forChunks(n, grain: Parallel.elementGrain / 4) { r in   // per element: any split, same bits
            for i in r {
                let g = grads[i]
                var p = params[i] * decay
                let mi = m[i] + oneMinusB1 * (g - m[i])
                let vi = beta2 * v[i] + oneMinusB2 * g * g
                m[i] = mi
                v[i] = vi
                let denom = vi.squareRoot() / bc2Sqrt + eps
                p += -stepSize * (mi / denom)  // torch addcdiv: p + value * (m / denom)
                params[i] = p
            }
        }
    }

    /// Convenience: `params` and `grads` are flat tensors of `count` elements.
    public func step(params: Tensor, grads: Tensor) {
        precondition(params.count == count && grads.count == count,
                     "AdamW.step: params \(params.shape) and grads \(grads.shape) must have \(count) elements")
        step(params: params.data, grads: UnsafePointer(grads.data))
    }
}
