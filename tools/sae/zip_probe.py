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


def n_tokens(cli, text):
    r = subprocess.run([cli, "tokenize", text], check=True, capture_output=True, text=True)
    return len(r.stdout.splitlines())


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


def main(argv):
    fields = ["zip"]
    if "--field" in argv:
        i = argv.index("--field")
        which = argv[i + 1]
        if which not in ("zip", "neighbourhood", "location"):
            sys.exit("zip_probe.py: --field is zip, neighbourhood or location")
        fields = ["zip", "neighbourhood"] if which == "location" else [which]
        argv = argv[:i] + argv[i + 2:]
    if len(argv) < 4:
        sys.exit(__doc__)
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
            text = "<|endoftext|>" + a["prompt"]
            # Each field's tokens: from the token after the text before its
            # value (which ends at ":" or "(", a token boundary) to its end.
            spans = []
            for f in fields:
                s = text.index(a["fields"][f])
                e = s + len(a["fields"][f])
                spans.append((n_tokens(cli, text[:s].rstrip()), n_tokens(cli, text[:e])))
            cut = max(e_ for _, e_ in spans)
            end = max(len(text[:text.index(a["fields"][f]) + len(a["fields"][f])]) for f in fields)
            subprocess.run([cli, "run", "--text", text[:end], "--dump", tmp, "--force"], check=True,
                           capture_output=True)
            resid = np.load(os.path.join(tmp, "resid_post.npy"))[layer].astype(np.float64)
            assert resid.shape[0] == cut, "token count mismatch"
            idx = [t for s_, e_ in spans for t in range(s_, e_)]
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
    main(sys.argv)
