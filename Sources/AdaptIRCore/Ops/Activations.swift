import Foundation

// Pointwise activations. Each backward accumulates g * f'(x) into x's gradient.

/// Rectified linear unit: y = max(x, 0); dy/dx = 1 for x > 0, else 0 (also 0 at exactly 0, as PyTorch).
public func relu(_ x: Tensor) -> Tensor {
    let out = Tensor(uninitialized: x.shape)
    let n = x.count, xs = x.data, y = out.data
    Parallel.forChunks(n) { r in for i in r { y[i] = xs[i] > 0 ? xs[i] : 0 } }
    Autograd.record(out, op: "relu", parents: [x], saves: [true], savesOutput: false) { g in
        let gx = x.gradData(), gy = g.data, xs = x.data
        Parallel.forChunks(n) { r in for i in r where xs[i] > 0 { gx[i] += gy[i] } }
    }
    return out
}

/// Exact (erf) GELU, PyTorch's default: y = 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x);
/// dy/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
public func gelu(_ x: Tensor) -> Tensor {
    let out = Tensor(uninitialized: x.shape)
    let n = x.count, xs = x.data, y = out.data
    let invSqrt2 = Float(0.70710678118654752440)
    Parallel.forChunks(n, grain: Parallel.elementGrain / 8) { r in
        for i in r {
            let v = xs[i]
            y[i] = v * 0.5 * (1 + erff(v * invSqrt2))
        }
    }
    Autograd.record(out, op: "gelu", parents: [x], saves: [true], savesOutput: false) { g in
        let gx = x.gradData(), gy = g.data, xs = x.data
        let invSqrt2Pi = Float(0.39894228040143267794)
        Parallel.forChunks(n, grain: Parallel.elementGrain / 8) { r in
            for i in r {
                let v = xs[i]
                let cdf = 0.5 * (1 + erff(v * invSqrt2))
                let pdf = expf(-0.5 * v * v) * invSqrt2Pi
                gx[i] += gy[i] * (cdf + v * pdf)
            }
        }
    }
    return out
}

/// Logistic sigmoid: y = 1 / (1 + exp(-x)); dy/dx = y (1 - y).
public func sigmoid(_ x: Tensor) -> Tensor {
    let out = Tensor(uninitialized: x.shape)
    let n = x.count, xs = x.data, y = out.data
    Parallel.forChunks(n, grain: Parallel.elementGrain / 8) { r in
        for i in r {
            let v = xs[i]
            // Both branches avoid overflow: exp of a non-positive number only.
            if v >= 0 { y[i] = 1 / (1 + expf(-v)) } else { let e = expf(v); y[i] = e / (1 + e) }
        }
    }
    let yd = out.detached()
    Autograd.record(out, op: "sigmoid", parents: [x]) { g in
        let gx = x.gradData(), gy = g.data, ys = yd.data
        Parallel.forChunks(n) { r in for i in r { gx[i] += gy[i] * ys[i] * (1 - ys[i]) } }
    }
    return out
}

/// Elementwise absolute value: y = |x|; dy/dx = sign(x), 0 at exactly 0 (as PyTorch).
public func absolute(_ x: Tensor) -> Tensor {
    let out = Tensor(uninitialized: x.shape)
    let n = x.count, xs = x.data, y = out.data
    Parallel.forChunks(n) { r in for i in r { y[i] = Swift.abs(xs[i]) } }
    Autograd.record(out, op: "abs", parents: [x], saves: [true], savesOutput: false) { g in
        let gx = x.gradData(), gy = g.data, xs = x.data
        Parallel.forChunks(n) { r in
            for i in r {
                let v = xs[i]
                if v > 0 { gx[i] += gy[i] } else if v < 0 { gx[i] -= gy[i] }
            }
        }
    }
    return out
}
