#!/usr/bin/env python3
"""Writes tests/fixtures/quant/: reference GGUF block (de)quantization from the `gguf` package.

For q8_0/q4_0/q4_1/q5_0/q5_1: quant_input.f32 (random rows incl. a zero block, outliers, tiny
values and exact rounding ties) and <type>.quant.bin, gguf's quantized bytes for it (our
quantize must be byte-identical). For every type: <type>.blocks.bin (random valid blocks, f16
scales finite) and <type>.deq.f32, gguf's dequantized values (our dequantize must be
bit-identical). Raw little-endian files; manifest.json records shapes.

Usage: python -m venv .venv && .venv/bin/pip install gguf numpy
       .venv/bin/python scripts/gen_quant_fixtures.py
"""
import json
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "quant")
SIMPLE = {"q8_0": T.Q8_0, "q4_0": T.Q4_0, "q4_1": T.Q4_1, "q5_0": T.Q5_0, "q5_1": T.Q5_1}
KQ = {"q4_k": T.Q4_K, "q5_k": T.Q5_K, "q6_k": T.Q6_K}
# (block elems, block bytes, byte offsets of f16 fields)
LAYOUT = {"q8_0": (32, 34, [0]), "q4_0": (32, 18, [0]), "q4_1": (32, 20, [0, 2]), "q5_0": (32, 22, [0]),
          "q5_1": (32, 24, [0, 2]), "q4_k": (256, 144, [0, 2]), "q5_k": (256, 176, [0, 2]), "q6_k": (256, 210, [208])}


def quant_input(rng):
    rows, k = 8, 256  # 64 blocks of 32
    x = rng.standard_normal((rows, k)).astype(np.float32)
    x[0, :32] = 0.0                                       # a zero block
    x[1, 5] = 80.0                                        # outliers
    x[2, 40] = -1e4
    x[3, :32] = rng.standard_normal(32).astype(np.float32) * 1e-6  # tiny values
    ties = np.arange(-16, 16, dtype=np.float32) + 0.5     # exact .5 ties for q8_0 (amax 127 -> id 1)
    ties[0] = -127.0
    x[4, :32] = ties
    x[5, 32:64] = np.linspace(-8, 7, 32, dtype=np.float32)  # grid values for q4_0
    x[6, :] *= 100.0
    x[7, :32] = 3.0                                       # constant block (max == min)
    return x


def random_blocks(rng, name, nblocks):
    be, bb, f16_offs = LAYOUT[name]
    raw = rng.integers(0, 256, size=(nblocks, bb), dtype=np.uint8)
    for off in f16_offs:
        h = (rng.standard_normal(nblocks) * 0.05).astype(np.float16)
        h[0] = np.float16(0.0)
        raw[:, off:off + 2] = h.view(np.uint8).reshape(nblocks, 2)
    return raw


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240607)
    manifest = {"generator": "scripts/gen_quant_fixtures.py", "gguf_quants": "gguf.quants", "files": {}}
    x = quant_input(rng)
    x.tofile(os.path.join(OUT, "quant_input.f32"))
    manifest["files"]["quant_input.f32"] = {"dtype": "f32", "shape": list(x.shape)}
    for name, qt in SIMPLE.items():
        q = quants.quantize(x, qt)
        q.tofile(os.path.join(OUT, f"{name}.quant.bin"))
        manifest["files"][f"{name}.quant.bin"] = {"dtype": name, "shape": list(x.shape), "bytes": int(q.size)}
    for name, qt in {**SIMPLE, **KQ}.items():
        be, bb, _ = LAYOUT[name]
        nblocks = 48 if be == 32 else 12
        raw = random_blocks(rng, name, nblocks)
        deq = quants.dequantize(raw, qt).astype(np.float32)
        raw.tofile(os.path.join(OUT, f"{name}.blocks.bin"))
        deq.tofile(os.path.join(OUT, f"{name}.deq.f32"))
        manifest["files"][f"{name}.blocks.bin"] = {"dtype": name, "shape": [nblocks, be]}
        manifest["files"][f"{name}.deq.f32"] = {"dtype": "f32", "shape": [nblocks, be]}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
