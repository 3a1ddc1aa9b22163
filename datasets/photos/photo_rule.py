#!/usr/bin/env python3
"""The photograph rule of datasets/fetch-photos.sh: statistics of an RGB image that tell a photograph from a drawing,
a render or a flat graphic, and the verdict they give.

Usage: photo_rule.py IMAGE...   (prints one TSV row per image: name, verdict and the statistics)

All statistics are computed on the image as fetch-photos.sh writes it (RGB, long side at most 1024 px), on the
luma Y = (299 R + 587 G + 114 B) / 1000 in float64:
  colours  distinct RGB triplets per 1000 pixels
  flat8    fraction of the 8x8 blocks (grid from the top left) whose luma range max-min is at most 2
  detail   median over the image of |4-neighbour Laplacian| of the luma, in grey levels
  smooth   fraction of pixels with |Laplacian| < 0.5 (noise-free gradients and flat fills give values near 1)
Verdict "photo" when all of: colours >= 20, flat8 <= 0.30, smooth <= 0.35, detail >= 0.75; else "graphic".
Camera images carry sensor noise and texture almost everywhere; vector art and gradients are exactly smooth over
large areas, and greyscale images have at most 256 colours. The thresholds were set on the 105 candidates of
datasets/photos/manifest.tsv. The rule is necessary, not sufficient: renders and paintings with grain pass it, so
every verdict was also checked by eye, and a file is kept only when both say photograph (the manifest records both).
"""
import sys

import numpy as np
from PIL import Image


def stats(rgb: np.ndarray) -> dict:
    h, w, _ = rgb.shape
    flat = rgb.reshape(-1, 3).astype(np.uint32)
    codes = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    colours = len(np.unique(codes)) * 1000.0 / (h * w)
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    bh, bw = h // 8, w // 8
    blocks = y[: bh * 8, : bw * 8].reshape(bh, 8, bw, 8)
    rng = blocks.max(axis=(1, 3)) - blocks.min(axis=(1, 3))
    flat8 = float((rng <= 2).mean())
    lap = np.abs(4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:])
    detail = float(np.median(lap))
    smooth = float((lap < 0.5).mean())
    return {"colours": colours, "flat8": flat8, "detail": detail, "smooth": smooth}


def verdict(s: dict) -> str:
    ok = s["colours"] >= 20 and s["flat8"] <= 0.30 and s["smooth"] <= 0.35 and s["detail"] >= 0.75
    return "photo" if ok else "graphic"


def main() -> None:
    for path in sys.argv[1:]:
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
        s = stats(rgb)
        print(f"{path}\t{verdict(s)}\tcolours={s['colours']:.1f}\tflat8={s['flat8']:.3f}\tdetail={s['detail']:.2f}\tsmooth={s['smooth']:.3f}")


if __name__ == "__main__":
    main()
