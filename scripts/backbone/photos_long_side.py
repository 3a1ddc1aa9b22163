#!/usr/bin/env python3
"""The corpus's training photos at another resolution (datasets/README.md, stage 8), for pre-training experiments.

    .cache/photos/venv/bin/python scripts/backbone/photos_long_side.py DEST LONG_SIDE

datasets/fetch-photos.sh keeps each wallpaper at most 1024 px on the long side (its pinned SHA-256 sums are of
those files). This writes the same training-split photos from the packages it unpacked (.cache/photos/unpacked) at
most LONG_SIDE px on the long side (Pillow's Lanczos, as prepare.py), plus the bundled training samples unchanged,
into DEST. The test split is not touched: results stay comparable with the 1024-px test photos.
"""
import os
import shutil
import sys

from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(repo, "datasets", "photos"))
import prepare  # noqa: E402  (rows() reads the manifest the same way fetch-photos does)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().split("\n\n")[1])
    dest, long_side = sys.argv[1], int(sys.argv[2])
    unpacked = os.path.join(repo, ".cache", "photos", "unpacked")
    os.makedirs(dest, exist_ok=True)
    count, pixels = 0, 0
    for r in prepare.rows(os.path.join(repo, "datasets", "photos", "manifest.tsv")):
        if r["decision"] != "keep" or r["split"] != "train":
            continue
        src = os.path.join(unpacked, r["package"], r["path"])
        if not os.path.exists(src):
            sys.exit(f"photos_long_side: {src}: missing (run datasets/fetch-photos.sh first)")
        im = Image.open(src).convert("RGB")
        w, h = im.size
        if max(w, h) > long_side:
            s = long_side / max(w, h)
            im = im.resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS)
        im.save(os.path.join(dest, r["name"]), format="PNG")
        count += 1
        pixels += im.size[0] * im.size[1]
    samples = os.path.join(repo, "datasets", "samples", "train")
    for f in sorted(os.listdir(samples)):
        if f.endswith(".png"):
            shutil.copyfile(os.path.join(samples, f), os.path.join(dest, "skimage--" + f))
            count += 1
    print(f"photos_long_side: {count} photos in {dest} ({pixels / 1e6:.1f} megapixels of wallpapers at <= {long_side} px)")


if __name__ == "__main__":
    main()
