#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks glassbox-cli grad (the engine's backward pass) against an
independent float64 numpy backward (gpt2_ref.backward), and that backward
itself against float64 central finite differences.

  /usr/bin/python3 tests/reference/test_grad.py /path/to/glassbox-cli

1. The oracle: on a tiny float64 model (2 layers, 2 heads, n_embd 8,
   vocab 257, peaked attention, strongly non-linear GELU), entries of every
   parameter tensor, of the input embeddings and of each block's input are
   perturbed by +-h; (f(x+h) - f(x-h)) / 2h must match the numpy backward
   to relative error <= 1e-6, for the loss and for a logit difference.
2. The engine: glassbox-cli grad on random checkpoints written by
   gpt2_ref (F32 with and without the transformer. prefix, F16, BF16, the
   257-token byte vocabulary and GPT-2's) for 2..64 tokens: every gradient
   tensor, the loss, d_embed and d_resid_pre against the numpy backward
   run on the values the files hold.
3. The command's error contract.

$GLASSBOX_GPT2_VOCAB names a folder with GPT-2's encoder.json and vocab.bpe.
Set GLASSBOX_REF_KEEP=1 to keep the checkpoints and dumps. Output is TAP;
the exit status is 1 on any failure, including a missing numpy (never a
skip).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

# Finite differences: float64, central, step h (truncation ~h^2, rounding
# ~1e-16 |f| / h, both far below 1e-6 of the gradients checked). Entries
# whose true gradient is 0 (the key bias: softmax ignores a shift of a
# whole row) are measured against a floor of 1e-3 of the tensor's largest
# gradient instead of their own size.
FD_STEP = 1e-5
FD_TOL_REL = 1e-6
FD_FLOOR = 1e-3
FD_ENTRIES = 6          # per parameter tensor (and per layer for resid)

# Engine (float32) against the float64 backward: max|engine - ref| / max|ref|
# per tensor; the loss relative to itself.
TOL_GRAD_REL = 1e-4
TOL_LOSS_REL = 1e-5
TOL_DIFF_REL = 1e-4

TEXT = "The quick brown fox jumps over the lazy dog."

# name, checkpoint options, input (text or tokens), --logit-diff (None or
# (pos, a, b) with negative pos counted from the end).
VARIANTS = [
    ("f32, transformer. prefix, byte vocab, text",
     dict(dtype="f32", prefix=True), dict(text=TEXT), (-1, 101, 32)),
    ("f32, bare names, 3 layers, --tokens, logit A alone (B = -1)",
     dict(dtype="f32", prefix=False, n_layer=3),
     dict(tokens=[256, 72, 105, 0, 255, 72, 105, 33, 10, 7]), (4, 72, -1)),
    ("f16, transformer. prefix",
     dict(dtype="f16", prefix=True), dict(text=TEXT), (10, 3, 250)),
    ("bf16, bare names, n_inner 96, eps 1e-3",
     dict(dtype="bf16", prefix=False, n_inner=96, eps=1e-3),
     dict(text=TEXT), (-2, 40, 41)),
    ("two tokens (the minimum for the loss)",
     dict(dtype="f32", prefix=True), dict(tokens=[256, 65]), (0, 66, 65)),
    ("two tokens, f16, logit at the last position",
     dict(dtype="f16", prefix=False), dict(tokens=[7, 7]), (1, 7, -1)),
    ("64 tokens (random ids, repeats)",
     dict(dtype="f32", prefix=True), dict(random_tokens=64), (37, 12, 200)),
    ("GPT-2 vocabulary (50257), f32, text",
     dict(dtype="f32", prefix=True, gpt2_vocab=True), dict(text=TEXT),
     (-1, 464, 50256)),
]

# Error cases: (name, extra arguments, expected exit status, want the one
# 'glassbox-cli: error: ' line)
ERROR_CASES = [
    ("--logit-diff with two fields", ["--logit-diff", "1,2"], 2, False),
    ("--logit-diff with a word", ["--logit-diff", "1,x,2"], 2, False),
    ("--logit-diff with negative POS", ["--logit-diff", "-1,2,3"], 2, False),
    ("--logit-diff with B = -2", ["--logit-diff", "0,2,-2"], 2, False),
    ("--logit-diff POS out of range", ["--logit-diff", "99,2,3"], 1, True),
    ("--logit-diff A out of the vocabulary", ["--logit-diff", "0,257,3"], 1,
     True),
]


class Tap:
    def __init__(self, n):
        self.n = 0
        self.failed = 0
        print("1..%d" % n, flush=True)

    def result(self, ok, name, lines=()):
        self.n += 1
        if not ok:
            self.failed += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, name))
        for line in lines:
            for part in str(line).splitlines():
                print("# " + part)
        sys.stdout.flush()


def fail_early(message):
    tap = Tap(1)
    tap.result(False, "setup", [message])
    sys.exit(1)


# ---------------------------------------------------------------------------
# 1. the oracle against finite differences


def fd_config(ref):
    return ref.make_config(n_layer=2, n_head=2, n_embd=8, n_positions=16,
                           vocab_size=257)


def fd_params(ref, config):
    return ref.random_checkpoint(config, seed=7, std=0.3, attn_std=0.6,
                                 fc_std=0.6)


FD_TOKENS = [5, 77, 200, 5, 13, 256, 77, 0]
FD_DIFF = (6, 77, 13)


def fd_compare(np, fd, an, scale):
    """Relative error of one entry: against max(|fd|, |an|) or, for
    (near-)zero gradients, FD_FLOOR * the tensor's scale."""
    return abs(fd - an) / max(abs(fd), abs(an), FD_FLOOR * scale, 1e-300)


def check_fd_forward(np, ref):
    config = fd_config(ref)
    params = fd_params(ref, config)
    logits, _ = ref.forward_cached(params, config, FD_TOKENS)
    want = ref.forward(params, config, FD_TOKENS)
    err = float(np.max(np.abs(logits - want["logits"])))
    att = want["attention"]
    peaked = float(att.max(axis=-1)[:, :, 2:].min())
    lines = ["cached forward vs gpt2_ref.forward: max |logits diff| %.2e" % err,
             "attention: smallest row maximum past position 1 %.3f "
             "(uniform over >= 3 would be <= 0.34)" % peaked]
    ok = err <= 1e-12
    return ok, lines


def check_fd_params(np, ref):
    config = fd_config(ref)
    params = fd_params(ref, config)
    loss, grads = ref.loss_and_grads(params, config, FD_TOKENS)
    rng = np.random.default_rng(11)

    def loss_of(p):
        logits, _ = ref.forward_cached(p, config, FD_TOKENS)
        return ref.loss_d_logits(logits, FD_TOKENS)[0]

    # the loss itself, independently: -log softmax via gpt2_ref.forward
    logits = ref.forward(params, config, FD_TOKENS)["logits"]
    lp = logits - logits.max(-1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    direct = -np.mean([lp[i, FD_TOKENS[i + 1]]
                       for i in range(len(FD_TOKENS) - 1)])
    worst, worst_at, n = 0.0, "", 0
    lines = ["loss %.12f, from gpt2_ref.forward %.12f" % (loss, direct)]
    ok = abs(loss - direct) <= 1e-12 * abs(direct)
    for name in sorted(params):
        val = params[name]
        scale = float(np.max(np.abs(grads[name])))
        picks = [tuple(int(rng.integers(0, s)) for s in val.shape)
                 for _ in range(FD_ENTRIES)]
        if name in ("wte.weight", "wpe.weight"):
            # rows the input uses (embedding + unembedding paths)
            rows = FD_TOKENS if name == "wte.weight" else range(len(FD_TOKENS))
            picks += [(int(rng.choice(list(rows))), int(rng.integers(0, val.shape[1])))
                      for _ in range(FD_ENTRIES)]
        for idx in picks:
            q = dict(params)
            q[name] = val.copy()
            q[name][idx] = val[idx] + FD_STEP
            up = loss_of(q)
            q[name][idx] = val[idx] - FD_STEP
            down = loss_of(q)
            fd = (up - down) / (2 * FD_STEP)
            e = fd_compare(np, fd, grads[name][idx], scale)
            n += 1
            if e > worst:
                worst, worst_at = e, "%s%s: fd %.10g, backward %.10g" % (
                    name, idx, fd, grads[name][idx])
    ok = ok and worst <= FD_TOL_REL
    lines.append("%d entries from %d tensors: max relative error %.2e "
                 "(tolerance %.0e)" % (n, len(params), worst, FD_TOL_REL))
    lines.append("worst " + worst_at)
    return ok, lines, worst


def check_fd_inputs(np, ref):
    """d(logit difference) w.r.t. the input embeddings and each block's
    input, by perturbing the residual stream entering that block."""
    config = fd_config(ref)
    params = fd_params(ref, config)
    pos, a, b = FD_DIFF
    value, d_embed, d_pre = ref.logit_diff_grads(params, config, FD_TOKENS,
                                                 pos, a, b)
    resid = ref.forward(params, config, FD_TOKENS)["resid_pre"]
    rng = np.random.default_rng(12)
    worst, worst_at, n = 0.0, "", 0
    ok = np.array_equal(d_embed, d_pre[0])
    t, d = len(FD_TOKENS), config["n_embd"]
    for layer in range(config["n_layer"]):
        scale = float(np.max(np.abs(d_pre[layer])))
        picks = [(int(rng.integers(0, pos + 1)), int(rng.integers(0, d)))
                 for _ in range(3 * FD_ENTRIES)]
        picks += [(pos + 1, 0)] if pos + 1 < t else []   # future: exactly 0
        for idx in picks:
            def diff_of(h):
                logits, _ = ref.forward_cached(params, config, FD_TOKENS,
                                               h_in=h, start_layer=layer)
                return logits[pos, a] - logits[pos, b]
            h = resid[layer].copy()
            h[idx] += FD_STEP
            up = diff_of(h)
            h[idx] -= 2 * FD_STEP
            down = diff_of(h)
            fd = (up - down) / (2 * FD_STEP)
            e = fd_compare(np, fd, d_pre[layer][idx], scale)
            n += 1
            if e > worst:
                worst, worst_at = e, "block %d input %s: fd %.10g, backward %.10g" % (
                    layer, idx, fd, d_pre[layer][idx])
    # and through wte/wpe: the embedding gradient is d_embed at a token's
    # position, so d(diff)/d wpe[i] == d_embed[i]
    q = dict(params)
    q["wpe.weight"] = params["wpe.weight"].copy()
    idx = (2, 3)
    q["wpe.weight"][idx] += FD_STEP
    up = ref.forward(q, config, FD_TOKENS)["logits"]
    q["wpe.weight"][idx] -= 2 * FD_STEP
    down = ref.forward(q, config, FD_TOKENS)["logits"]
    fd = ((up[pos, a] - up[pos, b]) - (down[pos, a] - down[pos, b])) / (2 * FD_STEP)
    e = fd_compare(np, fd, d_embed[idx], float(np.max(np.abs(d_embed))))
    n += 1
    if e > worst:
        worst, worst_at = e, "wpe%s: fd %.10g, d_embed %.10g" % (idx, fd, d_embed[idx])
    ok = ok and worst <= FD_TOL_REL
    lines = ["logit[%d][%d] - logit[%d][%d] = %.6f" % (pos, a, pos, b, value),
             "%d entries of the input embeddings / block inputs: max relative "
             "error %.2e (tolerance %.0e)" % (n, worst, FD_TOL_REL),
             "worst " + worst_at]
    return ok, lines, worst


# ---------------------------------------------------------------------------
# 2. the engine against the oracle


def run(cmd, timeout=120):
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return proc


def describe(proc, cmd):
    if proc is None:
        return "timed out: %s" % " ".join(cmd)
    return "exit %d: %s\nstderr: %s" % (
        proc.returncode, " ".join(cmd),
        proc.stderr.decode("utf-8", "replace").strip())


def make_byte_vocab(cli, root):
    """The 257-token byte-level vocabulary, as init-model --preset tiny
    writes it."""
    out = os.path.join(root, "byte-vocab")
    cmd = [cli, "init-model", "--preset", "tiny", "--seed", "1",
           "--output", out]
    proc = run(cmd)
    if proc is None or proc.returncode != 0:
        raise RuntimeError(describe(proc, cmd))
    with open(os.path.join(out, "vocab.json")) as f:
        n = len(json.load(f))
    if n != 257:
        raise RuntimeError("byte vocabulary has %d tokens, expected 257" % n)
    return out


def safetensors_header(path):
    import struct
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    header.pop("__metadata__", None)
    return header


def rel_error(np, got, ref):
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-300))


def where_max(np, got, ref):
    diff = np.abs(got - ref)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return "at %s: engine %.9g, reference %.9g (max |ref| %.3g)" % (
        tuple(int(i) for i in idx), got[idx], ref[idx], np.max(np.abs(ref)))


def check_variant(np, ref, cli, vocabs, root, index, opts, inputs, diff):
    seed = 2000 + index
    vocab_size = 50257 if opts.get("gpt2_vocab") else 257
    config = ref.make_config(
        n_layer=opts.get("n_layer", 2), n_head=4, n_embd=64, n_positions=128,
        vocab_size=vocab_size, n_inner=opts.get("n_inner"),
        layer_norm_epsilon=opts.get("eps", 1e-5), dtype=opts["dtype"])
    params = ref.random_checkpoint(config, seed=seed, std=0.02, attn_std=0.15,
                                   fc_std=0.15)
    model_dir = os.path.join(root, "model-%02d" % index)
    dump_dir = os.path.join(root, "dump-%02d" % index)
    vocab_dir = vocabs["gpt2" if opts.get("gpt2_vocab") else "bytes"]
    ref.write_hf_checkpoint(model_dir, config, params, dtype=opts["dtype"],
                            prefix=opts.get("prefix", True),
                            vocab_dir=vocab_dir)
    _, on_disk = ref.load_hf_checkpoint(model_dir)

    if "text" in inputs:
        cmd = [cli, "tokenize", "--model", model_dir, "--json", inputs["text"]]
        proc = run(cmd)
        if proc is None or proc.returncode != 0:
            return False, [describe(proc, cmd)], {}
        tokens = json.loads(proc.stdout.decode("utf-8"))["ids"]
        source = ["--text", inputs["text"]]
    else:
        if "random_tokens" in inputs:
            rng = np.random.default_rng(seed)
            tokens = [int(x) for x in rng.integers(0, vocab_size,
                                                   inputs["random_tokens"])]
            tokens[40:52] = tokens[10:22]          # a repeated stretch
        else:
            tokens = list(inputs["tokens"])
        source = ["--tokens", ",".join(str(x) for x in tokens)]
    t = len(tokens)
    pos, a, b = diff
    if pos < 0:
        pos += t
    cmd = [cli, "grad", "--model", model_dir, "--dump", dump_dir] + source + [
        "--logit-diff", "%d,%d,%d" % (pos, a, b)]
    t0 = time.monotonic()
    proc = run(cmd)
    cli_s = time.monotonic() - t0
    if proc is None or proc.returncode != 0:
        return False, [describe(proc, cmd)], {}

    t1 = time.monotonic()
    loss, grads = ref.loss_and_grads(on_disk, config, tokens)
    _, d_embed, d_pre = ref.logit_diff_grads(on_disk, config, tokens, pos, a, b)
    ref_s = time.monotonic() - t1
    att = ref.forward(on_disk, config, tokens)["attention"]
    lines = ["%d tokens%s; --logit-diff %d,%d,%d; engine %.2f s, numpy %.2f s"
             % (t, ": %s" % tokens if t <= 12 else "", pos, a, b, cli_s, ref_s)]
    if t >= 3:
        lines.append("attention row maxima past position 1: min %.3f, mean %.3f"
                     % (float(att.max(-1)[:, :, 2:].min()),
                        float(att.max(-1)[:, :, 2:].mean())))
    ok = True
    errors = {}

    with open(os.path.join(dump_dir, "loss.json")) as f:
        lj = json.load(f)
    loss_err = abs(lj["loss"] - loss) / abs(loss)
    errors["loss"] = loss_err
    good = loss_err <= TOL_LOSS_REL and lj.get("n_tokens") == t
    ok = ok and good
    lines.append("loss        engine %.9g, reference %.9g, rel error %.2e "
                 "(tolerance %.0e), n_tokens %r%s"
                 % (lj["loss"], loss, loss_err, TOL_LOSS_REL,
                    lj.get("n_tokens"), "" if good else " FAIL"))

    path = os.path.join(dump_dir, "grads.safetensors")
    header = safetensors_header(path)
    got_all, _ = ref.read_safetensors(path)
    if set(header) != set(grads):
        ok = False
        lines.append("grads.safetensors names differ: missing %s, extra %s"
                     % (sorted(set(grads) - set(header)),
                        sorted(set(header) - set(grads))))
    worst_name, worst = None, 0.0
    for name in sorted(grads):
        if name not in header:
            continue
        info = header[name]
        if info["dtype"] != "F32" or tuple(info["shape"]) != grads[name].shape:
            ok = False
            lines.append("%s: %s %s, expected F32 %s" % (
                name, info["dtype"], info["shape"], grads[name].shape))
            continue
        err = rel_error(np, got_all[name], grads[name])
        errors[name] = err
        if err > worst:
            worst_name, worst = name, err
        if err > TOL_GRAD_REL:
            ok = False
            lines.append("%-28s rel error %.3e FAIL %s" % (
                name, err, where_max(np, got_all[name], grads[name])))
    lines.append("%d gradient tensors: max rel error %.3e in %s (tolerance %.0e)"
                 % (len(grads), worst, worst_name, TOL_GRAD_REL))

    for name, want, shape in (("d_embed", d_embed, (t, config["n_embd"])),
                              ("d_resid_pre", d_pre,
                               (config["n_layer"], t, config["n_embd"]))):
        p = os.path.join(dump_dir, name + ".npy")
        if not os.path.isfile(p):
            ok = False
            lines.append("missing %s.npy" % name)
            continue
        arr = np.load(p, allow_pickle=False)
        if arr.dtype != np.dtype("<f4") or arr.shape != shape:
            ok = False
            lines.append("%s.npy: %s %s, expected <f4 %s"
                         % (name, arr.dtype.str, arr.shape, shape))
            continue
        got = arr.astype(np.float64)
        err = rel_error(np, got, want)
        errors[name] = err
        good = err <= TOL_DIFF_REL
        ok = ok and good
        lines.append("%-11s rel error %.3e (tolerance %.0e)%s" % (
            name, err, TOL_DIFF_REL,
            "" if good else " FAIL " + where_max(np, got, want)))
        if name == "d_resid_pre" and "d_embed" in errors:
            e0 = np.load(os.path.join(dump_dir, "d_embed.npy"))
            if not np.array_equal(arr[0], e0):
                ok = False
                lines.append("d_resid_pre[0] != d_embed")
    return ok, lines, errors


# ---------------------------------------------------------------------------
# 3. errors


def check_errors(cli, root, model_dir):
    results = []
    dump = os.path.join(root, "dump-errors")
    for name, extra, want, one_line in ERROR_CASES:
        cmd = [cli, "grad", "--model", model_dir, "--dump", dump,
               "--tokens", "1,2,3,4"] + extra
        proc = run(cmd)
        results.append(check_exit(proc, cmd, name, want, one_line))
    cmd = [cli, "grad", "--model", model_dir, "--dump", dump, "--text", "A"]
    results.append(check_exit(run(cmd), cmd, "a single-token text", 2, False))
    cmd = [cli, "grad", "--model", model_dir, "--dump", dump, "--tokens", "9"]
    results.append(check_exit(run(cmd), cmd, "a single --tokens id", 2, False))
    return results


def check_exit(proc, cmd, name, want, one_line):
    if proc is None:
        return False, name, ["timed out: %s" % " ".join(cmd)]
    err = proc.stderr.decode("utf-8", "replace")
    lines = ["%s -> exit %d" % (" ".join(cmd[1:]), proc.returncode),
             "stderr: %s" % err.strip()]
    ok = proc.returncode == want
    if not ok:
        lines.append("expected exit %d" % want)
    if one_line:
        stripped = err.rstrip("\n").split("\n")
        if not (len(stripped) == 1 and stripped[0].startswith("glassbox-cli: error: ")):
            ok = False
            lines.append("expected exactly one 'glassbox-cli: error: ...' line")
    return ok, "error: " + name, lines


# ---------------------------------------------------------------------------


def main(argv):
    cli = argv[1] if len(argv) > 1 else os.environ.get("GLASSBOX_CLI")
    try:
        import numpy as np
    except ImportError as e:
        fail_early("numpy is missing for %s (%s); on Debian: "
                   "apt-get install python3-numpy" % (sys.executable, e))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gpt2_ref as ref

    gpt2_vocab = os.environ.get("GLASSBOX_GPT2_VOCAB")
    if not gpt2_vocab or not os.path.isdir(gpt2_vocab):
        fail_early("GLASSBOX_GPT2_VOCAB is not set to a folder with GPT-2's "
                   "encoder.json and vocab.bpe")
    if not cli or not os.access(cli, os.X_OK):
        fail_early("glassbox-cli not found or not executable: %r" % cli)

    keep = os.environ.get("GLASSBOX_REF_KEEP") == "1"
    root = tempfile.mkdtemp(prefix="glassbox-grad-")
    start = time.monotonic()
    n_tests = 3 + len(VARIANTS) + len(ERROR_CASES) + 2
    tap = Tap(n_tests)

    def guarded(name, fn):
        t0 = time.monotonic()
        try:
            out = fn()
            ok, lines = out[0], list(out[1])
        except Exception as e:
            import traceback
            ok, lines = False, [traceback.format_exc().rstrip(), str(e)]
        lines.append("%.2f s" % (time.monotonic() - t0))
        tap.result(ok, name, lines)

    try:
        guarded("oracle: cached forward equals gpt2_ref.forward",
                lambda: check_fd_forward(np, ref))
        guarded("oracle: loss gradients of every tensor vs central "
                "finite differences", lambda: check_fd_params(np, ref))
        guarded("oracle: logit-difference gradients w.r.t. input embeddings "
                "and block inputs vs central finite differences",
                lambda: check_fd_inputs(np, ref))
        vocabs = {"gpt2": gpt2_vocab}
        try:
            vocabs["bytes"] = make_byte_vocab(cli, root)
        except Exception as e:
            vocabs["bytes"] = None
            setup_error = str(e)
        for i, (name, opts, inputs, diff) in enumerate(VARIANTS):
            if vocabs.get("bytes") is None and not opts.get("gpt2_vocab"):
                tap.result(False, "engine: " + name,
                           ["no byte vocabulary: " + setup_error])
                continue
            guarded("engine: " + name,
                    lambda: check_variant(np, ref, cli, vocabs, root, i,
                                          opts, inputs, diff))
        model_dir = os.path.join(root, "model-00")
        try:
            results = check_errors(cli, root, model_dir)
        except Exception as e:
            results = [(False, "error cases", [str(e)])]
        for ok, name, lines in results:
            tap.result(ok, name, lines)
        while tap.n < n_tests:
            tap.result(False, "missing result", [])
    finally:
        if keep:
            print("# kept checkpoints and dumps in %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print("# %d passed, %d failed in %.1f s"
          % (tap.n - tap.failed, tap.failed, time.monotonic() - start))
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
