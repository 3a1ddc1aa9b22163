#!/usr/bin/env python3
"""Grow a backbone file to more channels (n_feats), Net2Net style, so that it starts from what it has learnt.

    grow_width.py IN.h5 OUT.h5 --preset wide --feats 24 --heads 6 --mlp 864 [--seed 0]

New feature channel nf+j copies channel j (j < new - nf) everywhere a channel is a channel: the heads' convolutions
(output rows copied; a convolution reading copies gets each input column split in two halves, W/2 + e and W/2 - e,
whose sum is W, so its output is unchanged while the copies can drift apart), the tails' upsampler convolutions
(rows copied through the pixel-shuffle layout: channel c*r^2 + s), and, through IPT's 3x3 unfold (token dimension
c*9 + k), the transformer's residual stream: token dimension E+j copies dimension j. Position encodings, task
queries, LayerNorm weights and every linear map writing the stream copy rows; every linear map reading it splits
columns. The added attention heads and MLP units start with random input weights (the std of the existing rows)
and zero output weights, so they add nothing at first.

Exact except LayerNorm: its mean and variance now run over the copies too, so the grown model starts close to, not
at, the original (datasets/README.md, stage 9 says by how much). Needs h5py and numpy (the torch venv).
"""
import argparse
import os
import re
import sys

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--preset", required=True)
    ap.add_argument("--feats", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True, help="heads of the grown model; the head width must stay the input's")
    ap.add_argument("--mlp", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=1e-3, help="e of the split columns, relative to the column's max |W|")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    with h5py.File(a.input, "r") as src:
        if src.attrs.get("part") != "backbone":
            sys.exit(f"grow_width: {a.input}: part is {src.attrs.get('part')!r}, expected a backbone file")
        t = {k: np.array(src[k]) for k in src.keys()}
        attrs = dict(src.attrs)
    nf = t["head.0.0.weight"].shape[0]
    nf2 = a.feats
    E, E2 = nf * 9, nf2 * 9
    H = t["body.encoder.layers.0.linear1.weight"].shape[0]
    if not (nf < nf2 <= 2 * nf):
        sys.exit(f"grow_width: {a.input}: n_feats {nf}; --feats must be in {nf + 1}..{2 * nf}")
    # The old heads keep their rows, so the head width must stay the input's (36 for small: 4 heads of 144).
    if E2 % a.heads or E % (E2 // a.heads) or a.mlp < H:
        sys.exit(f"grow_width: --heads {a.heads} must divide {E2} into heads as wide as the input's "
                 f"(e.g. {E2 // 36} for 36-wide heads) and --mlp must be >= {H}")
    feat_map = np.concatenate([np.arange(nf), np.arange(nf2 - nf)])     # new channel -> old channel
    tok_map = np.concatenate([np.arange(E), np.arange(E2 - E)])         # new token dim -> old token dim

    def rows(w, m):
        return w[m].copy()

    def split_cols(w, m):
        """Columns (axis 1) for a widened input: a copied input's weight is split between it and its copy."""
        old = w.shape[1]
        out = w[:, m].astype(np.float64)
        for new_j in range(old, len(m)):
            j = m[new_j]
            scale = np.abs(w[:, j]).max() or 1.0
            e = a.noise * scale * rng.standard_normal(w[:, j].shape)
            out[:, j] = w[:, j] / 2 + e
            out[:, new_j] = w[:, j] / 2 - e
        return out.astype(np.float32)

    def shuffle_map(r2):
        return np.array([feat_map[c] * r2 + s for c in range(nf2) for s in range(r2)])

    def random_rows(n, cols, like):
        """New units' input weights: random, with the std of the existing ones."""
        return (rng.standard_normal((n, cols)) * like.std()).astype(np.float32)

    out = {}
    for k, w in t.items():
        if re.match(r"head\.\d+\.0\.(weight|bias)$", k):
            out[k] = rows(w, feat_map)
        elif re.match(r"head\.\d+\.\d+\.body\.\d\.weight$", k):
            out[k] = rows(split_cols(w, feat_map), feat_map)
        elif re.match(r"head\.\d+\.\d+\.body\.\d\.bias$", k):
            out[k] = rows(w, feat_map)
        elif re.match(r"tail\.\d+\.0\.\d\.(weight|bias)$", k):  # upsampler convs: nf -> r^2 nf, then pixel shuffle
            r2 = w.shape[0] // nf
            w2 = split_cols(w, feat_map) if w.ndim == 4 else w
            out[k] = rows(w2, shuffle_map(r2))
        elif re.match(r"tail\.\d+\.1\.weight$", k):
            out[k] = split_cols(w, feat_map)
        elif re.match(r"tail\.\d+\.1\.bias$", k) or k.startswith(("add_mean", "sub_mean")) or k.endswith("position_ids"):
            out[k] = w.copy()
        elif k == "body.position_encoding.pe.weight":
            out[k] = w[:, tok_map].copy()
        elif k == "body.query_embed.weight":
            out[k] = w.reshape(w.shape[0], -1, E)[:, :, tok_map].reshape(w.shape[0], -1).copy()
        elif re.search(r"norm\d\.(weight|bias)$", k):
            out[k] = w[tok_map].copy()
        elif k.endswith("linear_encoding.weight"):
            out[k] = rows(split_cols(w, tok_map), tok_map)
        elif k.endswith("linear_encoding.bias"):
            out[k] = w[tok_map].copy()
        elif k.endswith(("linear1.weight", "mlp_head.0.weight")):
            out[k] = np.concatenate([split_cols(w, tok_map), random_rows(a.mlp - H, E2, w)])
        elif k.endswith(("linear1.bias", "mlp_head.0.bias")):
            out[k] = np.concatenate([w, np.zeros(a.mlp - H, np.float32)])
        elif k.endswith(("linear2.weight", "mlp_head.3.weight")):
            out[k] = np.concatenate([rows(w, tok_map), np.zeros((E2, a.mlp - H), np.float32)], axis=1)
        elif k.endswith(("linear2.bias", "mlp_head.3.bias")):
            out[k] = w[tok_map].copy()
        elif k.endswith("in_proj_weight"):  # [3E, E]: Q, K, V; the old heads keep their rows, the new ones are random
            blocks = []
            for b in range(3):
                wb = w[b * E:(b + 1) * E]
                blocks.append(np.concatenate([split_cols(wb, tok_map), random_rows(E2 - E, E2, wb)]))
            out[k] = np.concatenate(blocks)
        elif k.endswith("out_proj.weight"):  # reads the heads' values (new heads: zero), writes the stream (copies)
            out[k] = np.concatenate([rows(w, tok_map), np.zeros((E2, E2 - E), np.float32)], axis=1)
        else:
            sys.exit(f"grow_width: {a.input}: no rule for tensor {k} {w.shape}")
    attrs["preset"] = a.preset
    attrs["step"] = np.int64(0)
    tmp = a.output + ".tmp"
    with h5py.File(tmp, "w") as dst:
        for k in sorted(out):
            dst.create_dataset(k, data=out[k].astype(np.float32) if out[k].dtype == np.float64 else out[k])
        for k, v in attrs.items():
            dst.attrs[k] = v
    os.replace(tmp, a.output)
    print(f"{a.output}: preset {a.preset}, n_feats {nf} -> {nf2}, embed {E} -> {E2}, {a.heads} heads, MLP {H} -> {a.mlp} "
          f"({sum(v.size for v in out.values()):,} values)")


if __name__ == "__main__":
    main()
