"""Independent numpy port of MATLAB's imresize(img, scale, 'bicubic') on uint8 RGB images, for reference scripts.

Both directions of an integer factor: enlargement (plain cubic, a = -0.5) and reduction (MATLAB's antialiased
cubic: the kernel stretched by the factor and scaled down by it). Rows are resampled first, each pass rounds and
saturates to uint8 as MATLAB does (round half away from zero), boundaries are mirrored (symmetric padding). The
Swift side is `matlabBicubicDownscale` / `matlabBicubicUpscale` in Sources/AdaptIRCore/Data/Degradations.swift;
the scripts that use this port check that they agree with it (a fixture, or the bicubic column of `eval`).
"""
import numpy as np


def cubic(x):
    a = np.abs(x)
    a2 = a * a
    a3 = a2 * a
    return (1.5 * a3 - 2.5 * a2 + 1) * (a <= 1) + (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * ((a > 1) & (a <= 2))


def contributions(n, m, scale):
    """Indices (0-based, mirrored at the ends) and weights of the m outputs resampled from n inputs at `scale`."""
    antialias = scale < 1
    width = 4.0 / scale if antialias else 4.0
    x = np.arange(1, m + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    ind = left[:, None] + np.arange(taps)[None, :]
    d = u[:, None] - ind
    w = scale * cubic(d * scale) if antialias else cubic(d)
    w = w / w.sum(1, keepdims=True)
    mirror = np.concatenate([np.arange(1, n + 1), np.arange(n, 0, -1)])
    ind = mirror[np.mod(ind - 1, 2 * n).astype(int)] - 1
    keep = np.any(w != 0, axis=0)
    return ind[:, keep], w[:, keep]


def resize_axis(img, axis, scale):
    n = img.shape[axis]
    m = int(round(n * scale))
    ind, w = contributions(n, m, scale)
    img = np.moveaxis(img.astype(np.float64), axis, 0)
    out = np.einsum('mp,mp...->m...', w, img[ind])
    out = np.clip(np.floor(out + 0.5), 0, 255)  # MATLAB: saturate, round half away from zero
    return np.moveaxis(out, 0, axis).astype(np.uint8)


def imresize(img, scale):
    """MATLAB imresize(img, scale, 'bicubic') of an HxWxC uint8 array: rows, then columns."""
    return resize_axis(resize_axis(img, 0, scale), 1, scale)
