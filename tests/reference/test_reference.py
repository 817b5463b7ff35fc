#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks glassbox-cli's forward pass against an independent float64 numpy
GPT-2 (gpt2_ref.py), on random tiny checkpoints in every layout the loader
accepts.

  /usr/bin/python3 tests/reference/test_reference.py /path/to/glassbox-cli

$GLASSBOX_GPT2_VOCAB names a folder with GPT-2's encoder.json and vocab.bpe.
Set GLASSBOX_REF_KEEP=1 to keep the checkpoints and dumps for debugging.
Output is TAP; the exit status is 1 on any failure, including a missing
numpy, vocabulary or executable (never a skip).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

# Tolerances: float32 engine against float64 reference. Relative errors are
# max|engine - ref| / max|ref| over the whole tensor.
TOL_LOGITS_REL = 1e-4
TOL_ATTENTION_ABS = 1e-5
TOL_RESID_REL = 1e-4
TOL_MLP_REL = 1e-4
TOL_CLASS_REL = 1e-4

SHORT_TEXT = "The quick brown fox jumps over the lazy dog."
LONG_TEXT = (
    "In 1847, the committee reviewed forty-two applications for small farm "
    "loans; thirty were approved, eleven were rejected, and one was withdrawn "
    "by the applicant herself. The chairman, Mr. O'Neill, wrote that \"the "
    "decisions were fair, though not always kind\". Today, a model makes the "
    "first pass: it reads the form, weighs income against debt, and prints "
    "a probability. Can anyone explain why it said no? That is the question "
    "this tool tries to answer, one attention head at a time."
)
ONE_TOKEN_TEXT = "Hello"
EDGE_TOKENS = [50256, 0, 220, 198, 50255, 13, 1]

# name, checkpoint options, input.
VARIANTS = [
    ("f32, transformer. prefix (save_pretrained)",
     dict(dtype="f32", prefix=True), dict(text=SHORT_TEXT)),
    ("f32, bare names (hub), 3 layers",
     dict(dtype="f32", prefix=False, n_layer=3), dict(text=SHORT_TEXT)),
    ("f16", dict(dtype="f16", prefix=True), dict(text=SHORT_TEXT)),
    ("bf16, 3 layers", dict(dtype="bf16", prefix=True, n_layer=3),
     dict(text=SHORT_TEXT)),
    ("untied lm_head.weight",
     dict(dtype="f32", prefix=True, untied=True), dict(text=SHORT_TEXT)),
    ("stale lm_head.weight, tie_word_embeddings default (tied to wte)",
     dict(dtype="f32", prefix=True, stale_head=True), dict(text=SHORT_TEXT)),
    ("buffers: bool attn.bias + masked_bias",
     dict(dtype="f32", prefix=True, buffers="bool", masked_bias=True),
     dict(text=SHORT_TEXT)),
    ("buffers: float attn.bias + masked_bias, bare names, f16",
     dict(dtype="f16", prefix=False, buffers="float", masked_bias=True),
     dict(text=SHORT_TEXT)),
    ("sharded (index.json, 2 shards)",
     dict(dtype="f32", prefix=True, n_shards=2), dict(text=SHORT_TEXT)),
    ("GPT2ForSequenceClassification",
     dict(dtype="f32", prefix=True, classifier=True), dict(text=SHORT_TEXT)),
    ("long text (~100 tokens)", dict(dtype="f32", prefix=True),
     dict(text=LONG_TEXT, min_tokens=90)),
    ("300 tokens (the attention's causal query tiles: 128 + 128 + 44)",
     dict(dtype="f32", prefix=True, n_positions=320),
     dict(tokens=[(i * 7919 + 13) % 50257 for i in range(150)] * 2)),
    ("one-token text", dict(dtype="f32", prefix=True),
     dict(text=ONE_TOKEN_TEXT, n_tokens=1)),
    ("config: n_inner 192, layer_norm_epsilon 1e-3",
     dict(dtype="f32", prefix=True, n_inner=192, eps=1e-3),
     dict(text=SHORT_TEXT)),
    ("--tokens with first and last vocabulary ids",
     dict(dtype="bf16", prefix=False), dict(tokens=EDGE_TOKENS)),
]

LABELS = {0: "approved", 1: "rejected"}


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
    """Setup problems fail the run; a missing dependency is never a skip."""
    tap = Tap(1)
    tap.result(False, "setup", [message])
    sys.exit(1)


def find_vocab():
    vocab = os.environ.get("GLASSBOX_GPT2_VOCAB")
    if not vocab:
        fail_early("GLASSBOX_GPT2_VOCAB is not set (folder with GPT-2's "
                   "encoder.json and vocab.bpe)")
    for hf, openai in (("vocab.json", "encoder.json"),
                       ("merges.txt", "vocab.bpe")):
        if not (os.path.isfile(os.path.join(vocab, hf))
                or os.path.isfile(os.path.join(vocab, openai))):
            fail_early("no %s (or %s) in GLASSBOX_GPT2_VOCAB=%s"
                       % (openai, hf, vocab))
    return vocab


def run_cli(cli, model_dir, dump_dir, inputs):
    cmd = [cli, "run", "--model", model_dir, "--dump", dump_dir]
    if "tokens" in inputs:
        cmd += ["--tokens", ",".join(str(t) for t in inputs["tokens"])]
    else:
        cmd += ["--text", inputs["text"]]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=120)
    except subprocess.TimeoutExpired:
        return None, "timed out after 120 s: %s" % " ".join(cmd)
    if proc.returncode != 0:
        return None, ("exit %d: %s\nstderr: %s"
                      % (proc.returncode, " ".join(cmd),
                         proc.stderr.decode("utf-8", "replace").strip()))
    return proc, None


def load_npy(np, path, shape):
    """Loads a dump and checks it is little-endian float32 of @shape."""
    if not os.path.isfile(path):
        raise AssertionError("missing %s" % os.path.basename(path))
    arr = np.load(path, allow_pickle=False)
    if arr.dtype != np.dtype("<f4"):
        raise AssertionError("%s: dtype %s, expected <f4"
                             % (os.path.basename(path), arr.dtype.str))
    if tuple(arr.shape) != tuple(shape):
        raise AssertionError("%s: shape %s, expected %s"
                             % (os.path.basename(path), tuple(arr.shape),
                                tuple(shape)))
    return arr.astype(np.float64)


def rel_error(np, got, ref):
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-300))


def abs_error(np, got, ref):
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got - ref)))


def where_max(np, got, ref):
    diff = np.abs(got - ref)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return "at %s: engine %.9g, reference %.9g" % (
        tuple(int(i) for i in idx), got[idx], ref[idx])


def check_variant(np, ref, cli, vocab, root, index, opts, inputs):
    """Returns (ok, diagnostic lines, errors dict)."""
    seed = 1000 + index
    n_labels = len(LABELS) if opts.get("classifier") else 0
    config = ref.make_config(
        n_layer=opts.get("n_layer", 2), n_head=4, n_embd=64, n_positions=opts.get("n_positions", 128),
        vocab_size=50257, n_inner=opts.get("n_inner"),
        layer_norm_epsilon=opts.get("eps", 1e-5),
        id2label=LABELS if n_labels else None, dtype=opts["dtype"],
        untied=opts.get("untied", False))
    params = ref.random_checkpoint(config, seed=seed, std=0.02, attn_std=0.15,
                                   fc_std=0.15, n_labels=n_labels,
                                   untied=opts.get("untied", False)
                                   or opts.get("stale_head", False))
    model_dir = os.path.join(root, "model-%02d" % index)
    dump_dir = os.path.join(root, "dump-%02d" % index)
    stored = ref.write_hf_checkpoint(
        model_dir, config, params, dtype=opts["dtype"],
        prefix=opts.get("prefix", True), buffers=opts.get("buffers"),
        masked_bias=opts.get("masked_bias", False),
        n_shards=opts.get("n_shards", 1), vocab_dir=vocab)

    # The reference runs on what the files hold, read back independently.
    _, on_disk = ref.load_hf_checkpoint(model_dir)
    if set(on_disk) != set(stored):
        return False, ["writer self-check: names differ: %s"
                       % sorted(set(on_disk) ^ set(stored))], {}
    for name in stored:
        if not np.array_equal(on_disk[name], stored[name]):
            return False, ["writer self-check: %s differs on disk" % name], {}

    proc, err = run_cli(cli, model_dir, dump_dir, inputs)
    if err:
        return False, [err], {}

    with open(os.path.join(dump_dir, "tokens.json")) as f:
        tokens = json.load(f)["tokens"]
    t = len(tokens)
    if not all(isinstance(x, int) and 0 <= x < config["vocab_size"]
               for x in tokens):
        return False, ["tokens.json holds invalid ids: %r" % tokens[:20]], {}
    if "tokens" in inputs and tokens != inputs["tokens"]:
        return False, ["tokens.json %r != --tokens %r"
                       % (tokens, inputs["tokens"])], {}
    if "n_tokens" in inputs and t != inputs["n_tokens"]:
        return False, ["%r gave %d tokens %r, expected %d"
                       % (inputs["text"], t, tokens, inputs["n_tokens"])], {}
    if t < inputs.get("min_tokens", 1) or t > config["n_positions"]:
        return False, ["%d tokens, expected %d..%d"
                       % (t, inputs.get("min_tokens", 1),
                          config["n_positions"])], {}

    expect = ref.forward(on_disk, config, tokens)
    n_layer, n_head, d = config["n_layer"], config["n_head"], config["n_embd"]
    n_inner = ref.config_n_inner(config)
    shapes = {
        "logits": (t, config["vocab_size"]),
        "attention": (n_layer, n_head, t, t),
        "resid_pre": (n_layer, t, d),
        "resid_mid": (n_layer, t, d),
        "resid_post": (n_layer, t, d),
        "mlp_post": (n_layer, t, n_inner),
    }
    checks = [
        ("logits", "rel", TOL_LOGITS_REL),
        ("attention", "abs", TOL_ATTENTION_ABS),
        ("resid_pre", "rel", TOL_RESID_REL),
        ("resid_mid", "rel", TOL_RESID_REL),
        ("resid_post", "rel", TOL_RESID_REL),
        ("mlp_post", "rel", TOL_MLP_REL),
    ]
    if n_labels:
        shapes["class_logits"] = (t, n_labels)
        checks.append(("class_logits", "rel", TOL_CLASS_REL))

    ok = True
    lines = ["%d tokens: %s" % (t, tokens if t <= 12 else
                                tokens[:12] + ["..."])]
    errors = {}
    for name, kind, tol in checks:
        path = os.path.join(dump_dir, name + ".npy")
        try:
            got = load_npy(np, path, shapes[name])
        except (AssertionError, ValueError, OSError) as e:
            ok = False
            lines.append("%s: %s" % (name, e))
            continue
        want = expect[name]
        err = (rel_error if kind == "rel" else abs_error)(np, got, want)
        errors[name] = err
        good = err <= tol
        line = "%-12s %s error %.3e (tolerance %.0e)" % (name, kind, err, tol)
        if not good:
            ok = False
            line += " FAIL " + where_max(np, got, want)
        lines.append(line)
    return ok, lines, errors


def main(argv):
    cli = argv[1] if len(argv) > 1 else os.environ.get("GLASSBOX_CLI")
    try:
        import numpy as np
    except ImportError as e:
        fail_early("numpy is missing for %s (%s); on Debian: "
                   "apt-get install python3-numpy" % (sys.executable, e))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gpt2_ref as ref

    vocab = find_vocab()
    if not cli or not os.access(cli, os.X_OK):
        fail_early("glassbox-cli not found or not executable: %r "
                   "(pass it as the first argument)" % cli)

    keep = os.environ.get("GLASSBOX_REF_KEEP") == "1"
    root = tempfile.mkdtemp(prefix="glassbox-ref-")
    start = time.monotonic()
    tap = Tap(len(VARIANTS))
    try:
        for i, (name, opts, inputs) in enumerate(VARIANTS):
            t0 = time.monotonic()
            try:
                ok, lines, _ = check_variant(np, ref, cli, vocab, root, i,
                                             opts, inputs)
            except Exception as e:  # a crash in one variant fails that one
                import traceback
                ok, lines = False, [traceback.format_exc().rstrip(), str(e)]
            lines.append("%.2f s" % (time.monotonic() - t0))
            tap.result(ok, name, lines)
    finally:
        if keep:
            print("# kept checkpoints and dumps in %s" % root)
        else:
            import shutil
            shutil.rmtree(root, ignore_errors=True)
    print("# %d passed, %d failed in %.1f s"
          % (tap.n - tap.failed, tap.failed, time.monotonic() - start))
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
