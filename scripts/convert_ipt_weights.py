#!/usr/bin/env python3
"""Convert the official IPT weights (IPT_pretrain.pt from huawei-noah/Pretrained-IPT) into an adaptir-dist backbone
checkpoint: one float32 HDF5 dataset per state_dict key at the file's root, in PyTorch's layout, plus the
attributes adaptir-dist's strict loader checks (format_version, preset, method, part, task, step).

    pip install torch --index-url https://download.pytorch.org/whl/cpu   # CPU build; plus: pip install h5py numpy
    python3 scripts/convert_ipt_weights.py IPT_pretrain.pt datasets/ipt_backbone.h5 [--preset ipt]
    adaptir-dist inspect datasets/ipt_backbone.h5

Keys are checked against the model's key list (Tests/AdaptIRCoreTests/Fixtures/keys_ipt_adaptir.txt, adapter keys
left out); a 'module.' prefix (DataParallel) is removed; integer buffers are stored as float32. The file is
written to a temporary name and renamed.
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
    expected = [l.split("\t")[0] for l in open(a.keys) if l.strip() and not l.startswith("#") and ".adaptir." not in l]
    missing = [k for k in expected if k not in sd]
    extra = [k for k in sd if k not in set(expected)]
    if missing or extra:
        sys.exit(f"{a.src}: {len(missing)} missing keys (first: {missing[:3]}), {len(extra)} unexpected (first: {extra[:3]})")
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
