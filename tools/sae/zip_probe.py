#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""zip_probe.py: which SAE features track the loan model's penalised zip codes?

  /usr/bin/python3 tools/sae/zip_probe.py GLASSBOX-CLI SAE-DIR HELDOUT-LOANS.jsonl [PER-ZIP]
      [--field zip|neighbourhood|location]

For PER-ZIP (default 12) held-out applications of each of the 12 zip codes,
runs the model over the application up to the end of the field (glassbox-cli
run --dump), encodes blocks.L.hook_resid_post at each of the field's tokens
with the SAE (numpy, from the SAELens files, with Glassbox's per-dimension
normalisation) and keeps each feature's strongest activation over them. The
field is the zip (default), the neighbourhood's name, or location: both. It
prints the features whose mean on the 4 penalised zips most exceeds their
mean on the 8 neutral ones, with the mean per zip. The penalised group is
read from the file's "zip_group" field, not assumed.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np


def read_st(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        dt = {"F32": "<f4", "F16": "<f2"}[info["dtype"]]
        out[name] = np.frombuffer(blob[8 + n + a:8 + n + b], dtype=dt).reshape(info["shape"]).astype(np.float64)
    return out


def field_tokens(tokens, text, value):
    """Indices of the tokens whose bytes overlap @value's first occurrence in
    @text (the rule explain uses to map tokens to fields). The first
    occurrence is the field: application numbers have 4 digits, zips 5."""
    s = len(text[:text.index(value)].encode("utf-8"))
    e = s + len(value.encode("utf-8"))
    out, pos = [], 0
    for i, t in enumerate(tokens):
        n = len(t)  # one vocab.json character per byte
        if pos < e and pos + n > s:
            out.append(i)
        pos += n
    return out


def encode(x, w, norm, cfg, k):
    if norm is not None:
        x = (x - norm["mean"]) / norm["std"]
    pre = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    z = np.zeros_like(pre)
    if cfg["architecture"] == "topk":
        top = np.argsort(-pre, axis=-1)[..., :k]
        np.put_along_axis(z, top, np.maximum(np.take_along_axis(pre, top, -1), 0), -1)
    else:
        z = np.maximum(pre, 0)
    return z


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cli")
    ap.add_argument("sae_dir")
    ap.add_argument("heldout")
    ap.add_argument("per_zip", nargs="?", type=int, default=12)
    ap.add_argument("--field", choices=("zip", "neighbourhood", "location"), default="zip")
    a = ap.parse_args()
    fields = ["zip", "neighbourhood"] if a.field == "location" else [a.field]
    cfg = json.load(open(os.path.join(a.sae_dir, "cfg.json")))
    hook = cfg["metadata"]["hook_name"]
    layer = int(hook.split(".")[1])
    if not hook.endswith("hook_resid_post"):
        sys.exit("zip_probe.py: %s: this probe reads resid_post, the SAE reads %s" % (a.sae_dir, hook))
    w = read_st(os.path.join(a.sae_dir, "sae_weights.safetensors"))
    norm_path = os.path.join(a.sae_dir, "glassbox_norm.safetensors")
    norm = read_st(norm_path) if os.path.exists(norm_path) else None
    k = cfg.get("k")

    def cli(*args):
        r = subprocess.run([a.cli, *args], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("zip_probe.py: glassbox-cli %s failed: %s" % (args[0], r.stderr.strip()))
        return r.stdout

    apps = [json.loads(line) for line in open(a.heldout)]
    by_zip = {}
    for app in apps:
        by_zip.setdefault((app["fields"]["zip"], app["fields"]["neighbourhood"], app["zip_group"]), []).append(app)
    acts = {}
    with tempfile.TemporaryDirectory(prefix="zip-probe-") as tmp:
        for key, items in sorted(by_zip.items()):
            rows = []
            for app in items[:a.per_zip]:
                # The application as explain reads it, up to the end of the
                # last of the fields (no <|endoftext|> before it).
                text = app["prompt"]
                end = max(text.index(app["fields"][f]) + len(app["fields"][f]) for f in fields)
                text = text[:end]
                tokens = json.loads(cli("tokenize", "--json", text))["tokens"]
                idx = sorted({i for f in fields for i in field_tokens(tokens, text, app["fields"][f])})
                cli("run", "--text", text, "--dump", tmp, "--force")
                resid = np.load(os.path.join(tmp, "resid_post.npy"))[layer].astype(np.float64)
                if resid.shape[0] != len(tokens):
                    sys.exit("zip_probe.py: run saw %d tokens, tokenize %d" % (resid.shape[0], len(tokens)))
                rows.append(encode(resid[idx], w, norm, cfg, k).max(0))  # the strongest over the field's tokens
            acts[key] = np.array(rows)
    keys = sorted(acts)
    pen = np.concatenate([acts[k_] for k_ in keys if k_[2] == "penalised"])
    neu = np.concatenate([acts[k_] for k_ in keys if k_[2] != "penalised"])
    diff = pen.mean(0) - neu.mean(0)
    order = np.argsort(-diff)[:8]
    print("%s tokens (strongest activation over them): %d penalised, %d neutral applications"
          % (" and ".join(fields), len(pen), len(neu)))
    for j in order:
        fp = (pen[:, j] > 0).mean()
        fn = (neu[:, j] > 0).mean()
        print("\n#%d  mean on penalised zips %.2f (fires on %.0f%%), on neutral %.2f (fires on %.0f%%)"
              % (j, pen[:, j].mean(), 100 * fp, neu[:, j].mean(), 100 * fn))
        print("   " + "  ".join("%s %s %.2f" % (z_, "*" if g == "penalised" else " ", acts[(z_, n_, g)][:, j].mean())
                               for (z_, n_, g) in keys))


if __name__ == "__main__":
    main()
