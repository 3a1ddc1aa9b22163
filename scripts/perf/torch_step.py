#!/usr/bin/env python3
"""The PyTorch side of the performance comparison (docs/performance.md, scripts/perf/compare.sh): the training step a
user would run instead of `adaptir-dist bench step`, on the same preset, batch, threads and method, written from the
spec (section 2.3 for AdaptIR) on top of scripts/ipt_reference.py's IPT.

    python3 scripts/perf/torch_step.py --preset ipt --method adaptir --batch 16 --threads 1 [--steps 3 --warmup 2]
                                       [--csv FILE]

Step = forward + L1 loss + backward + AdamW, as `Trainer.trainStep` (one process, no collectives). adaptir: the
backbone frozen (requires_grad False), one AdaptIR module parallel to the MLP of every encoder and decoder layer;
full: every backbone tensor trains. Prints the median step, its forward/backward/optimizer parts and the peak
resident memory (ru_maxrss of this process), and appends a CSV row with the columns of `bench step --csv` that
apply.
"""
import argparse, math, os, resource, statistics, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import torch
import torch.nn as nn
import torch.nn.functional as F
import ipt_reference as ref


class AdaptIR(nn.Module):
    """Spec 2.3: down 1x1 + BN, FAM (rfft2 affine on amplitude and phase), LIM (depthwise 3x3 from A@B), CGM
    (softmax pooling + MLP score), Adaptive Feature Ensemble, zero-initialised up 1x1."""

    def __init__(self, d, hidden):
        super().__init__()
        r, c = max(1, hidden // 2), max(1, hidden // 8)   # as AdaptIR.rank / gateHidden (12 and 3 at hidden 24)
        self.h = hidden
        self.head = nn.Conv2d(d, hidden, 1)
        self.BN = nn.BatchNorm2d(hidden)
        self.conv_weight_A = nn.Parameter(torch.empty(hidden, r))
        self.conv_weight_B = nn.Parameter(torch.empty(r, 9))
        self.conv_bias = nn.Parameter(torch.zeros(hidden))
        nn.init.kaiming_uniform_(self.conv_weight_A, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.conv_weight_B, a=math.sqrt(5))
        self.amp_fuse = nn.Conv2d(hidden, hidden, 1, groups=hidden)
        self.pha_fuse = nn.Conv2d(hidden, hidden, 1, groups=hidden)
        for m in (self.amp_fuse, self.pha_fuse):
            nn.init.ones_(m.weight); nn.init.zeros_(m.bias)
        self.compress = nn.Conv2d(hidden, 1, 1)
        self.proj = nn.Sequential(nn.Linear(hidden, r), nn.GELU(), nn.Linear(r, hidden))
        self.channel_interaction = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden, c, 1), nn.GELU(),
                                                 nn.Conv2d(c, hidden, 1))
        self.spatial_interaction = nn.Conv2d(hidden, 1, 1)
        self.tail = nn.Conv2d(hidden, d, 1, bias=False)
        for m in (self.channel_interaction[3], self.spatial_interaction, self.tail):
            nn.init.zeros_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, s):                       # s: (L, N, d) tokens
        L, n, d = s.shape
        side = int(math.isqrt(L))
        x0 = s.view(side, side, n, d).permute(2, 3, 0, 1)
        x = self.BN(self.head(x0))
        X = torch.fft.rfft2(x, norm="ortho")
        mag = self.amp_fuse(torch.abs(X))
        pha = self.pha_fuse(torch.angle(X))
        g = torch.abs(torch.fft.irfft2(torch.complex(mag * torch.cos(pha), mag * torch.sin(pha)), s=(side, side), norm="ortho"))
        k = (self.conv_weight_A @ self.conv_weight_B).view(self.h, 1, 3, 3)
        l = F.conv2d(x, k, self.conv_bias, padding=1, groups=self.h)
        w = torch.softmax(self.compress(x).view(n, -1), dim=1)
        v = torch.einsum("ncp,np->nc", x.reshape(n, self.h, -1), w)
        cs = self.proj(v)
        cg = torch.sigmoid(self.channel_interaction(g))
        sg = torch.sigmoid(self.spatial_interaction(l))
        y = cg * l + sg * g
        out = self.tail(cs[:, :, None, None] * y)
        return out.reshape(n, d, L).permute(2, 0, 1)


class ParallelAdapter(nn.Module):
    """The layer's second MLP linear followed by + AdaptIR(s), s the output of the norm that feeds the MLP (taken by
    a forward hook): AdaptIR parallel to the frozen MLP (spec 2.1) without rewriting the layer's forward."""

    def __init__(self, linear2, norm, adaptir):
        super().__init__()
        self.linear2, self.adaptir, self.s = linear2, adaptir, None
        norm.register_forward_hook(lambda module, inputs, output: setattr(self, "s", output))

    def forward(self, h):
        return self.linear2(h) + self.adaptir(self.s)


def build(preset, method):
    torch.manual_seed(0)
    model = ref.IPT(preset)
    if method == "adaptir":
        d = model.body.d
        sites = [(l, l.norm2) for l in model.body.encoder.layers] + [(l, l.norm3) for l in model.body.decoder.layers]
        for layer, norm in sites:
            adapter = AdaptIR(d, max(1, d // 24))
            # The zero up-projection would leave every other adapter gradient at 0: perturb it (as bench step does).
            with torch.no_grad():
                adapter.tail.weight.uniform_(-0.01, 0.01)
            layer.linear2 = ParallelAdapter(layer.linear2, norm, adapter)
        for name, p in model.named_parameters():
            p.requires_grad = ".adaptir." in name
    elif method == "full":
        for name, p in model.named_parameters():
            p.requires_grad = not name.startswith(("sub_mean.", "add_mean."))
    else:
        sys.exit(f"torch_step: --method must be adaptir or full, got '{method}'")
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="ipt", choices=sorted(ref.PRESETS))
    ap.add_argument("--method", default="adaptir", choices=["adaptir", "full"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--task", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--csv")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    t0 = time.perf_counter()
    model = build(a.preset, a.method)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-5, weight_decay=0.01)
    s = ref.SCALES[a.task]
    gen = torch.Generator().manual_seed(3)
    lq = torch.rand(a.batch, 3, 48, 48, generator=gen)
    gt = torch.rand(a.batch, 3, 48 * s, 48 * s, generator=gen)
    build_s = time.perf_counter() - t0
    times = []
    for i in range(a.warmup + a.steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.l1_loss(model(lq, a.task), gt)
        f = time.perf_counter()
        loss.backward()
        b = time.perf_counter()
        opt.step()
        e = time.perf_counter()
        if i >= a.warmup:
            times.append((e - t, f - t, b - f, e - b))
    med = [statistics.median(x[k] for x in times) for k in range(4)]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1048576  # KiB -> GiB
    n_train = sum(p.numel() for p in trainable)
    print(f"torch {torch.__version__}: preset {a.preset}, method {a.method}, task {a.task} (x{s}), {a.batch} patches, "
          f"{torch.get_num_threads()} thread(s); {a.warmup} warm-up + {a.steps} timed steps; built in {build_s:.1f} s")
    print(f"step (median) {1e3 * med[0]:.1f} ms: forward {1e3 * med[1]:.1f}, backward {1e3 * med[2]:.1f}, optimizer {1e3 * med[3]:.1f} ms")
    print(f"trainable {n_train:,} parameters; peak resident memory {peak:.2f} GiB")
    if a.csv:
        new = not os.path.exists(a.csv)
        with open(a.csv, "a") as fh:
            if new:
                fh.write("preset,method,task,batch_per_rank,threads,step_ms,forward_ms,backward_ms,optimizer_ms,peak_gib,trainable\n")
            fh.write(f"{a.preset},{a.method},{a.task},{a.batch},{torch.get_num_threads()},{1e3 * med[0]:.1f},{1e3 * med[1]:.1f},"
                     f"{1e3 * med[2]:.1f},{1e3 * med[3]:.1f},{peak:.3f},{n_train}\n")


if __name__ == "__main__":
    main()
