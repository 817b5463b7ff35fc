#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks glassbox-cli steer against float64 numpy on the residual streams
that glassbox-cli run --dump writes (resid_post.npy [L, T, D]):

  /usr/bin/python3 tests/reference/test_steer.py /path/to/glassbox-cli

1. mean method: per block, the mean over the training pairs of
   (positive - negative) at the last token (and at --read-pos -2), max
   |engine - numpy| / max |numpy| <= 1e-5; the held-out split (every 5th
   pair), the held-out accuracy (exact), gap and effect size, and the mean
   and standard deviation of the training projections (1e-4);
2. pca method: the first right singular vector of the centred differences
   (as sklearn's PCA in repeng's pca_diff), sign towards the side most
   pairs fall on, scaled by the mean projection, <= 1e-5;
3. the pair-set hash is sha256 over positive NUL negative NUL, and a JSONL
   copy of the pairs gives the same vectors;
4. the GGUF export, read by an independent parser of the GGUF v3 layout as
   llama.cpp reads it (header, keys, tensor infos, 32-byte alignment,
   little-endian float32 data): the same numbers; glassbox-cli steer import
   gives them back; a block-0 vector warns.

Output is TAP; exit status 1 on any failure (never a skip). Uses the bundled
demo model (or $GLASSBOX_MODEL) and the first pairs of data/pairs/sentiment.json.
"""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

TOL_VEC = 1e-5
TOL_SCORE = 1e-4
N_PAIRS = 15
HOLDOUT = 5
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Tap:
    def __init__(self, n):
        self.n = 0
        self.failed = 0
        print("1..%d" % n, flush=True)

    def result(self, ok, name, lines=()):
        self.n += 1
        self.failed += not ok
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, name))
        for line in lines:
            for part in str(line).splitlines():
                print("# " + part)
        sys.stdout.flush()


def cli(args, check=True):
    r = subprocess.run([CLI] + args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("glassbox-cli %s failed: %s" % (" ".join(args[:2]), r.stderr.strip()))
    return r


def resid(text, tmp):
    d = tempfile.mkdtemp(dir=tmp)
    cli(["run", "--text", text, "--dump", d])
    return np.load(os.path.join(d, "resid_post.npy")).astype(np.float64)  # [L, T, D]


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


def reference(pos, neg, method, read_pos):
    """pos, neg: lists of [L, T, D] arrays. Returns per block (vector,
    accuracy, gap, effect)."""
    n = len(pos)
    held = [(i + 1) % HOLDOUT == 0 for i in range(n)]
    L = pos[0].shape[0]
    out = []
    for layer in range(L):
        P = np.stack([p[layer, read_pos] for p in pos])
        N = np.stack([q[layer, read_pos] for q in neg])
        train = [i for i in range(n) if not held[i]]
        test = [i for i in range(n) if held[i]]
        d = P[train] - N[train]
        if method == "mean":
            v = d.mean(axis=0)
        else:
            c = d - d.mean(axis=0)
            u = np.linalg.svd(c, full_matrices=False)[2][0]
            proj = d @ u
            if (proj < 0).sum() > (proj > 0).sum() or ((proj < 0).sum() == (proj > 0).sum() and proj.mean() < 0):
                u = -u
            v = u * abs((d @ u).mean())
        u = v / np.linalg.norm(v)
        mid = ((P[train] @ u + N[train] @ u) / 2).mean()
        a, b = P[test] @ u, N[test] @ u
        acc = ((a > mid).sum() + (b < mid).sum()) / (2 * len(test))
        gap = (a - b).mean()
        effect = gap / np.sqrt((a.var() + b.var()) / 2)
        pooled = np.concatenate([P[train] @ u, N[train] @ u])
        out.append((v, acc, gap, effect, pooled.mean(), pooled.std()))
    return out


def check_vector(name, vec_path, ref, tap):
    got = json.load(open(vec_path))
    lines, ok = [], True
    for layer, (v, acc, gap, effect, pm, ps) in enumerate(ref):
        g = got["layers"][layer]
        e = rel(g["vector"], v)
        de = abs(g["heldout_gap"] - gap) / abs(gap)
        dx = abs(g["heldout_effect"] - effect) / abs(effect)
        dp = max(abs(g["train_projection_mean"] - pm), abs(g["train_projection_sd"] - ps)) / ps
        good = (g["layer"] == layer and e <= TOL_VEC and g["heldout_accuracy"] == acc and de <= TOL_SCORE
                and dx <= TOL_SCORE and dp <= TOL_SCORE)
        ok &= good
        lines.append("block %d: vector rel err %.2e, accuracy %.3f (numpy %.3f), gap %.4f (numpy %.4f), effect %.3f (numpy %.3f), "
                     "training projections %.3f +- %.3f (numpy %.3f +- %.3f)"
                     % (layer, e, g["heldout_accuracy"], acc, g["heldout_gap"], gap, g["heldout_effect"], effect,
                        g["train_projection_mean"], g["train_projection_sd"], pm, ps))
    ok &= got["pairs"]["n_train"] == N_PAIRS - N_PAIRS // HOLDOUT and got["pairs"]["n_heldout"] == N_PAIRS // HOLDOUT
    tap.result(ok, name, lines)
    return got


# ---- An independent GGUF v3 reader (the layout as ggml's gguf.cpp reads it) ----

GGUF_TYPES = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_gguf(path):
    b = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, b, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    def string():
        nonlocal pos
        n = take("<Q")
        s = b[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        return take(GGUF_TYPES[t])

    assert b[:4] == b"GGUF", "magic"
    pos = 4
    version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
    kv, kv_types = {}, {}
    for _ in range(n_kv):
        k = string()
        t = take("<I")
        kv[k], kv_types[k] = value(t), t
    infos = []
    for _ in range(n_tensors):
        name = string()
        nd = take("<I")
        dims = [take("<Q") for _ in range(nd)]
        ttype, off = take("<I"), take("<Q")
        infos.append((name, dims, ttype, off))
    align = kv.get("general.alignment", 32)
    start = (pos + align - 1) // align * align
    tensors = {}
    for name, dims, ttype, off in infos:
        n = int(np.prod(dims))
        tensors[name] = np.frombuffer(b, "<f4", n, start + off)
    return dict(version=version, kv=kv, kv_types=kv_types, infos=infos, tensors=tensors,
                start=start, size=len(b), padding=b[pos:start])


def check_gguf(vec_json, tmp, tap):
    got = json.load(open(vec_json))
    path = os.path.join(tmp, "vec.gguf")
    r = cli(["steer", "export", "--vector", vec_json, "--output", path])
    g = read_gguf(path)
    lines = ["version %d, keys %s, tensors %s" % (g["version"], list(g["kv"]), [i[0] for i in g["infos"]])]
    n = len(got["layers"])
    ok = (g["version"] == 3 and list(g["kv"]) == ["general.architecture", "controlvector.model_hint", "controlvector.layer_count"]
          and g["kv"]["general.architecture"] == "controlvector" and g["kv_types"]["general.architecture"] == 8
          and g["kv"]["controlvector.model_hint"] == "gpt2"
          and g["kv"]["controlvector.layer_count"] == n and g["kv_types"]["controlvector.layer_count"] == 4
          and g["padding"] == b"\0" * len(g["padding"]) and g["start"] % 32 == 0)
    stride = (got["n_embd"] * 4 + 31) // 32 * 32
    for k, layer in enumerate(got["layers"]):
        name, dims, ttype, off = g["infos"][k]
        same = np.array_equal(g["tensors"][name], np.asarray(layer["vector"], np.float32))
        ok &= name == "direction.%d" % layer["layer"] and dims == [got["n_embd"]] and ttype == 0 and off == k * stride and same
    ok &= g["size"] == g["start"] + n * stride
    ok &= ("llama.cpp refuses" in r.stderr) == (got["layers"][0]["layer"] == 0)
    lines.append("warning: %s" % (r.stderr.strip() or "(none)"))
    back = os.path.join(tmp, "back.json")
    cli(["steer", "import", "--gguf", path, "--output", back])
    b = json.load(open(back))
    ok &= all(np.array_equal(np.asarray(x["vector"], np.float32), np.asarray(y["vector"], np.float32))
              and x["layer"] == y["layer"] for x, y in zip(b["layers"], got["layers"]))
    tap.result(ok, "GGUF export: layout as llama.cpp reads it, same float32 numbers, import gives them back", lines)


def main():
    global CLI
    CLI = sys.argv[1]
    tap = Tap(7)
    tmp = tempfile.mkdtemp(prefix="glassbox-steer-ref-")
    try:
        src = json.load(open(os.path.join(ROOT, "data", "pairs", "sentiment.json")))
        pairs = src["pairs"][:N_PAIRS]
        pairs_json = os.path.join(tmp, "pairs.json")
        json.dump({"name": "ref", "description": "first pairs of sentiment.json", "pairs": pairs}, open(pairs_json, "w"))
        pairs_jsonl = os.path.join(tmp, "pairs.jsonl")
        with open(pairs_jsonl, "w") as f:
            for p in pairs:
                f.write(json.dumps({"negative": p["negative"], "positive": p["positive"]}) + "\n")

        pos = [resid(p["positive"], tmp) for p in pairs]
        neg = [resid(p["negative"], tmp) for p in pairs]

        for method, read_pos in (("mean", -1), ("mean", -2), ("pca", -1)):
            out = os.path.join(tmp, "%s%d.json" % (method, read_pos))
            cli(["steer", "train", "-q", "--pairs", pairs_json, "--layers", "all", "--method", method,
                 "--read-pos", str(read_pos), "--holdout", str(HOLDOUT), "--output", out])
            check_vector("%s method, read position %d: vectors and held-out scores vs numpy float64" % (method, read_pos),
                         out, reference(pos, neg, method, read_pos), tap)

        got = json.load(open(os.path.join(tmp, "mean-1.json")))
        h = hashlib.sha256()
        for p in pairs:
            h.update(p["positive"].encode() + b"\0" + p["negative"].encode() + b"\0")
        out = os.path.join(tmp, "jsonl.json")
        cli(["steer", "train", "-q", "--pairs", pairs_jsonl, "--layers", "all", "--output", out])
        same = json.load(open(out))
        ok = got["pairs"]["hash"] == "sha256:" + h.hexdigest() and same["pairs"]["hash"] == got["pairs"]["hash"] and all(
            x["vector"] == y["vector"] for x, y in zip(same["layers"], got["layers"]))
        tap.result(ok, "pair-set hash = sha256(positive NUL negative NUL ...); JSONL gives the same vectors",
                   ["hash %s" % got["pairs"]["hash"]])

        check_gguf(os.path.join(tmp, "mean-1.json"), tmp, tap)
        # Blocks 1-3 only: no warning, direction.1..3.
        sub = os.path.join(tmp, "sub.json")
        cli(["steer", "train", "-q", "--pairs", pairs_json, "--layers", "1-3", "--output", sub])
        check_gguf(sub, tmp, tap)

        # Multiplier 0 = no steering, through the CLI.
        base = cli(["generate", "--prompt", "The hotel room was", "-n", "20"]).stdout
        zero = cli(["generate", "--prompt", "The hotel room was", "-n", "20", "--steer", sub, "--multiplier", "0"]).stdout
        strong = cli(["generate", "--prompt", "The hotel room was", "-n", "20", "--steer", sub, "--multiplier", "4"]).stdout
        tap.result(base == zero and strong != base, "generate --steer: multiplier 0 prints the baseline, 4 changes it",
                   ["baseline: %r" % base, "x4: %r" % strong])
    except Exception as e:  # a crash is a failure, never a skip
        while tap.n < 7:
            tap.result(False, "setup or run failed", [repr(e)])
    finally:
        if os.environ.get("GLASSBOX_REF_KEEP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if tap.failed else 0)


if __name__ == "__main__":
    main()
