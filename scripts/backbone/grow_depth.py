#!/usr/bin/env python3
"""Grow a backbone file to more transformer layers without changing what it computes.

    grow_depth.py IN.h5 OUT.h5 --preset deep --encoder-layers 4 --decoder-layers 4

IPT's encoder and decoder layers are pre-norm residual blocks (x + attn(norm(x)), x + mlp(norm(x))), so a layer whose
output projections (self_attn.out_proj, multihead_attn.out_proj, linear2) are zero is exactly the identity. The new
layers are appended after the existing ones: their input projections and first MLP layer are copies of the last
existing layer's (so they start from features the model already uses, not noise), their output projections are zero,
their norms copied. The result computes the same function as IN (checked by `adaptir-dist eval` in
datasets/README.md, stage 7) and trains like any backbone (`pretrain --preset deep --init OUT.h5`).

Needs h5py and numpy (the torch venv of scripts/torch-venv.sh has both); the trainer itself never runs Python.
"""
import argparse
import os
import re
import sys

import h5py
import numpy as np

ZEROED = ("self_attn.out_proj.weight", "multihead_attn.out_proj.weight", "linear2.weight", "linear2.bias")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--preset", required=True, help="the preset name written into OUT (must exist in the build)")
    ap.add_argument("--encoder-layers", type=int, required=True)
    ap.add_argument("--decoder-layers", type=int, required=True)
    a = ap.parse_args()
    with h5py.File(a.input, "r") as src:
        if src.attrs.get("part") != "backbone":
            sys.exit(f"grow_depth: {a.input}: part is {src.attrs.get('part')!r}, expected a backbone file")
        tensors = {k: np.array(src[k]) for k in src.keys()}
        attrs = dict(src.attrs)
    counts = {}
    for k in tensors:
        m = re.match(r"body\.(encoder|decoder)\.layers\.(\d+)\.", k)
        if m:
            counts[m.group(1)] = max(counts.get(m.group(1), 0), int(m.group(2)) + 1)
    out = dict(tensors)
    for stack, want in (("encoder", a.encoder_layers), ("decoder", a.decoder_layers)):
        have = counts.get(stack, 0)
        if have == 0 or want < have:
            sys.exit(f"grow_depth: {a.input}: has {have} {stack} layers, cannot grow to {want}")
        last = f"body.{stack}.layers.{have - 1}."
        for i in range(have, want):
            for k, v in tensors.items():
                if not k.startswith(last):
                    continue
                leaf = k[len(last):]
                out[f"body.{stack}.layers.{i}.{leaf}"] = np.zeros_like(v) if leaf in ZEROED else v.copy()
    attrs["preset"] = a.preset
    attrs["step"] = np.int64(0)
    tmp = a.output + ".tmp"
    with h5py.File(tmp, "w") as dst:
        for k in sorted(out):
            dst.create_dataset(k, data=out[k])
        for k, v in attrs.items():
            dst.attrs[k] = v
    os.replace(tmp, a.output)
    added = len(out) - len(tensors)
    print(f"{a.output}: preset {a.preset}, {a.encoder_layers}+{a.decoder_layers} layers ({added} tensors added, "
          f"{sum(v.size for v in out.values()):,} values)")


if __name__ == "__main__":
    main()
