#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Grows a GPT-2 checkpoint to more layers without changing what it computes:

  tools/demo-model/grow.py SOURCE_DIR OUTPUT_DIR N_LAYER [--seed S]

The source's blocks stay blocks 0..n-1; blocks n..N_LAYER-1 are added with
GPT-2's initialisation (N(0, 0.02) for c_attn and c_fc, LayerNorm 1 and 0,
biases 0) except their two output projections (attn.c_proj, mlp.c_proj),
which start at zero. A block whose outputs are zero adds nothing to the
residual stream, so the grown model's logits equal the source's; training then
moves the new projections off zero (their gradients are not zero: their
inputs are not). tools/demo-model/train.sh uses it to keep the heads a
2-layer copying warm-up grew (MODEL.md, "Heads").

Writes config.json, model.safetensors (F32), vocab.json and merges.txt."""

import argparse
import json
import os
import shutil
import struct

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] not in ("F32", "F16"):
                raise SystemExit("grow.py: %s: tensor %s is %s; F32 or F16 expected" % (path, name, info["dtype"]))
            a, b = info["data_offsets"]
            f.seek(base + a)
            dt = "<f4" if info["dtype"] == "F32" else "<f2"
            out[name] = np.frombuffer(f.read(b - a), dtype=dt).astype(np.float32).reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        b = np.ascontiguousarray(t, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source")
    ap.add_argument("output")
    ap.add_argument("n_layer", type=int)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    try:
        cfg = json.load(open(os.path.join(a.source, "config.json")))
        src = read_safetensors(os.path.join(a.source, "model.safetensors"))
        n, D = int(cfg["n_layer"]), int(cfg["n_embd"])
    except (OSError, ValueError, KeyError, TypeError, struct.error) as e:
        raise SystemExit("grow.py: %s: not a readable GPT-2 checkpoint (%s)" % (a.source, e))
    if a.n_layer <= n:
        raise SystemExit("grow.py: %s has %d layers; N_LAYER must be more" % (a.source, n))
    F = cfg.get("n_inner") or 4 * D
    rng = np.random.default_rng(a.seed)
    out = {}
    for name, t in src.items():
        if not name.startswith("h.") and name != "ln_f.weight" and name != "ln_f.bias":
            out[name] = t
    for l in range(a.n_layer):
        p = "h.%d." % l
        if l < n:
            for name, t in src.items():
                if name.startswith(p):
                    out[name] = t
            continue
        out[p + "ln_1.weight"] = np.ones(D, np.float32)
        out[p + "ln_1.bias"] = np.zeros(D, np.float32)
        out[p + "attn.c_attn.weight"] = rng.normal(0, 0.02, (D, 3 * D)).astype(np.float32)
        out[p + "attn.c_attn.bias"] = np.zeros(3 * D, np.float32)
        out[p + "attn.c_proj.weight"] = np.zeros((D, D), np.float32)
        out[p + "attn.c_proj.bias"] = np.zeros(D, np.float32)
        out[p + "ln_2.weight"] = np.ones(D, np.float32)
        out[p + "ln_2.bias"] = np.zeros(D, np.float32)
        out[p + "mlp.c_fc.weight"] = rng.normal(0, 0.02, (D, F)).astype(np.float32)
        out[p + "mlp.c_fc.bias"] = np.zeros(F, np.float32)
        out[p + "mlp.c_proj.weight"] = np.zeros((F, D), np.float32)
        out[p + "mlp.c_proj.bias"] = np.zeros(D, np.float32)
    out["ln_f.weight"] = src["ln_f.weight"]
    out["ln_f.bias"] = src["ln_f.bias"]

    os.makedirs(a.output, exist_ok=True)
    cfg["n_layer"] = a.n_layer
    cfg["torch_dtype"] = "float32"
    for name in ("vocab.json", "merges.txt"):
        try:
            shutil.copyfile(os.path.join(a.source, name), os.path.join(a.output, name + ".part"))
        except OSError as e:
            raise SystemExit("grow.py: %s: cannot copy %s (%s)" % (a.source, name, e))
        os.replace(os.path.join(a.output, name + ".part"), os.path.join(a.output, name))
    write_safetensors(os.path.join(a.output, "model.safetensors"), out)
    # config.json last: a folder without it is not a model, so an interrupted
    # run never leaves one that loads with the wrong weights.
    tmp = os.path.join(a.output, "config.json.part")
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
    os.replace(tmp, os.path.join(a.output, "config.json"))


if __name__ == "__main__":
    main()
