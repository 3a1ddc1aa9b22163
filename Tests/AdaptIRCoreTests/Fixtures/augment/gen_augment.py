"""Generates augment_modes.json: the paper's data_augmentation modes 1..7 (numpy flipud / rot90) applied to a
3x4x3 uint8 HWC image (non-square, so a swapped axis shows up). Run: python3 gen_augment.py"""
import json
import numpy as np

def data_augmentation(image, mode):  # as in AdaptIR/PromptIR utils/image_utils.py
    if mode == 0: out = image
    elif mode == 1: out = np.flipud(image)
    elif mode == 2: out = np.rot90(image)
    elif mode == 3: out = np.flipud(np.rot90(image))
    elif mode == 4: out = np.rot90(image, k=2)
    elif mode == 5: out = np.flipud(np.rot90(image, k=2))
    elif mode == 6: out = np.rot90(image, k=3)
    elif mode == 7: out = np.flipud(np.rot90(image, k=3))
    return np.ascontiguousarray(out)

img = (np.arange(3 * 4 * 3, dtype=np.uint8) * 7 + 1).reshape(3, 4, 3)
out = {"input": {"shape": list(img.shape), "values": img.ravel().tolist()}}
for m in range(8):
    o = data_augmentation(img, m)
    out[str(m)] = {"shape": list(o.shape), "values": o.ravel().tolist()}
with open("augment_modes.json", "w") as f:
    json.dump(out, f)
