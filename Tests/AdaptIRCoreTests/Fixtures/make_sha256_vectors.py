#!/usr/bin/env python3
"""SHA-256 test vectors from Python's hashlib for SHA256Tests: message i has bytes (k * 7 + len) % 256 for
k in range(len). One line per message: `length hexdigest`. Lengths cover every padding case around 55/56/64."""
import hashlib, os
here = os.path.dirname(os.path.abspath(__file__))
lengths = list(range(0, 200)) + [447, 448, 511, 512, 513, 1000, 4095, 4096, 100003]
with open(os.path.join(here, "sha256_vectors.txt"), "w") as f:
    for n in lengths:
        msg = bytes((k * 7 + n) % 256 for k in range(n))
        f.write(f"{n} {hashlib.sha256(msg).hexdigest()}\n")
