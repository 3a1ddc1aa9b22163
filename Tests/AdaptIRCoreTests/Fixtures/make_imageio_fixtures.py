"""Fixtures for ImageIOTests and DegradationTests (run from anywhere: python3 make_imageio_fixtures.py).

Independent sources only: Pillow writes the PNG/JPEG/BMP inputs (16-bit RGB is written with numpy + zlib, which
Pillow cannot write) and decodes them; the expected RGB bytes are Pillow's `convert('RGB')` of the decoded file,
except for 16-bit grayscale, where Pillow clips I;16 to 255 instead of scaling: there the expectation is the high
byte (value >> 8), which is what Pillow does for 16-bit RGB, what OpenCV/libpng `png_set_strip_16` do, and what
the Swift reader does. The MATLAB bicubic reference is a numpy port of MATLAB's imresize (antialiased cubic,
a = -0.5, kernel width 4*s, normalised weights, symmetric padding, height pass then width pass, each pass rounded
half away from zero to uint8 as MATLAB's imresizemex does for uint8 input), cross-checked against `resize-right`
(PyPI) on the same input (float, rounded once at the end), which must agree within 1 level.

Every expected image is stored as raw HWC RGB bytes `<name>.rgb`, with its size in `manifest.txt`.
Needs: pip install pillow numpy resize-right
"""
import os, struct, zlib
import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imageio")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20240604)
manifest = []


def expect(name, rgb):
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    assert rgb.ndim == 3 and rgb.shape[2] == 3
    with open(os.path.join(OUT, name + ".rgb"), "wb") as f:
        f.write(rgb.tobytes())
    manifest.append(f"{name} {rgb.shape[1]} {rgb.shape[0]}")


def smooth(h, w, c):
    """A smooth colour image with some texture (JPEG-friendly)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [127 + 100 * np.sin(x / (5 + 3 * k) + y / (7 + k)) + rng.normal(0, 6, (h, w)) for k in range(c)]
    return np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)


def pillow_png(name, im, **kw):
    path = os.path.join(OUT, name + ".png")
    im.save(path, **kw)
    expect(name, np.array(Image.open(path).convert("RGB")))


# ---- PNG inputs -------------------------------------------------------------------------------------------------
pillow_png("rgb8", Image.fromarray(rng.integers(0, 256, (7, 13, 3), dtype=np.uint8), "RGB"))
pillow_png("gray8", Image.fromarray(rng.integers(0, 256, (9, 6), dtype=np.uint8), "L"))
pillow_png("gray1", Image.fromarray(rng.integers(0, 2, (5, 11), dtype=np.uint8) * 255, "L").convert("1"))
pillow_png("rgba8", Image.fromarray(rng.integers(0, 256, (6, 10, 4), dtype=np.uint8), "RGBA"))
pillow_png("la8", Image.fromarray(rng.integers(0, 256, (4, 7, 2), dtype=np.uint8), "LA"))
pal = Image.fromarray(rng.integers(0, 16, (8, 9), dtype=np.uint8), "P")
pal.putpalette(list(rng.integers(0, 256, 16 * 3, dtype=np.uint8)))
pillow_png("palette", pal, bits=4)
pillow_png("palette_trns", pal, transparency=3)

# 16-bit RGB via numpy + zlib (Pillow reads it as RGB taking the high byte of each sample).
a16 = rng.integers(0, 65536, (5, 8, 3), dtype=np.uint16)


def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in a16)
png16 = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 5, 16, 2, 0, 0, 0))
         + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))
with open(os.path.join(OUT, "rgb16.png"), "wb") as f:
    f.write(png16)
pil16 = np.array(Image.open(os.path.join(OUT, "rgb16.png")).convert("RGB"))
assert np.array_equal(pil16, (a16 >> 8).astype(np.uint8)), "Pillow 16-bit RGB is not the high byte"
expect("rgb16", pil16)

g16 = rng.integers(0, 65536, (6, 5), dtype=np.uint16)
Image.fromarray(g16).save(os.path.join(OUT, "gray16.png"))
assert Image.open(os.path.join(OUT, "gray16.png")).mode in ("I;16", "I")
expect("gray16", np.repeat((g16 >> 8).astype(np.uint8)[..., None], 3, axis=2))

# ---- JPEG inputs (decode compared within 2 levels: Pillow's bundled libjpeg-turbo vs the system one) -------------
photo = smooth(40, 56, 3)
Image.fromarray(photo).save(os.path.join(OUT, "photo.jpg"), quality=90)
expect("photo_jpg", np.array(Image.open(os.path.join(OUT, "photo.jpg")).convert("RGB")))
Image.fromarray(smooth(24, 30, 1)[..., 0]).save(os.path.join(OUT, "gray.jpg"), quality=85)
expect("gray_jpg", np.array(Image.open(os.path.join(OUT, "gray.jpg")).convert("RGB")))

# JPEG q30 round trip of a lossless PNG input (4:2:0, standard tables), as a loose reference.
q_in = smooth(48, 48, 3)
Image.fromarray(q_in).save(os.path.join(OUT, "q30_input.png"))
import io
buf = io.BytesIO()
Image.fromarray(q_in).save(buf, format="JPEG", quality=30, subsampling=2)
expect("q30_pillow", np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))

# ---- BMP (24-bit, odd width: rows padded to 4 bytes, stored bottom-up) --------------------------------------------
bmp = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
Image.fromarray(bmp).save(os.path.join(OUT, "rgb24.bmp"))
expect("rgb24_bmp", np.array(Image.open(os.path.join(OUT, "rgb24.bmp")).convert("RGB")))


# ---- MATLAB imresize bicubic (antialiased) -----------------------------------------------------------------------
def cubic(x):
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def contributions(n_in, n_out, scale):
    # scale < 1 (downscale): kernel stretched by 1/scale and renormalised (antialiasing).
    width = 4.0 / scale
    x = np.arange(1, n_out + 1, dtype=np.float64)          # MATLAB 1-based output coordinates
    u = x / scale + 0.5 * (1 - 1 / scale)                   # matching input coordinate
    left = np.floor(u - width / 2)
    P = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(P)[None, :]             # 1-based input indices
    w = scale * cubic(scale * (u[:, None] - idx))
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(1, n_in + 1), np.arange(n_in, 0, -1)])   # symmetric padding
    idx = mirror[np.mod(idx - 1, 2 * n_in).astype(int)] - 1
    keep = np.any(w != 0, axis=0)
    return w[:, keep], idx[:, keep]


def round_uint8(v):
    return np.clip(np.floor(v + 0.5), 0, 255).astype(np.uint8)   # MATLAB: half away from zero (v >= 0)


def matlab_imresize_down(img, s):
    h, w, _ = img.shape
    oh, ow = int(np.ceil(h / s)), int(np.ceil(w / s))
    wh, ih = contributions(h, oh, 1.0 / s)
    t = round_uint8(np.einsum("ok,okwc->owc", wh, img[ih].astype(np.float64)))      # rows first
    ww, iw = contributions(w, ow, 1.0 / s)
    return round_uint8(np.einsum("ok,hokc->hoc", ww, t[:, iw].astype(np.float64)))  # then columns


bic_in = np.concatenate([smooth(37, 29, 3)[:, :, :], rng.integers(0, 256, (37, 29, 3), dtype=np.uint8)], axis=1)
bic_in[:, :, 1] = np.where(np.arange(58)[None, :] % 9 == 0, 255, bic_in[:, :, 1])     # hard edges
Image.fromarray(bic_in).save(os.path.join(OUT, "bicubic_input.png"))
from resize_right import resize, interp_methods
def float_imresize_down(img, s):
    """The same MATLAB port without the per-pass uint8 rounding (float result)."""
    h, w, _ = img.shape
    wh, ih = contributions(h, int(np.ceil(h / s)), 1.0 / s)
    ww, iw = contributions(w, int(np.ceil(w / s)), 1.0 / s)
    t = np.einsum("ok,okwc->owc", wh, img[ih].astype(np.float64))
    return np.einsum("ok,hokc->hoc", ww, t[:, iw])


for s in (2, 3, 4):
    # Reference on the full (not mod-s) input: output ceil(h/s) x ceil(w/s), MATLAB's pixel-grid alignment.
    ref = matlab_imresize_down(bic_in, s)
    expect(f"bicubic_x{s}", ref)
    # Cross-check of the kernel, weights and padding on the mod-s crop (resize-right aligns grid centres, which
    # equals MATLAB's alignment only when s divides the size; it works in float and does not round per pass).
    h, w = (bic_in.shape[0] // s) * s, (bic_in.shape[1] // s) * s
    crop = bic_in[:h, :w]
    rr = resize(crop.astype(np.float64), scale_factors=[1.0 / s, 1.0 / s, 1], interp_method=interp_methods.cubic,
                antialiasing=True, pad_mode="symmetric")
    diff = np.abs(float_imresize_down(crop, s) - rr).max()
    per_pass = np.abs(matlab_imresize_down(crop, s).astype(float) - np.clip(np.floor(rr + 0.5), 0, 255))
    print(f"x{s}: out {ref.shape}; mod-s crop: max |float port - resize-right| = {diff:.2e}; per-pass uint8 "
          f"rounding/saturation (MATLAB uint8) vs rounding once: max {per_pass.max()}, "
          f"{(per_pass > 0).mean() * 100:.1f}% of values differ (overshoot at the synthetic hard edges)")
    assert diff < 1e-9, diff

with open(os.path.join(OUT, "manifest.txt"), "w") as f:
    f.write("\n".join(manifest) + "\n")
print("wrote", len(manifest), "fixtures to", OUT)
