#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""zip_probe.py: which SAE features track the loan model's penalised zip codes?

  /usr/bin/python3 tools/sae/zip_probe.py GLASSBOX-CLI SAE-DIR HELDOUT-LOANS.jsonl [PER-ZIP]

For PER-ZIP (default 12) held-out applications of each of the 12 zip codes,
runs the model up to and including the zip token (glassbox-cli run --dump),
encodes blocks.L.hook_resid_post at that token with the SAE (numpy, from
the SAELens files, with Glassbox's per-dimension normalisation), and prints
the features whose mean activation on the 4 penalised zips most exceeds
their mean on the 8 neutral ones, with the mean per zip. The penalised
group is read from the file's "zip_group" field, not assumed.
"""
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


def main(argv):
    cli, sae_dir, heldout = argv[1:4]
    per_zip = int(argv[4]) if len(argv) > 4 else 12
    cfg = json.load(open(os.path.join(sae_dir, "cfg.json")))
    hook = cfg["metadata"]["hook_name"]
    layer = int(hook.split(".")[1])
    assert hook.endswith("hook_resid_post"), "this probe reads resid_post"
    w = read_st(os.path.join(sae_dir, "sae_weights.safetensors"))
    norm_path = os.path.join(sae_dir, "glassbox_norm.safetensors")
    norm = read_st(norm_path) if os.path.exists(norm_path) else None
    k = cfg.get("k")

    apps = [json.loads(line) for line in open(heldout)]
    by_zip = {}
    for a in apps:
        by_zip.setdefault((a["fields"]["zip"], a["fields"]["neighbourhood"], a["zip_group"]), []).append(a)
    acts = {}
    tmp = tempfile.mkdtemp(prefix="zip-probe-")
    for key, items in sorted(by_zip.items()):
        rows = []
        for a in items[:per_zip]:
            text = a["prompt"]
            cut = text.index(a["fields"]["zip"]) + len(a["fields"]["zip"])
            subprocess.run([cli, "run", "--text", "<|endoftext|>" + text[:cut], "--dump", tmp], check=True,
                           capture_output=True)
            resid = np.load(os.path.join(tmp, "resid_post.npy"))[layer].astype(np.float64)
            toks = json.load(open(os.path.join(tmp, "tokens.json")))
            x = resid[-1]  # the zip token is the last one
            if norm is not None:
                x = (x - norm["mean"]) / norm["std"]
            pre = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
            z = np.zeros_like(pre)
            if cfg["architecture"] == "topk":
                top = np.argsort(-pre)[:k]
                z[top] = np.maximum(pre[top], 0)
            else:
                z = np.maximum(pre, 0)
            rows.append(z)
        acts[key] = np.array(rows)
    keys = sorted(acts)
    pen = np.concatenate([acts[k_] for k_ in keys if k_[2] == "penalised"])
    neu = np.concatenate([acts[k_] for k_ in keys if k_[2] != "penalised"])
    diff = pen.mean(0) - neu.mean(0)
    order = np.argsort(-diff)[:8]
    print("zip tokens: %d penalised, %d neutral applications" % (len(pen), len(neu)))
    for j in order:
        fp = (pen[:, j] > 0).mean()
        fn = (neu[:, j] > 0).mean()
        print("\n#%d  mean on penalised zips %.2f (fires on %.0f%%), on neutral %.2f (fires on %.0f%%)"
              % (j, pen[:, j].mean(), 100 * fp, neu[:, j].mean(), 100 * fn))
        print("   " + "  ".join("%s %s %.2f" % (z_, "*" if g == "penalised" else " ", acts[(z_, n_, g)][:, j].mean())
                               for (z_, n_, g) in keys))


if __name__ == "__main__":
    main(sys.argv)
