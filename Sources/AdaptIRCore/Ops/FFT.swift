import Foundation

/// Orthonormal 2-D real FFT over the last two dims (torch.fft.rfft2(x, norm="ortho")):
///
///     X[..., k, l] = 1/sqrt(H*W) * sum_{h,w} x[..., h, w] * exp(-2*pi*i*(k*h/H + l*w/W)),   l = 0 ... W/2
///
/// Input real [..., H, W] with W even; output the half spectrum [..., H, W/2+1, 2] as (re, im) pairs.
/// Backward (spec 2.6): gx = Re(ifft2_ortho(cotangent zero-padded to the full W)), computed as the `irfft2`
/// procedure on the cotangent with column weights [1, 1/2, ..., 1/2, 1] (c2r doubles the middle columns).
public func rfft2(_ x: Tensor) -> Tensor {
    precondition(x.rank >= 2, "rfft2: input must be [..., H, W], got \(x.shape)")
    let h = x.dim(-2), w = x.dim(-1)
    precondition(h >= 1 && w >= 2 && w % 2 == 0, "rfft2: need H >= 1 and even W >= 2, got \(x.shape)")
    let count = x.count / (h * w)
    let wh = w / 2 + 1
    let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [wh, 2])
    FFTKernels.rfft2(x.data, out.data, count: count, height: h, width: w, edgeWeight: 1, midWeight: 1)
    Autograd.record(out, op: "rfft2", parents: [x]) { g in
        guard x.requiresGrad, count > 0 else { return }
        let tmp = Buffer(count: x.count, zeroed: false)
        FFTKernels.irfft2(g.data, tmp.base, count: count, height: h, width: w, edgeWeight: 1, midWeight: 0.5)
        let gx = x.gradData(), t = tmp.base, n = x.count
        withExtendedLifetime(tmp) { for i in 0..<n { gx[i] += t[i] } }
    }
    return out
}

/// Orthonormal inverse of `rfft2` with numpy/PyTorch semantics for any (not necessarily Hermitian) half spectrum
/// (torch.fft.irfft2(X, s=(H, W), norm="ortho")):
///
///     Z[..., h, l] = 1/sqrt(H) * sum_k X[..., k, l] * exp(+2*pi*i*k*h/H)                  (c2c along H)
///     y[..., h, w] = 1/sqrt(W) * sum_l c_l * Re(Z[..., h, l] * exp(+2*pi*i*l*w/W)),  c = [1, 2, ..., 2, 1]
///
/// (the 1-D c2r along W, which ignores the imaginary parts of columns 0 and W/2). Input [..., H, W/2+1, 2], W even;
/// output real [..., H, W]. Backward (spec 2.6): dX = rfft2_ortho(gy) * [1, 2, ..., 2, 1] per column.
public func irfft2(_ X: Tensor, height h: Int, width w: Int) -> Tensor {
    precondition(h >= 1 && w >= 2 && w % 2 == 0, "irfft2: need H >= 1 and even W >= 2, got H=\(h) W=\(w)")
    let wh = w / 2 + 1
    precondition(X.rank >= 3 && X.dim(-1) == 2 && X.dim(-2) == wh && X.dim(-3) == h,
                 "irfft2: input must be [..., \(h), \(wh), 2] for H=\(h) W=\(w), got \(X.shape)")
    let count = X.count / (h * wh * 2)
    let out = Tensor(uninitialized: Array(X.shape.dropLast(2)) + [w])
    FFTKernels.irfft2(X.data, out.data, count: count, height: h, width: w, edgeWeight: 1, midWeight: 1)
    Autograd.record(out, op: "irfft2", parents: [X]) { g in
        guard X.requiresGrad, count > 0 else { return }
        let tmp = Buffer(count: X.count, zeroed: false)
        FFTKernels.rfft2(g.data, tmp.base, count: count, height: h, width: w, edgeWeight: 1, midWeight: 2)
        let gX = X.gradData(), t = tmp.base, n = X.count
        withExtendedLifetime(tmp) { for i in 0..<n { gX[i] += t[i] } }
    }
    return out
}

/// Raw batched kernels on contiguous memory (no autodiff), built on the cached FFTW plans.
enum FFTKernels {
    /// out[b, k, l] = c_l / sqrt(H*W) * r2c(x[b])[k, l] with c_0 = c_{W/2} = edgeWeight, other c_l = midWeight.
    static func rfft2(_ x: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                      count: Int, height h: Int, width w: Int, edgeWeight: Float, midWeight: Float) {
        guard count > 0 else { return }
        let wh = w / 2 + 1
        FFTPlans.plan(for: .rfft2(count: count, height: h, width: w)).execute(x, out)
        let s = 1 / Float(h * w).squareRoot()
        let edge = s * edgeWeight, mid = s * midWeight
        for row in 0..<(count * h) {
            let p = out + row * wh * 2
            p[0] *= edge; p[1] *= edge
            for l in 1..<(wh - 1) { p[2 * l] *= mid; p[2 * l + 1] *= mid }
            p[2 * (wh - 1)] *= edge; p[2 * (wh - 1) + 1] *= edge
        }
    }

    /// out[b] = the irfft2 procedure (c2c inverse along H, then 1-D c2r along W, times 1/sqrt(H*W)) applied to the
    /// half spectrum spec[b] with its columns multiplied by c_l (edgeWeight at l = 0 and W/2, midWeight elsewhere).
    /// `spec` is only read: FFTW's c2r destroys its input, so the work happens on a scratch copy.
    static func irfft2(_ spec: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                       count: Int, height h: Int, width w: Int, edgeWeight: Float, midWeight: Float) {
        guard count > 0 else { return }
        let wh = w / 2 + 1
        let scratch = Buffer(count: count * h * wh * 2, zeroed: false)
        let z = scratch.base
        let s = 1 / Float(h * w).squareRoot()
        let edge = s * edgeWeight, mid = s * midWeight
        for row in 0..<(count * h) {
            let p = spec + row * wh * 2, q = z + row * wh * 2
            q[0] = p[0] * edge; q[1] = p[1] * edge
            for l in 1..<(wh - 1) { q[2 * l] = p[2 * l] * mid; q[2 * l + 1] = p[2 * l + 1] * mid }
            q[2 * (wh - 1)] = p[2 * (wh - 1)] * edge; q[2 * (wh - 1) + 1] = p[2 * (wh - 1) + 1] * edge
        }
        // `scratch` must outlive the raw pointer `z`. FFTW's 1-D c2r ignores the imaginary parts of bins 0 and W/2
        // (numpy semantics; checked in FFTTests.testFFTWc2rIgnoresImagOfDCAndNyquist), so no zeroing is needed.
        withExtendedLifetime(scratch) {
            FFTPlans.plan(for: .ifftColumns(count: count, height: h, columns: wh)).execute(z, z)
            FFTPlans.plan(for: .irfftRows(rows: count * h, width: w)).execute(z, out)
        }
    }
}
