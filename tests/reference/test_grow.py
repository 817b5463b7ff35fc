#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo model's warm-up tools (tools/demo-model/train.sh):

  /usr/bin/python3 tests/reference/test_grow.py /path/to/glassbox-cli

1. tools/demo-model/grow.py: a tiny random model grown from 2 to 4 layers
   computes the same logits (glassbox-cli run --dump, max |diff| <= 1e-6);
   its config says 4 layers; the added blocks' output projections are zero
   and their gradients are not (glassbox-cli grad), so training can move
   them; asking for no more layers than the source has is refused with a
   message naming the folder, and nothing is written.
2. tools/corpus/copylists.py: the same tokenizer and seed give the same
   bytes; every document is a list of 20-40 one-token words (each a single
   token of the tokenizer) followed by the same list; another seed gives
   other lists; --any-token lists repeat too and hold more than words; a
   folder without vocab.json is refused with a message and no output.

Output is TAP; exit status 1 on any failure (never a skip)."""

import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GROW = os.path.join(ROOT, "tools", "demo-model", "grow.py")
COPYLISTS = os.path.join(ROOT, "tools", "corpus", "copylists.py")
DEMO = os.path.join(ROOT, "data", "models", "loan-officer")

results = []


def check(ok, what):
    results.append((bool(ok), what))
    print("%s %d - %s" % ("ok" if ok else "not ok", len(results), what), flush=True)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        out = {}
        for k, v in h.items():
            if k == "__metadata__":
                continue
            a, b = v["data_offsets"]
            f.seek(8 + n + a)
            out[k] = np.frombuffer(f.read(b - a), dtype="<f4").reshape(v["shape"])
    return out


def main():
    cli = sys.argv[1]
    print("1..13")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "tiny")
        grown = os.path.join(tmp, "grown")
        r = run([cli, "init-model", "--preset", "tiny", "--seed", "3", "--output", src])
        assert r.returncode == 0, r.stderr
        r = run(["/usr/bin/python3", GROW, src, grown, "4", "--seed", "5"])
        check(r.returncode == 0, "grow.py 2 -> 4 layers exits 0 (%s)" % r.stderr.strip()[:200])
        check(json.load(open(os.path.join(grown, "config.json")))["n_layer"] == 4, "config.json says 4 layers")

        text = "The applicant lives in Millbrook Flats. The applicant asked again."
        logits = []
        for m in (src, grown):
            d = os.path.join(tmp, "dump-" + os.path.basename(m))
            r = run([cli, "run", "--model", m, "--text", text, "--dump", d])
            assert r.returncode == 0, r.stderr
            logits.append(np.load(os.path.join(d, "logits.npy")))
        diff = float(np.abs(logits[0] - logits[1]).max())
        check(logits[0].shape == logits[1].shape and diff <= 1e-6, "same logits after growing (max diff %.3g)" % diff)

        w = read_st(os.path.join(grown, "model.safetensors"))
        zero = all(not w["h.%d.%s" % (l, n)].any() for l in (2, 3) for n in ("attn.c_proj.weight", "mlp.c_proj.weight"))
        check(zero, "the added blocks' output projections are zero")
        old = read_st(os.path.join(src, "model.safetensors"))
        kept = all(np.array_equal(old[k], w[k]) for k in old)
        check(kept, "every source tensor is kept unchanged")

        d = os.path.join(tmp, "grad")
        r = run([cli, "grad", "--model", grown, "--text", text, "--dump", d])
        assert r.returncode == 0, r.stderr
        g = read_st(os.path.join(d, "grads.safetensors"))
        moving = all(np.abs(g["h.%d.mlp.c_proj.weight" % l]).max() > 0 for l in (2, 3))
        check(moving, "their gradients are not zero")

        bad = os.path.join(tmp, "bad")
        r = run(["/usr/bin/python3", GROW, src, bad, "2"])
        check(r.returncode != 0 and src in r.stderr and "more" in r.stderr and not os.path.exists(bad),
              "growing to as many layers is refused, naming the folder (%s)" % r.stderr.strip()[:200])

        outs = []
        for name, seed in (("a", "2"), ("b", "2"), ("c", "3")):
            p = os.path.join(tmp, "copy-" + name)
            r = run(["/usr/bin/python3", COPYLISTS, DEMO, p, "--docs", "50", "--seed", seed])
            assert r.returncode == 0, r.stderr
            outs.append(open(p, encoding="utf-8").read())
        check(outs[0] == outs[1], "copylists.py: same seed, same bytes")
        check(outs[0] != outs[2], "copylists.py: another seed, other lists")
        docs = outs[0].split("<|endoftext|>")
        shaped = docs[-1] == "" and len(docs) == 51
        for doc in docs[:-1]:
            words = doc.split(" ")[1:]
            half = len(words) // 2
            shaped = shaped and len(words) % 2 == 0 and 20 <= half <= 40 and words[:half] == words[half:]
        check(shaped, "every document is a list of 20-40 words, then the same list")
        first = docs[0]
        r = run([cli, "tokenize", "--model", DEMO, first])
        n_tokens = len(r.stdout.strip().splitlines())
        check(r.returncode == 0 and n_tokens == len(first.split(" ")) - 1, "each word is one token (%d tokens)" % n_tokens)

        p = os.path.join(tmp, "copy-any")
        r = run(["/usr/bin/python3", COPYLISTS, DEMO, p, "--docs", "20", "--any-token"])
        docs = open(p, encoding="utf-8").read().split("<|endoftext|>")[:-1] if r.returncode == 0 else []
        halves = all(d[: len(d) // 2] == d[len(d) // 2:] for d in docs)
        not_words = any(not w.isalpha() for d in docs for w in d.split())
        check(len(docs) == 20 and halves and not_words,
              "copylists.py --any-token: 20 documents, each a string then the same string, not only words")

        empty = os.path.join(tmp, "no-tokenizer")
        os.mkdir(empty)
        out = os.path.join(tmp, "copy-none")
        r = run(["/usr/bin/python3", COPYLISTS, empty, out])
        check(r.returncode != 0 and "vocab.json" in r.stderr and "Traceback" not in r.stderr
              and not os.path.exists(out) and not os.path.exists(out + ".part"),
              "copylists.py without a vocabulary: a message naming vocab.json, no output (%s)" % r.stderr.strip()[:200])

    sys.exit(0 if all(ok for ok, _ in results) else 1)


if __name__ == "__main__":
    main()
