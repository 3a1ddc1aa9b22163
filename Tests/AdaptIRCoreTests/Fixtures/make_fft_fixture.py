#!/usr/bin/env python3
"""Writes fft_fixture.json next to this file: numpy references for the Swift FFT ops (FFTTests.swift).

Inputs are rounded to float32 first, so Swift sees exactly the values the float64 references were computed from.
Complex arrays are stored as [..., 2] (re, im) nested lists, the layout of the Swift complex tensors.
Run: python3 make_fft_fixture.py   (numpy only; deterministic, seed 0)
"""
import json
import os

import numpy as np

H = W = 16
Wh = W // 2 + 1
rng = np.random.default_rng(0)


def f32(a):
    return a.astype(np.float32).astype(np.float64)


def c2pairs(z):
    return np.stack([z.real, z.imag], axis=-1)


def out(a):
    return [float(np.float32(v)) for v in np.asarray(a, dtype=np.float64).ravel()]


x = f32(rng.standard_normal((H, W)))                                   # real input
X = f32(rng.standard_normal((H, Wh))) + 1j * f32(rng.standard_normal((H, Wh)))   # non-Hermitian half spectrum
g = f32(rng.standard_normal((H, W)))                                   # cotangent of irfft2's output
Gc = f32(rng.standard_normal((H, Wh))) + 1j * f32(rng.standard_normal((H, Wh)))  # cotangent of rfft2's output

rfft_x = np.fft.rfft2(x, norm="ortho")
irfft_X = np.fft.irfft2(X, s=(H, W), norm="ortho")

# Explicit gradients, as in spec/ref/fft_check.py (section 2.6).
wts = np.full(Wh, 2.0); wts[0] = 1; wts[-1] = 1
grad_X = np.fft.rfft2(g, norm="ortho") * wts[None, :]                 # d<g, irfft2(X)>/d(Re X, Im X)
full = np.zeros((H, W), complex); full[:, :Wh] = Gc
grad_x = np.real(np.fft.ifft2(full, norm="ortho"))                     # d<Gc, rfft2(x)>/dx

# Sanity: finite differences of the explicit gradients (float64).
eps = 1e-6
for (a, b) in [(0, 0), (5, 8), (11, 3)]:
    for part in (1, 1j):
        Xp = X.copy(); Xp[a, b] += eps * part
        num = (np.sum(g * np.fft.irfft2(Xp, s=(H, W), norm="ortho")) - np.sum(g * irfft_X)) / eps
        ana = grad_X[a, b].real if part == 1 else grad_X[a, b].imag
        assert abs(num - ana) < 1e-5, (a, b, part, num, ana)

fixture = {
    "H": H, "W": W,
    "x": out(x),
    "rfft2_x": out(c2pairs(rfft_x)),
    "X": out(c2pairs(X)),
    "irfft2_X": out(irfft_X),
    "g": out(g),
    "grad_X": out(c2pairs(grad_X)),
    "Gc": out(c2pairs(Gc)),
    "grad_x": out(grad_x),
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fft_fixture.json")
with open(path, "w") as f:
    json.dump(fixture, f, separators=(",", ":"))
    f.write("\n")
print("wrote", path)
