#!/usr/bin/env python3
"""Fixtures for ChopTests / MetricsTests (numpy + scipy; h5py only to copy /work/shared/fixtures/metrics.h5).

Writes eval_fixtures.json beside this file:
- "metrics": cases {name, h, w, gt, out, scale, results: {rgb_border0, y_border0, y_border4: [psnr, ssim]}}.
  Images are HWC; gt/out are stored as integers k with value k / scale (exact in float32), so the float32
  quantisation x*255 is exact. Some out values lie
  outside [0, 1] to exercise the clamp. gt_ties / out_ties: [flat index, float32 bits] overrides with exact
  ties x*255 = n + 0.5 (n even) in float32, where round-half-to-even matters.
- "metrics_h5": gt/out (float32 bit patterns as uint32) and the psnr/ssim attributes of the independent PyTorch
  fixture metrics.h5, if it can be read.
- "chop": cases {h, w, s, rowsum [C][h*s], colsum [C][w*s], samples [[c, r, q, value]]} of forward_chop (a literal
  copy of spec/ref/chop_check.py) with the position- and content-dependent model `fixture_model` below on the
  input `chop_input(h, w)` (a closed formula, regenerated in Swift). Values are float64 at full precision.
Run: python3 make_eval_fixtures.py
"""
import json, os
import numpy as np
from scipy.ndimage import correlate

HERE = os.path.dirname(os.path.abspath(__file__))

# ----------------------------------------------------------------------------------------------- metrics (spec 5.2)
def quantize(x):
    # reference: torch float32 x*255, np.clip(0, 255), astype(float64).round()  (np.round = half to even)
    v = np.clip(x.astype(np.float32) * np.float32(255.0), 0, 255)
    return v.astype(np.float64).round()

def to_y(img):
    # reference: rgb2ycbcr(img / 255.0, only_y=True) * 255.0 (it multiplies by 255 again inside, divides after)
    im = img / 255.0
    im = im * 255.0
    rlt = np.dot(im, [65.481, 128.553, 24.966]) / 255.0 + 16.0
    rlt = rlt / 255.0
    return rlt * 255.0

def gaussian_window():
    x = np.arange(11) - 5.0
    g = np.exp(-0.5 / 1.5**2 * x * x)
    g = g / g.sum()
    return np.outer(g, g)

def filt(img):  # cv2.filter2D(img, -1, window) with BORDER_REFLECT_101 == scipy 'mirror'; per channel
    win = gaussian_window()
    if img.ndim == 2:
        return correlate(img, win, mode='mirror')
    return np.stack([correlate(img[..., c], win, mode='mirror') for c in range(img.shape[2])], axis=2)

def ssim(a, b):
    C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = filt(a)[5:-5, 5:-5], filt(b)[5:-5, 5:-5]
    s11 = filt(a * a)[5:-5, 5:-5] - mu1 ** 2
    s22 = filt(b * b)[5:-5, 5:-5] - mu2 ** 2
    s12 = filt(a * b)[5:-5, 5:-5] - mu1 * mu2
    m = ((2 * mu1 * mu2 + C1) * (2 * s12 + C2)) / ((mu1 ** 2 + mu2 ** 2 + C1) * (s11 + s22 + C2))
    return float(m.mean())

def psnr(a, b):
    mse = np.mean((a - b) ** 2)
    return float('inf') if mse == 0 else float(20 * np.log10(255.0 / np.sqrt(mse)))

def metrics(out, gt, y, bd):
    a, b = quantize(out), quantize(gt)
    if y:
        a, b = to_y(a), to_y(b)
    if bd:
        a, b = a[bd:-bd, bd:-bd], b[bd:-bd, bd:-bd]
    return [psnr(a, b), ssim(a, b)]

COMBOS = {"rgb_border0": (False, 0), "y_border0": (True, 0), "y_border4": (True, 4)}

def metric_case(rng, h, w, scale=4096):
    gt = rng.integers(0, scale + 1, size=(h, w, 3))
    # a smooth-ish gt (so SSIM is not trivially small): blur the random field
    gt = np.clip(np.round(correlate(gt.astype(np.float64), np.ones((3, 3, 1)) / 9, mode='mirror')), 0, scale).astype(np.int64)
    out = gt + rng.integers(-300, 301, size=gt.shape)
    out[0, :, 0] = -50          # below 0
    out[1, :, 1] = scale + 90   # above 1
    gtf, outf = gt.astype(np.float64) / scale, out.astype(np.float64) / scale
    assert np.all(gtf.astype(np.float32) == gtf)
    # with a power-of-two scale the only tie is 0.5 (127.5 -> 128 either way); put float32 values x with
    # float32(x * 255) = n + 0.5, n even (half-to-even gives n, half-away gives n + 1) at random places
    ties = tie_values()
    fx = {"h": h, "w": w, "scale": scale, "gt": gt.reshape(-1).tolist(), "out": out.reshape(-1).tolist()}
    for name, img in (("gt_ties", gtf), ("out_ties", outf)):
        idx = rng.choice(h * w * 3, size=40, replace=False)
        vals = rng.choice(ties, size=40)
        img.reshape(-1)[idx] = vals.astype(np.float64)
        fx[name] = [[int(i), int(np.float32(v).view(np.uint32))] for i, v in zip(idx, vals)]
    fx["results"] = {k: metrics(outf, gtf, *v) for k, v in COMBOS.items()}
    return fx

def tie_values():
    f = np.float32
    out = []
    for n in range(0, 255, 2):
        x = f((n + 0.5) / 255)
        for d in range(-4, 5):
            xx = x
            for _ in range(abs(d)):
                xx = np.nextafter(xx, f(2) if d > 0 else f(-1))
            if xx * f(255) == f(n + 0.5):
                out.append(xx); break
    assert len(out) > 100
    return np.array(out, dtype=np.float32)

# --------------------------------------------------------------------------------- chop (copy of ref/chop_check.py)
P, SH = 48, 24; ST = SH // 2

def unfold(x, kh, kw, st):
    C, H, W = x.shape
    return [(x[:, i:i+kh, j:j+kw], i, j) for i in range(0, H-kh+1, st) for j in range(0, W-kw+1, st)]

def fold(patches, H, W, st):
    C, kh, kw = patches[0].shape
    out = np.zeros((C, H, W)); k = 0
    for i in range(0, H-kh+1, st):
        for j in range(0, W-kw+1, st):
            out[:, i:i+kh, j:j+kw] += patches[k]; k += 1
    assert k == len(patches)
    return out

def cut_h(xs, w, w_cut, s, model):
    ys = [model(p) for p, _, _ in unfold(xs, P, P, ST)]
    y = fold(ys, P*s, (w-w_cut)*s, ST*s)
    inner = [q[:, :, ST*s:P*s-ST*s] for q in ys]
    yi = fold(inner, P*s, (w-w_cut-SH)*s, ST*s)
    div = fold([np.ones_like(q) for q in inner], P*s, (w-w_cut-SH)*s, ST*s)
    y[:, :, ST*s:(w-w_cut)*s-ST*s] = yi/div
    return y

def cut_w(xs, h, h_cut, s, model):
    ys = [model(p) for p, _, _ in unfold(xs, P, P, ST)]
    y = fold(ys, (h-h_cut)*s, P*s, ST*s)
    inner = [q[:, ST*s:P*s-ST*s, :] for q in ys]
    yi = fold(inner, (h-h_cut-SH)*s, P*s, ST*s)
    div = fold([np.ones_like(q) for q in inner], (h-h_cut-SH)*s, P*s, ST*s)
    y[:, ST*s:(h-h_cut)*s-ST*s, :] = yi/div
    return y

def forward_chop(x, s, model):
    C, h, w = x.shape
    h_cut, w_cut = (h-P) % ST, (w-P) % ST
    y_hw_cut = model(x[:, h-P:, w-P:])
    y_h_cut = cut_h(x[:, h-P:, :], w, w_cut, s, model)
    y_w_cut = cut_w(x[:, :, w-P:], h, h_cut, s, model)
    y_h_top = cut_h(x[:, :P, :], w, w_cut, s, model)
    y_w_top = cut_w(x[:, :, :P], h, h_cut, s, model)
    ys = [model(p) for p, _, _ in unfold(x, P, P, ST)]
    y = fold(ys, (h-h_cut)*s, (w-w_cut)*s, ST*s)
    y[:, :P*s, :] = y_h_top
    y[:, :, :P*s] = y_w_top
    inner = [q[:, ST*s:P*s-ST*s, ST*s:P*s-ST*s] for q in ys]
    yi = fold(inner, (h-h_cut-SH)*s, (w-w_cut-SH)*s, ST*s)
    div = fold([np.ones_like(q) for q in inner], (h-h_cut-SH)*s, (w-w_cut-SH)*s, ST*s)
    y[:, ST*s:(h-h_cut)*s-ST*s, ST*s:(w-w_cut)*s-ST*s] = yi/div
    a = int((P-h_cut)/2*s); b = int((P-h_cut)/2*s+0.5)
    y = np.concatenate([y[:, :y.shape[1]-a, :], y_h_cut[:, b:, :]], axis=1)
    y_w_cat = np.concatenate([y_w_cut[:, :y_w_cut.shape[1]-a, :], y_hw_cut[:, b:, :]], axis=1)
    a2 = int((P-w_cut)/2*s); b2 = int((P-w_cut)/2*s+0.5)
    y = np.concatenate([y[:, :, :y.shape[2]-a2], y_w_cat[:, :, b2:]], axis=2)
    return y

def chop_input(h, w, C=3):
    # x[c, i, j] = float32(0.5 + 0.4 sin(0.37 i + 0.011 j^2 + 0.05 i j + 1.3 c))   (same formula in ChopTests)
    c, i, j = np.meshgrid(np.arange(C), np.arange(h), np.arange(w), indexing='ij')
    return (0.5 + 0.4 * np.sin(0.37 * i + 0.011 * j * j + 0.05 * i * j + 1.3 * c)).astype(np.float32)

def fixture_model(s):
    # y[c, R, Q] = p[c, R//s, Q//s] (1 + 0.01 R - 0.004 Q) + 0.1 mean(p[c]) + 0.05 mean(p) + 0.001 Q
    R = np.arange(P * s)[:, None]; Q = np.arange(P * s)[None, :]
    def m(p):
        up = np.kron(p, np.ones((1, s, s)))
        return up * (1 + 0.01 * R - 0.004 * Q) + 0.1 * p.mean(axis=(1, 2))[:, None, None] + 0.05 * p.mean() + 0.001 * Q
    return m

def chop_case(rng, h, w, s, nsamples=200):
    x = chop_input(h, w).astype(np.float64)
    y = forward_chop(x, s, fixture_model(s))
    assert y.shape == (3, h * s, w * s)
    up = np.kron(x, np.ones((1, s, s)))
    assert np.array_equal(forward_chop(x, s, lambda p: np.kron(p, np.ones((1, s, s)))), up)
    cs, rs, qs = rng.integers(0, 3, nsamples), rng.integers(0, h * s, nsamples), rng.integers(0, w * s, nsamples)
    # always sample the seams of the bottom/right concatenation and the corners
    extra = [(c, r, q) for c in range(3) for r in (0, h * s - 1) for q in (0, w * s - 1)]
    samples = [[int(c), int(r), int(q), float(y[c, r, q])] for c, r, q in list(zip(cs, rs, qs)) + extra]
    return {"h": h, "w": w, "s": s, "rowsum": y.sum(axis=2).tolist(), "colsum": y.sum(axis=1).tolist(), "samples": samples}

def main():
    rng = np.random.default_rng(20240611)
    fx = {"metrics": [metric_case(rng, 40, 37), metric_case(rng, 32, 30)]}
    try:
        import h5py
        with h5py.File('/work/shared/fixtures/metrics.h5', 'r') as f:
            gt, out = f['gt'][...], f['out'][...]
            fx["metrics_h5"] = {"h": gt.shape[0], "w": gt.shape[1],
                                # float32 bit patterns (exact, and shorter than decimal float64 reprs)
                                "gt_bits": gt.astype('<f4').view('<u4').reshape(-1).tolist(),
                                "out_bits": out.astype('<f4').view('<u4').reshape(-1).tolist(),
                                "results": {k: [float(f[k].attrs['psnr']), float(f[k].attrs['ssim'])] for k in COMBOS}}
            # our numpy implementation agrees with the independent PyTorch fixture
            for k, (y, bd) in COMBOS.items():
                mine = metrics(out.astype(np.float64), gt.astype(np.float64), y, bd)
                ref = fx["metrics_h5"]["results"][k]
                assert abs(mine[0] - ref[0]) < 1e-9 * abs(ref[0]) and abs(mine[1] - ref[1]) < 1e-9, (k, mine, ref)
                print('metrics.h5', k, mine, ref)
    except (ImportError, OSError) as e:
        print('metrics.h5 not copied:', e)
    fx["chop"] = [chop_case(rng, h, w, s) for (h, w, s) in [(61, 75, 4), (100, 77, 1), (49, 61, 3), (48, 48, 2)]]
    path = os.path.join(HERE, 'eval_fixtures.json')
    with open(path, 'w') as f:
        json.dump(fx, f, separators=(',', ':'))
    print('wrote', path, os.path.getsize(path), 'bytes')

if __name__ == '__main__':
    main()
