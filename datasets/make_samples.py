#!/usr/bin/env python3
"""Rebuild datasets/samples/{train,test} from the scikit-image wheel (CC0 / public-domain photos only).

    pip download scikit-image==0.26.0 --no-deps -d /tmp/skw && cd /tmp/skw && unzip -q -o *.whl 'skimage/data/*'
    python3 datasets/make_samples.py /tmp/skw/skimage/data

Needs Pillow. JPEG sources are decoded by Pillow (libjpeg-turbo) and stored as PNG; the two large ones are
centre-cropped to 640x640. Output PNGs are written without metadata so their bytes depend only on the pixels and
Pillow's zlib. The SHA-256 of each output is printed (and recorded in datasets/README.md / SHA256SUMS).
"""
import hashlib, os, sys
from PIL import Image

# (source file in skimage/data, output name, split, centre crop side or None)
FILES = [
    ("astronaut.png", "astronaut.png", "train", None),
    ("coffee.png", "coffee.png", "train", None),
    ("hubble_deep_field.jpg", "hubble_deep_field.png", "train", 640),
    ("retina.jpg", "retina.png", "train", 640),
    ("chelsea.png", "chelsea.png", "test", None),
    ("rocket.jpg", "rocket.png", "test", None),
]

def main(src):
    here = os.path.dirname(os.path.abspath(__file__))
    lines = []
    for name, out, split, crop in FILES:
        im = Image.open(os.path.join(src, name)).convert("RGB")
        if crop:
            w, h = im.size
            l, t = (w - crop) // 2, (h - crop) // 2
            im = im.crop((l, t, l + crop, t + crop))
        d = os.path.join(here, "samples", split)
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, out)
        im.save(p, format="PNG", optimize=False, compress_level=9)
        digest = hashlib.sha256(open(p, "rb").read()).hexdigest()
        lines.append(f"{digest}  samples/{split}/{out}")
        print(f"{split}/{out}: {im.size[0]}x{im.size[1]} from {name}, sha256 {digest}")
    with open(os.path.join(here, "samples", "SHA256SUMS"), "w") as f:
        f.write("\n".join(lines) + "\n")

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "skimage/data")
