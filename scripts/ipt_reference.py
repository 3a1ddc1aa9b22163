#!/usr/bin/env python3
"""An independent PyTorch reference of IPT as AdaptIR instantiates it (spec section 1), written from plain torch.nn
modules (nn.MultiheadAttention, nn.LayerNorm, nn.PixelShuffle, F.unfold/fold) whose module tree produces the key
names of the official IPT_pretrain.pt (spec 1.6, keys_ipt_adaptir.txt). ConvertWeightsTests uses it to check
scripts/convert_ipt_weights.py and the Swift model end to end:

    python3 scripts/ipt_reference.py OUT [--preset small] [--seed 0] [--official-keys KEYS]

writes into OUT
    IPT_pretrain.pt              the state_dict of a randomly initialised model (fixed seed), saved with torch.save as
                                 the official checkpoint is: an OrderedDict of tensors, keys without prefix
    IPT_pretrain_module.pt       the same with DataParallel's 'module.' prefix, in torch's legacy (pre-1.6) file format
    IPT_pretrain_transposed.pt   the state_dict with one square weight transposed (shapes still valid)
    IPT_pretrain_swapped.pt      the state_dict with two same-shaped tensors swapped
    reference.h5                 'input' [1, 3, 48, 48] in [0, 1] and 'output/t{t}' [1, 3, 48s, 48s] for the six tasks
                                 (float32, the model's forward in eval mode, not clamped); 'output_fp64/t{t}' the same
                                 model run in float64 (stored rounded to float32): how far float32 itself is from exact
With --official-keys, the keys and shapes of the model at the ipt preset (built on the meta device, no memory) must
equal the file's non-adapter lines, in order; any difference is printed and the exit status is 1.

Conventions (spec 1.1-1.4): input x [N, 3, 48, 48] in [0, 1], times rgb_range 255; MeanShift 1x1 convs (weight I,
bias -/+255*mean); per task a head (conv3x3, two ResBlocks of conv5x5-ReLU-conv5x5), the body, a global residual
(body(h) + h) and a tail (upsampler of conv+PixelShuffle stages, conv3x3); output divided by 255. Body: unfold 3x3
patches to sequence-first tokens, linear_encoding with a residual, the learned position added once before the
encoder, pre-norm DETR-style encoder and decoder layers (decoder queries + per-task query_pos, memory = encoder
output, no key position), mlp_head with a residual, no final norm, fold back.
"""
import argparse, copy, os, sys
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

# name: (n_feats, heads, encoder layers, decoder layers, MLP width); embed = 9 * n_feats (Sources/.../Preset.swift).
PRESETS = {"ipt": (64, 12, 12, 12, 2304), "small": (16, 4, 2, 2, 576), "tiny": (4, 2, 1, 1, 72)}
SCALES = [2, 3, 4, 1, 1, 1]
RGB_MEAN = (0.4488, 0.4371, 0.4040)
RGB_RANGE = 255.0
PATCH, PATCH_DIM = 48, 3
TOKENS = (PATCH // PATCH_DIM) ** 2


class MeanShift(nn.Conv2d):
    """x + sign * 255 * mean as a frozen 1x1 conv (weight I, std 1), as in IPT's common.MeanShift."""
    def __init__(self, sign):
        super().__init__(3, 3, kernel_size=1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * RGB_RANGE * torch.tensor(RGB_MEAN))
        for p in self.parameters():
            p.requires_grad = False


def conv(cin, cout, k):
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=True)


class ResBlock(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.body = nn.Sequential(conv(n, n, 5), nn.ReLU(True), conv(n, n, 5))  # keys body.0.*, body.2.*

    def forward(self, x):
        return self.body(x) + x


def upsampler(scale, n):
    """x2, x3: conv(n -> n*s^2) + PixelShuffle(s); x4: two x2 stages; x1: empty (keys tail.t.0.{0,2})."""
    stages = {1: [], 2: [2], 3: [3], 4: [2, 2]}[scale]
    layers = []
    for r in stages:
        layers += [conv(n, n * r * r, 3), nn.PixelShuffle(r)]
    return nn.Sequential(*layers)


class EncoderLayer(nn.Module):
    def __init__(self, d, heads, hidden):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, bias=False)
        self.linear1 = nn.Linear(d, hidden)
        self.linear2 = nn.Linear(hidden, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)

    def forward(self, x):
        s = self.norm1(x)
        x = x + self.self_attn(s, s, s, need_weights=False)[0]
        s = self.norm2(x)
        return x + self.linear2(F.relu(self.linear1(s)))


class DecoderLayer(nn.Module):
    def __init__(self, d, heads, hidden):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, bias=False)
        self.multihead_attn = nn.MultiheadAttention(d, heads, bias=False)
        self.linear1 = nn.Linear(d, hidden)
        self.linear2 = nn.Linear(hidden, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)

    def forward(self, t, memory, query_pos):
        s = self.norm1(t)
        q = s + query_pos
        t = t + self.self_attn(q, q, s, need_weights=False)[0]
        s = self.norm2(t)
        t = t + self.multihead_attn(s + query_pos, memory, memory, need_weights=False)[0]
        s = self.norm3(t)
        return t + self.linear2(F.relu(self.linear1(s)))


class Layers(nn.Module):
    """Holds the layers under 'layers.{i}' as torch's TransformerEncoder/Decoder do."""
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)


class LearnedPositions(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.pe = nn.Embedding(TOKENS, d)
        self.register_buffer("position_ids", torch.arange(TOKENS).expand((1, -1)))

    def forward(self):
        return self.pe(self.position_ids)  # [1, L, d]


class Body(nn.Module):
    def __init__(self, n_feats, heads, n_enc, n_dec, hidden):
        super().__init__()
        d = n_feats * PATCH_DIM * PATCH_DIM
        self.d = d
        self.linear_encoding = nn.Linear(d, d)
        self.mlp_head = nn.Sequential(nn.Linear(d, hidden), nn.Dropout(0.0), nn.ReLU(), nn.Linear(hidden, d), nn.Dropout(0.0))
        self.query_embed = nn.Embedding(len(SCALES), d * TOKENS)
        self.encoder = Layers([EncoderLayer(d, heads, hidden) for _ in range(n_enc)])
        self.decoder = Layers([DecoderLayer(d, heads, hidden) for _ in range(n_dec)])
        self.position_encoding = LearnedPositions(d)

    def forward(self, h, task):
        n = h.shape[0]
        x = F.unfold(h, PATCH_DIM, stride=PATCH_DIM).transpose(1, 2).transpose(0, 1).contiguous()  # [L, N, d]
        x = self.linear_encoding(x) + x
        query_pos = self.query_embed.weight[task].view(-1, 1, self.d).repeat(1, n, 1)             # [L, N, d]
        x = x + self.position_encoding().transpose(0, 1)                                           # once
        for layer in self.encoder.layers:
            x = layer(x)
        y = x
        for layer in self.decoder.layers:
            y = layer(y, x, query_pos)
        y = self.mlp_head(y) + y
        y = y.transpose(0, 1).contiguous().view(n, -1, self.d).transpose(1, 2)                     # [N, d, L]
        return F.fold(y, PATCH, PATCH_DIM, stride=PATCH_DIM)


class IPT(nn.Module):
    def __init__(self, preset):
        super().__init__()
        n, heads, n_enc, n_dec, hidden = PRESETS[preset]
        self.sub_mean = MeanShift(-1)
        self.add_mean = MeanShift(+1)
        self.head = nn.ModuleList([nn.Sequential(conv(3, n, 3), ResBlock(n), ResBlock(n)) for _ in SCALES])
        self.body = Body(n, heads, n_enc, n_dec, hidden)
        self.tail = nn.ModuleList([nn.Sequential(upsampler(s, n), conv(n, 3, 3)) for s in SCALES])

    def forward(self, x, task):
        h = self.head[task](self.sub_mean(x * RGB_RANGE))
        h = self.body(h, task) + h
        return self.add_mean(self.tail[task](h)) / RGB_RANGE


def randomise(model, gen):
    """Every trainable tensor random and different from its neighbours: torch's default init gives random conv,
    linear, attention and embedding weights; LayerNorm affines (1 and 0 by default) and the biases torch zeroes
    are drawn too, so that a swapped or transposed tensor changes the output. MeanShift keeps its fixed values."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("sub_mean.", "add_mean.")):
                continue
            if ".norm" in name and name.endswith(".weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.2 * (torch.rand(p.shape, generator=gen) - 0.5))


def official_key_diff(keys_file):
    """(key, shape) pairs of the ipt preset vs the keys file's non-adapter lines, in order: the differences."""
    with torch.device("meta"):
        model = IPT("ipt")
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    theirs = []
    for line in open(keys_file):
        if not line.strip() or line.startswith("#"):
            continue
        key, shape = line.split("\t")[:2]
        if ".adaptir." not in key:
            theirs.append((key, tuple(int(s) for s in shape.split(",")) if shape else ()))
    if ours == theirs:
        return []
    diff = [f"{i}: ours {a} official {b}" for i, (a, b) in enumerate(zip(ours, theirs)) if a != b][:10]
    if len(ours) != len(theirs):
        diff.append(f"ours has {len(ours)} tensors, the official list {len(theirs)}")
    return diff


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--preset", default="small", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--official-keys", help="keys_ipt_adaptir.txt: check the module tree's keys and shapes against it")
    a = ap.parse_args()
    if a.official_keys:
        diff = official_key_diff(a.official_keys)
        if diff:
            sys.exit("ipt_reference: the module tree's state_dict differs from " + a.official_keys + ":\n  " + "\n  ".join(diff))
        print(f"ipt_reference: ipt preset keys and shapes equal {a.official_keys}")

    import h5py, numpy as np
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed + 1)
    model = IPT(a.preset).eval()
    randomise(model, gen)
    x = torch.rand(1, 3, PATCH, PATCH, generator=gen)
    os.makedirs(a.out, exist_ok=True)
    model64 = copy.deepcopy(model).double()
    with torch.no_grad(), h5py.File(os.path.join(a.out, "reference.h5"), "w") as f:
        f.create_dataset("input", data=x.numpy())
        for t, s in enumerate(SCALES):
            y = model(x, t)
            assert y.shape == (1, 3, PATCH * s, PATCH * s), y.shape
            f.create_dataset(f"output/t{t}", data=y.numpy().astype(np.float32))
            y64 = model64(x.double(), t)
            f.create_dataset(f"output_fp64/t{t}", data=y64.numpy().astype(np.float32))
            err = ((y.double() - y64).abs().max() / y64.abs().max()).item()
            print(f"ipt_reference: task {t} (x{s}): torch float32 vs float64, max relative error {err:.2e}")
        f.attrs["preset"] = a.preset

    sd = model.state_dict()
    torch.save(sd, os.path.join(a.out, "IPT_pretrain.pt"))
    torch.save(OrderedDict(("module." + k, v) for k, v in sd.items()), os.path.join(a.out, "IPT_pretrain_module.pt"),
               _use_new_zipfile_serialization=False)
    last = len(model.body.decoder.layers) - 1
    transposed = OrderedDict(sd)
    key = f"body.decoder.layers.{last}.multihead_attn.out_proj.weight"
    transposed[key] = sd[key].t().contiguous()
    torch.save(transposed, os.path.join(a.out, "IPT_pretrain_transposed.pt"))
    swapped = OrderedDict(sd)
    k1, k2 = "body.encoder.layers.0.norm1.weight", "body.encoder.layers.0.norm2.weight"
    swapped[k1], swapped[k2] = sd[k2], sd[k1]
    torch.save(swapped, os.path.join(a.out, "IPT_pretrain_swapped.pt"))
    print(f"ipt_reference: preset {a.preset}, seed {a.seed}, {len(sd)} tensors, "
          f"{sum(v.numel() for v in sd.values()):,} values -> {a.out}")


if __name__ == "__main__":
    main()
