#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks glassbox-cli train step by step against an independent float64
numpy trainer: the batches (the same Mersenne Twister draws), the weighted
loss, the gradient (gpt2_ref.backward, itself checked against finite
differences by test_grad.py), clipping by global norm, PyTorch's AdamW with
decoupled weight decay (none on biases, LayerNorm and embeddings), linear
warm-up and cosine decay.

  /usr/bin/python3 tests/reference/test_train.py /path/to/glassbox-cli

For 1 and 2 workers, with and without --emphasis: train N steps from one
random checkpoint, then compare every parameter tensor with the reference
after the same N steps (max |engine - ref| / max |ref - start|, i.e.
relative to how far training moved the tensor), and every logged loss.

Output is TAP; the exit status is 1 on any failure.
"""

import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref as ref  # noqa: E402

TEXT = (
    "The committee met on Tuesday. The committee approved the budget, and "
    "Anna thanked the committee for its work.\n<|endoftext|>\n"
    "Decision: approved. Decision: rejected. The bank said the decision was "
    "final; Anna asked the bank again.\n<|endoftext|>\n"
    "A quick brown fox jumps over the lazy dog; the dog sleeps.\n"
)

# (name, workers, emphasis, steps, batch, seq_len)
CASES = [
    ("1 worker", 1, None, 7, 3, 12),
    ("2 workers (batch split 2+1)", 2, None, 7, 3, 12),
    ("2 workers, --emphasis \"Decision:=5\"", 2, "Decision:=5", 7, 4, 10),
    ("2 workers, 200-token sequences", 2, None, 3, 2, 200),
]
OPTS = dict(lr=3e-2, min_lr=3e-3, warmup=3, wd=0.1, clip=0.5, seed=11)
BETA1, BETA2, EPS = 0.9, 0.99, 1e-8  # gb_train_options_init
# Float32 engine vs float64 reference after a few Adam steps, per tensor:
# ||engine - ref|| / ||ref - start|| (relative to how far training moved
# it; Adam's m / sqrt(v) amplifies rounding where a gradient is tiny, so
# single entries may differ by more).
TOL_PARAM = 3e-4
TOL_LOSS = 1e-5


class Tap:
    def __init__(self, n):
        self.n, self.failed = 0, 0
        print("1..%d" % n, flush=True)

    def result(self, ok, name, lines=()):
        self.n += 1
        self.failed += not ok
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, name))
        for line in lines:
            print("# " + line)
        sys.stdout.flush()


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


class GRandDoubles:
    """GLib's g_rand_double over g_rand_new_with_seed_array: MT19937
    seeded by init_by_array (as Python's random.seed does for an integer
    whose 32-bit words are the array), two 32-bit draws per double."""

    def __init__(self, words):
        key = 0
        for i, w in enumerate(words):
            key |= (w & 0xFFFFFFFF) << (32 * i)
        if words[-1] == 0:
            raise ValueError("the last seed word must be non-zero")
        self.r = random.Random(key)

    def double(self):
        while True:
            x = self.r.getrandbits(32) * 2.0 ** -32
            x = (x + self.r.getrandbits(32)) * 2.0 ** -32
            if x < 1.0:
                return x


def batch(tokens, weights, seed, step, b, t):
    rng = GRandDoubles([seed & 0xFFFFFFFF, seed >> 32, step & 0xFFFFFFFF, step >> 32, 0x74726e31])
    span = len(tokens) - t
    seqs = []
    for _ in range(b):
        off = min(int(rng.double() * span), span - 1)
        seqs.append((tokens[off:off + t + 1], weights[off + 1:off + t + 1]))
    return seqs


def emphasis_weights(tokens, marker, w):
    out = np.ones(len(tokens))
    m = len(marker)
    for i in range(len(tokens) - m):
        if list(tokens[i:i + m]) == marker:
            out[i + m] = w
    return out


def lr_at(step, steps):
    o = OPTS
    if step < o["warmup"]:
        return o["lr"] * (step + 1) / o["warmup"]
    prog = min((step - o["warmup"]) / (steps - o["warmup"]), 1.0)
    return o["min_lr"] + 0.5 * (o["lr"] - o["min_lr"]) * (1 + math.cos(math.pi * prog))


def decays(name):
    # weight matrices only: not biases, LayerNorm, wte / wpe
    return name.endswith(".weight") and ".ln_" not in name and not name.startswith(("ln_f", "wte", "wpe"))


def reference_train(params, config, tokens, weights, steps, b, t):
    p = {k: v.astype(np.float64).copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    losses = []
    for step in range(steps):
        seqs = batch(tokens, weights, OPTS["seed"], step, b, t)
        total_w = sum(float(w.sum()) for _, w in seqs)
        g = {k: np.zeros_like(x) for k, x in p.items()}
        nll = 0.0
        for toks, w in seqs:
            logits, caches = ref.forward_cached(p, config, toks)
            z = logits[:-1]
            mx = z.max(axis=-1, keepdims=True)
            lse = mx[:, 0] + np.log(np.exp(z - mx).sum(axis=-1))
            tgt = np.asarray(toks[1:])
            nll += float(np.sum(w * (lse - z[np.arange(t), tgt])))
            d = np.zeros_like(logits)
            d[:-1] = np.exp(z - lse[:, None])
            d[np.arange(t), tgt] -= 1.0
            d[:-1] *= (w / total_w)[:, None]
            gs, _ = ref.backward(caches, d)
            for k in g:
                g[k] += gs[k]
        losses.append(nll / total_w)
        norm = math.sqrt(sum(float((x * x).sum()) for x in g.values()))
        clip = OPTS["clip"] / norm if norm > OPTS["clip"] else 1.0
        lr = lr_at(step, steps)
        bc1, bc2 = 1 - BETA1 ** (step + 1), 1 - BETA2 ** (step + 1)
        for k in p:
            gk = g[k] * clip
            m[k] = BETA1 * m[k] + (1 - BETA1) * gk
            v2[k] = BETA2 * v2[k] + (1 - BETA2) * gk * gk
            if decays(k):
                p[k] *= 1 - lr * OPTS["wd"]
            p[k] -= lr / bc1 * m[k] / (np.sqrt(v2[k] / bc2) + EPS)
    return p, losses


def logged_losses(path):
    out = {}
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            if "loss" in rec and "step" in rec and rec.get("kind", "train") == "train":
                out[int(rec["step"])] = float(rec["loss"])
    return out


def main():
    cli = sys.argv[1]
    tap = Tap(len(CASES) + 1)
    root = tempfile.mkdtemp(prefix="glassbox-train-ref-")
    try:
        vocab = os.path.join(root, "vocab")
        run([cli, "init-model", "--preset", "tiny", "--seed", "1", "--output", vocab])
        config = ref.make_config(n_layer=2, n_head=4, n_embd=32, n_positions=256, vocab_size=257)
        params = ref.random_checkpoint(config, seed=5, std=0.05, attn_std=0.2, fc_std=0.2)
        model = os.path.join(root, "model")
        start = ref.write_hf_checkpoint(model, config, params, dtype="f32", vocab_dir=vocab)
        corpus = os.path.join(root, "corpus.txt")
        with open(corpus, "w") as f:
            f.write(TEXT)
        tokens = json.loads(run([cli, "tokenize", "--model", model, "--special", "--json", TEXT]))["ids"]
        marker = json.loads(run([cli, "tokenize", "--model", model, "--json", "Decision:"]))["ids"]
        tap.result(len(tokens) == len(TEXT.encode()) - len("<|endoftext|>") * 2 + 2 and 256 in tokens,
                   "corpus tokenised: %d tokens, <|endoftext|> = 256" % len(tokens))

        for i, (name, workers, emph, steps, b, t) in enumerate(CASES):
            out = os.path.join(root, "run-%d" % i)
            cmd = [cli, "train", "--init", model, "--corpus", corpus, "--heldout", corpus, "--output", out,
                   "--steps", str(steps), "--batch", str(b), "--seq-len", str(t),
                   "--lr", repr(OPTS["lr"]), "--min-lr", repr(OPTS["min_lr"]), "--warmup", str(OPTS["warmup"]),
                   "--weight-decay", repr(OPTS["wd"]), "--clip", repr(OPTS["clip"]), "--seed", str(OPTS["seed"]),
                   "--threads", str(workers), "--log-every", "1", "--dtype", "f32"]
            weights = np.ones(len(tokens))
            if emph:
                cmd += ["--emphasis", emph]
                weights = emphasis_weights(tokens, marker, float(emph.split("=")[1]))
            lines = []
            try:
                run(cmd)
                got, _ = ref.read_safetensors(os.path.join(out, "model.safetensors"))
                got = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in got.items()}
                want, want_losses = reference_train(start, config, np.asarray(tokens), weights, steps, b, t)
                worst, worst_name = 0.0, ""
                d = config["n_embd"]
                for k in want:
                    g, w, s0 = got[k].astype(np.float64), want[k], start[k]
                    if k.endswith("attn.c_attn.bias"):
                        # the key bias: its true gradient is exactly 0 (a
                        # softmax ignores a shift of a whole row), so Adam
                        # turns float32 rounding noise into steps that
                        # change nothing; compare the query and value parts
                        g, w, s0 = (np.concatenate([x[:d], x[2 * d:]]) for x in (g, w, s0))
                    err = float(np.linalg.norm(g - w)) / max(float(np.linalg.norm(w - s0)), 1e-12)
                    if err > worst:
                        worst, worst_name = err, k
                log = logged_losses(os.path.join(out, "train_log.jsonl"))
                loss_err = max(abs(log[s + 1] - want_losses[s]) / want_losses[s] for s in range(steps))
                ok = worst <= TOL_PARAM and loss_err <= TOL_LOSS and len(log) == steps
                lines = ["parameters after %d steps: largest ||engine - ref|| / ||ref - start|| %.2e (%s; tolerance %.0e)"
                         % (steps, worst, worst_name, TOL_PARAM),
                         "losses: first %.6f last %.6f (reference %.6f %.6f), max relative error %.2e"
                         % (log[1], log[steps], want_losses[0], want_losses[-1], loss_err)]
            except Exception as e:  # noqa: BLE001 - reported as a failure
                ok = False
                lines = ["%s: %s" % (type(e).__name__, e)]
            tap.result(ok, name, lines)
    finally:
        if os.environ.get("GLASSBOX_REF_KEEP"):
            print("# kept " + root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
