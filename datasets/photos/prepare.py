#!/usr/bin/env python3
"""Writes the photo corpus from unpacked packages: the step of datasets/fetch-photos.sh that needs numpy and Pillow
(run in the script's venv; never needed by the trainer).

For each row of manifest.tsv with decision "keep": read EXTRACTED/<package>/<path>, convert to RGB, downscale to at
most 1024 px on the long side (Pillow's Lanczos filter, sizes rounded to the nearest integer; smaller images are not
touched), write DEST/<split>/<name> as PNG, and check that photo_rule.py still gives the manifest's verdict. The
bundled samples (datasets/samples/{train,test}, from the scikit-image wheel) are copied into the same split, unchanged.
Prints one line per package and the totals. Any problem: one line naming the file, exit 1.

usage: prepare.py MANIFEST EXTRACTED SAMPLES DEST
"""
import collections
import os
import shutil
import sys

import numpy as np
from PIL import Image

import photo_rule

LONG_SIDE = 1024


def fail(msg: str) -> None:
    print(f"fetch-photos: {msg}", file=sys.stderr)
    sys.exit(1)


def rows(manifest: str):
    with open(manifest, encoding="utf-8") as f:
        lines = [l.rstrip("\n") for l in f if not l.startswith("#")]
    header = lines[0].split("\t")
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) != len(header):
            fail(f"{manifest}: row '{cells[0]}' has {len(cells)} fields, the header {len(header)}")
        yield dict(zip(header, cells))


def main() -> None:
    manifest, extracted, samples, dest = sys.argv[1:5]
    kept = collections.Counter()
    splits = collections.Counter()
    pixels = 0
    resized = 0
    for split in ("train", "test"):
        os.makedirs(os.path.join(dest, split), exist_ok=True)
    for r in rows(manifest):
        if r["decision"] != "keep":
            continue
        if r["split"] not in ("train", "test"):
            fail(f"{manifest}: {r['name']}: split '{r['split']}' is not train or test")
        src = os.path.join(extracted, r["package"], r["path"])
        try:
            im = Image.open(src)
            im.load()
        except Exception as e:  # noqa: BLE001 - any decoder error is reported the same way
            fail(f"{src}: cannot be decoded: {e}")
        im = im.convert("RGB")
        w, h = im.size
        if f"{w}x{h}" != r["source_size"]:
            fail(f"{src}: {w}x{h}, the manifest says {r['source_size']}")
        if max(w, h) > LONG_SIDE:
            s = LONG_SIDE / max(w, h)
            im = im.resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS)
            resized += 1
        rgb = np.asarray(im, dtype=np.float64)
        verdict = photo_rule.verdict(photo_rule.stats(rgb))
        if verdict != r["rule"]:
            fail(f"{src}: photo_rule.py says {verdict}, the manifest {r['rule']}")
        im.save(os.path.join(dest, r["split"], r["name"]), format="PNG")
        kept[r["package"]] += 1
        splits[r["split"]] += 1
        pixels += im.size[0] * im.size[1]
    for split in ("train", "test"):
        folder = os.path.join(samples, split)
        for n in sorted(os.listdir(folder)):
            if n.endswith(".png"):
                shutil.copyfile(os.path.join(folder, n), os.path.join(dest, split, "skimage--" + n))
                with Image.open(os.path.join(folder, n)) as im:
                    pixels += im.size[0] * im.size[1]
                kept["scikit-image (datasets/samples)"] += 1
                splits[split] += 1
    for package, n in sorted(kept.items()):
        print(f"fetch-photos: {package}: {n} photos")
    print(f"fetch-photos: {sum(kept.values())} photos ({resized} downscaled to {LONG_SIDE} px on the long side), "
          f"train {splits['train']}, test {splits['test']}, {pixels / 1e6:.1f} megapixels, in {dest}/{{train,test}}")


if __name__ == "__main__":
    main()
