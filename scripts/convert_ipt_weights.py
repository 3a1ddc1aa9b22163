#!/usr/bin/env python3
"""Convert the official IPT weights (IPT_pretrain.pt from huawei-noah/Pretrained-IPT) into an adaptir-dist backbone
checkpoint: one float32 HDF5 dataset per state_dict key at the file's root, in PyTorch's layout, plus the
attributes adaptir-dist's strict loader checks (format_version, preset, method, part, task, step).

    PY=$(scripts/torch-venv.sh)     # .cache/torch-venv: torch==2.13.0+cpu, numpy, h5py (created when missing)
    $PY scripts/convert_ipt_weights.py IPT_pretrain.pt datasets/ipt_backbone.h5 [--preset ipt]
    adaptir-dist inspect datasets/ipt_backbone.h5

Keys and shapes are checked against the model's key list (Tests/AdaptIRCoreTests/Fixtures/keys_ipt_adaptir.txt,
adapter keys left out); a 'module.' prefix (DataParallel) is removed, and a checkpoint dict holding the weights under
'state_dict' is unwrapped; integer buffers are stored as float32. The file is written to a temporary name and
renamed. ConvertWeightsTests checks the whole path against an independent PyTorch IPT (scripts/ipt_reference.py).
"""
import argparse, os, sys

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src"); ap.add_argument("dst")
    ap.add_argument("--preset", default="ipt", help="preset name stored in the file (ipt, small, tiny)")
    ap.add_argument("--keys", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "AdaptIRCoreTests",
                                                   "Fixtures", "keys_ipt_adaptir.txt"))
    a = ap.parse_args()
    import numpy as np, h5py, torch
    sd = torch.load(a.src, map_location="cpu")
    if isinstance(sd, dict) and "state_dict" in sd: sd = sd["state_dict"]
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    lines = [l.rstrip("\n").split("\t") for l in open(a.keys) if l.strip() and not l.startswith("#")]
    shapes = {f[0]: tuple(int(d) for d in f[1].split(",")) if f[1] else () for f in lines if ".adaptir." not in f[0]}
    expected = list(shapes)
    missing = [k for k in expected if k not in sd]
    extra = [k for k in sd if k not in shapes]
    if missing or extra:
        sys.exit(f"{a.src}: {len(missing)} missing keys (first: {missing[:3]}), {len(extra)} unexpected (first: {extra[:3]})")
    wrong = [f"{k} {tuple(sd[k].shape)} (expected {shapes[k]})" for k in expected if tuple(sd[k].shape) != shapes[k]]
    if wrong:
        sys.exit(f"{a.src}: {len(wrong)} tensors of the wrong shape (first: {wrong[:3]}); is --preset right?")
    tmp = a.dst + f".tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            for k in expected:
                f.create_dataset(k, data=sd[k].detach().cpu().numpy().astype(np.float32))
            f.attrs["format_version"] = np.int64(1); f.attrs["preset"] = a.preset; f.attrs["method"] = "frozen"
            f.attrs["part"] = "backbone"; f.attrs["task"] = np.int64(-1); f.attrs["step"] = np.int64(0)
        os.replace(tmp, a.dst)
    finally:
        if os.path.exists(tmp): os.remove(tmp)
    print(f"{a.dst}: {len(expected)} tensors, {sum(int(np.prod(sd[k].shape)) for k in expected):,} values")

if __name__ == "__main__":
    main()
