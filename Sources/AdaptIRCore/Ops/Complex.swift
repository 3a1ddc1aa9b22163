import Foundation

// Complex tensors are Float tensors whose last dim is 2: interleaved (re, im) pairs, the layout of fftwf_complex.

/// Elements per part of a split loop of atan2, sin and cos (10-40 ns each, 16x a plain pointwise op's cost): the
/// spectra of AdaptIR's frequency branch (14K values at preset small, batch 16) are then split too.
private let transcendentalGrain = Parallel.elementGrain / 16

/// Modulus of a complex tensor: |z| = sqrt(a^2 + b^2) for z = a + ib; [..., 2] -> [...] (torch.abs).
/// Backward: d|z|/da = a/|z|, d|z|/db = b/|z|, both 0 at z = 0.
public func complexAbs(_ z: Tensor) -> Tensor {
    precondition(z.rank >= 1 && z.dim(-1) == 2, "complexAbs: input must be [..., 2], got \(z.shape)")
    let n = z.count / 2
    let out = Tensor(uninitialized: Array(z.shape.dropLast()))
    let zp = z.data, y = out.data
    Parallel.forChunks(n, grain: transcendentalGrain) { r in
        for i in r {
            let a = zp[2 * i], b = zp[2 * i + 1]
            y[i] = (a * a + b * b).squareRoot()
        }
    }
    let m = out.detached()
    Autograd.record(out, op: "complexAbs", parents: [z]) { g in
        guard z.requiresGrad else { return }
        let gz = z.gradData(), gy = g.data, zp = z.data, mp = m.data
        Parallel.forChunks(n, grain: transcendentalGrain) { range in
            for i in range {
                let r = mp[i]
                guard r > 0 else { continue }
                let k = gy[i] / r
                gz[2 * i] += k * zp[2 * i]
                gz[2 * i + 1] += k * zp[2 * i + 1]
            }
        }
    }
    return out
}

/// Argument of a complex tensor: angle(z) = atan2(b, a) in (-pi, pi] for z = a + ib, so angle(0) = 0;
/// [..., 2] -> [...] (torch.angle). Backward: d/da = -b/|z|^2, d/db = a/|z|^2, both 0 at z = 0.
public func complexAngle(_ z: Tensor) -> Tensor {
    precondition(z.rank >= 1 && z.dim(-1) == 2, "complexAngle: input must be [..., 2], got \(z.shape)")
    let n = z.count / 2
    let out = Tensor(uninitialized: Array(z.shape.dropLast()))
    let zp = z.data, y = out.data
    Parallel.forChunks(n, grain: transcendentalGrain) { r in for i in r { y[i] = atan2f(zp[2 * i + 1], zp[2 * i]) } }
    Autograd.record(out, op: "complexAngle", parents: [z]) { g in
        guard z.requiresGrad else { return }
        let gz = z.gradData(), gy = g.data, zp = z.data
        Parallel.forChunks(n, grain: transcendentalGrain) { range in
            for i in range {
                let a = zp[2 * i], b = zp[2 * i + 1]
                let r2 = a * a + b * b
                guard r2 > 0 else { continue }
                let k = gy[i] / r2
                gz[2 * i] -= k * b
                gz[2 * i + 1] += k * a
            }
        }
    }
    return out
}

/// Complex tensor from magnitude and phase (torch.polar): z = (m cos p, m sin p); [...] x [...] -> [..., 2].
/// Backward: dz/dm = (cos p, sin p), dz/dp = (-m sin p, m cos p).
public func polar(magnitude m: Tensor, phase p: Tensor) -> Tensor {
    precondition(m.shape == p.shape, "polar: magnitude \(m.shape) and phase \(p.shape) must have the same shape")
    let n = m.count
    let out = Tensor(uninitialized: m.shape + [2])
    let mp = m.data, pp = p.data, z = out.data
    Parallel.forChunks(n, grain: transcendentalGrain) { range in
        for i in range {
            let r = mp[i], t = pp[i]
            z[2 * i] = r * cosf(t)
            z[2 * i + 1] = r * sinf(t)
        }
    }
    Autograd.record(out, op: "polar", parents: [m, p]) { g in
        let gz = g.data, mp = m.data, pp = p.data
        if m.requiresGrad {
            let gm = m.gradData()
            Parallel.forChunks(n, grain: transcendentalGrain) { r in
                for i in r { gm[i] += gz[2 * i] * cosf(pp[i]) + gz[2 * i + 1] * sinf(pp[i]) }
            }
        }
        if p.requiresGrad {
            let gp = p.gradData()
            Parallel.forChunks(n, grain: transcendentalGrain) { r in
                for i in r { gp[i] += mp[i] * (gz[2 * i + 1] * cosf(pp[i]) - gz[2 * i] * sinf(pp[i])) }
            }
        }
    }
    return out
}
