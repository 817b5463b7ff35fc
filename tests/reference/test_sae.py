#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks the engine's sparse autoencoders against an independent float64
numpy implementation.

  /usr/bin/python3 tests/reference/test_sae.py GLASSBOX-CLI SAE-STEP

1. The oracle: the numpy gradients of the SAE loss (classic L1 and TopK)
   against float64 central finite differences.
2. The trainer (tests/sae-step): on SAEs written here in SAELens' layout
   (cfg.json v6 or older, F32 or F16 weights), encode, decode, the loss
   terms and every gradient against numpy, in the dense and the sparse
   kernels; then three Adam steps with decoder renormalisation.
3. The splice-in metric: glassbox-cli sae eval on a random tiny GPT-2 and a
   random SAE (resid_pre, resid_post; with centring and normalisation)
   against a float64 forward pass in which the SAE's reconstruction
   replaces the hook's activations (tests/reference/gpt2_ref.py).
4. The files Glassbox writes are SAELens v6: the cfg fields, and the tensors
   read back by this file's own safetensors reader.
5. Explain's SAE features (glassbox-cli explain --sae): the activations at
   the decision position, and their maxima over a field's tokens, equal this
   file's encoder applied to the engine's own residual dump
   (glassbox-cli run --dump) at those tokens.

Output is TAP; exit status 1 on any failure.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref as ref  # noqa: E402

TOL_REL = 2e-4   # float32 engine against float64, max|a-b| / max|b|
results = []


def check(name, ok, lines=()):
    results.append((name, ok, list(lines)))


def rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(np.abs(b).max(), 1e-30)
    return float(np.abs(a - b).max() / scale)


# ---------------------------------------------------------------------------
# The numpy SAE


def encode(p, x, kind, k, apply):
    xin = x - p["b_dec"] if apply else x
    pre = xin @ p["W_enc"] + p["b_enc"]
    if kind == "topk":
        z = np.zeros_like(pre)
        idx = np.argsort(-pre, axis=1, kind="stable")[:, :k]
        rows = np.arange(pre.shape[0])[:, None]
        z[rows, idx] = np.maximum(pre[rows, idx], 0)
    else:
        z = np.maximum(pre, 0)
    return xin, z


def loss_and_grads(p, x, kind, k, l1, apply):
    B = x.shape[0]
    xin, z = encode(p, x, kind, k, apply)
    mask = z > 0
    xhat = z @ p["W_dec"] + p["b_dec"]
    e = xhat - x
    coef = l1 if kind == "standard" else 0.0
    mse = (e * e).sum(1).mean()
    l1t = z.sum(1).mean()
    loss = mse + coef * l1t
    dxhat = 2 * e / B
    g = {"W_dec": z.T @ dxhat, "b_dec": dxhat.sum(0)}
    dpre = (dxhat @ p["W_dec"].T + coef / B) * mask
    g["W_enc"] = xin.T @ dpre
    g["b_enc"] = dpre.sum(0)
    if apply:
        g["b_dec"] = g["b_dec"] - p["W_enc"] @ dpre.sum(0)
    stats = {"loss": loss, "mse": mse, "l1": l1t, "l0": mask.sum(1).mean()}
    return stats, g, z, xhat


def adam_steps(p, x, kind, k, l1, apply, lr, n, b1=0.9, b2=0.999, eps=1e-8):
    p = {name: v.copy() for name, v in p.items()}
    m = {name: np.zeros_like(v) for name, v in p.items()}
    v2 = {name: np.zeros_like(v) for name, v in p.items()}
    small = {}
    for t in range(1, n + 1):
        _, g, _, _ = loss_and_grads(p, x, kind, k, l1, apply)
        for name in p:
            if t == 1:
                small[name] = np.abs(g[name]) < 1e-5 * np.abs(g[name]).max()
            m[name] = b1 * m[name] + (1 - b1) * g[name]
            v2[name] = b2 * v2[name] + (1 - b2) * g[name] ** 2
            mh = m[name] / (1 - b1 ** t)
            vh = v2[name] / (1 - b2 ** t)
            p[name] -= lr * mh / (np.sqrt(vh) + eps)
        p["W_dec"] /= np.linalg.norm(p["W_dec"], axis=1, keepdims=True)
    return p, small


def random_sae(rng, d_in, d_sae):
    W_dec = rng.standard_normal((d_sae, d_in))
    W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    return {
        "W_enc": (W_dec.T + 0.3 * rng.standard_normal((d_in, d_sae))) / np.sqrt(d_in) * 3,
        "W_dec": W_dec,
        "b_enc": 0.1 * rng.standard_normal(d_sae) - 0.05,
        "b_dec": 0.2 * rng.standard_normal(d_in),
    }


def to_stored(p, dtype):
    return {n: ref.quantize(v, dtype) for n, v in p.items()}


def write_sae(folder, p, kind, k, hook, apply=True, dtype="f32", style="v6", extra_meta=None, norm=None):
    os.makedirs(folder, exist_ok=True)
    d_in, d_sae = p["W_enc"].shape
    st = {"f32": "F32", "f16": "F16"}[dtype]
    tensors = {n: (st, list(v.shape), ref.encode(v, dtype)[1]) for n, v in p.items()}
    ref.write_safetensors(os.path.join(folder, "sae_weights.safetensors"), tensors)
    if style == "v6":
        cfg = {"architecture": kind, "d_in": d_in, "d_sae": d_sae, "apply_b_dec_to_input": apply,
               "normalize_activations": "none", "metadata": {"hook_name": hook, "model_name": "tiny"}}
        if kind == "topk":
            cfg["k"] = k
        if extra_meta:
            cfg["metadata"]["glassbox"] = extra_meta
    else:  # SAELens < 6, as gpt2-small-res-jb ships it
        layer = int(hook.split(".")[1])
        cfg = {"d_in": d_in, "d_sae": d_sae, "hook_point": hook, "hook_layer": layer,
               "apply_b_dec_to_input": apply, "normalize_activations": False,
               "model_name": "gpt2-small", "dtype": "torch.float32", "device": "cpu"}
        if kind == "topk":
            cfg["activation_fn_str"] = "topk"
            cfg["activation_fn_kwargs"] = {"k": k}
        else:
            cfg["activation_fn_str"] = "relu"
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f)
    if norm is not None:
        tensors = {n: ("F32", [d_in], ref.encode(v, "f32")[1]) for n, v in norm.items()}
        ref.write_safetensors(os.path.join(folder, "glassbox_norm.safetensors"), tensors)
    return to_stored(p, dtype)


# ---------------------------------------------------------------------------
# 1. The oracle against finite differences


def fd_check():
    rng = np.random.default_rng(5)
    for kind, k, l1, apply in (("standard", 0, 0.7, True), ("standard", 0, 0.2, False), ("topk", 3, 0.0, True)):
        p = random_sae(rng, 6, 10)
        x = rng.standard_normal((7, 6))
        _, g, _, _ = loss_and_grads(p, x, kind, k, l1, apply)
        worst = 0.0
        h = 1e-6
        for name, v in p.items():
            for _ in range(8):
                i = tuple(rng.integers(0, s) for s in v.shape)
                old = v[i]
                v[i] = old + h
                fp = loss_and_grads(p, x, kind, k, l1, apply)[0]["loss"]
                v[i] = old - h
                fm = loss_and_grads(p, x, kind, k, l1, apply)[0]["loss"]
                v[i] = old
                fd = (fp - fm) / (2 * h)
                scale = max(np.abs(g[name]).max(), 1e-12)
                worst = max(worst, abs(fd - g[name][i]) / scale)
        check("oracle: %s (apply_b_dec %s) gradients = central differences (rel %.1e)" % (kind, apply, worst), worst < 1e-6)


# ---------------------------------------------------------------------------
# 2. The trainer


STEP_VARIANTS = [
    # name, kind, k, l1, apply, dtype, style, sparse_below
    ("standard, dense kernels", "standard", 0, 0.3, True, "f32", "v6", 0.0),
    ("standard, sparse kernels", "standard", 0, 0.3, True, "f32", "v6", 1.0),
    ("standard, no b_dec on input, older cfg", "standard", 0, 0.05, False, "f32", "old", 0.0),
    ("topk k=5, dense kernels", "topk", 5, 0.0, True, "f32", "v6", 0.0),
    ("topk k=5, sparse kernels, F16 weights", "topk", 5, 0.0, True, "f16", "v6", 1.0),
    ("topk k=3, older cfg (activation_fn_kwargs)", "topk", 3, 0.0, True, "f32", "old", 1.0),
]


def step_check(step_exe, root):
    rng = np.random.default_rng(11)
    for i, (name, kind, k, l1, apply, dtype, style, sparse) in enumerate(STEP_VARIANTS):
        d_in, d_sae, B = 24, 96, 40
        folder = os.path.join(root, "step-%d" % i)
        p = write_sae(os.path.join(folder, "sae"), random_sae(rng, d_in, d_sae), kind, k,
                      "blocks.1.hook_resid_pre", apply=apply, dtype=dtype, style=style)
        x = ref.quantize(rng.standard_normal((B, d_in)) * 1.5, "f32")
        ref.write_safetensors(os.path.join(folder, "x.safetensors"), {"x": ("F32", [B, d_in], ref.encode(x, "f32")[1])})
        lr = 1e-3
        out = os.path.join(folder, "out")
        r = subprocess.run([step_exe, os.path.join(folder, "sae"), os.path.join(folder, "x.safetensors"), out,
                            repr(l1), repr(lr), repr(sparse), "3"], capture_output=True, text=True)
        if r.returncode != 0:
            check("trainer: %s" % name, False, [r.stderr.strip()])
            continue
        got, meta = ref.read_safetensors(os.path.join(out, "result.safetensors"))
        stats, g, z, xhat = loss_and_grads(p, x, kind, k, l1, apply)
        errs = {"z": rel(got["z"], z), "xhat": rel(got["xhat"], xhat)}
        for n in ("W_enc", "W_dec", "b_enc", "b_dec"):
            errs["g_" + n] = rel(got["g_" + n], g[n])
        for n in ("loss", "mse", "l1", "l0"):
            errs[n] = abs(float(meta[n]) - stats[n]) / max(abs(stats[n]), 1e-12)
        after, _ = ref.read_safetensors(os.path.join(out, "after", "sae_weights.safetensors"))
        want, small = adam_steps(p, x, kind, k, l1, apply, lr, 3)
        step_err = 0.0
        for n in ("W_enc", "W_dec", "b_enc", "b_dec"):
            diff = np.abs(after[n] - want[n])
            # Where the true first gradient is ~0, float32 rounding decides
            # Adam's sign; those entries are left out (they move by <= 3 lr).
            diff = np.where(small[n], 0, diff)
            step_err = max(step_err, float(diff.max()) / lr)
        errs["adam (x lr)"] = step_err
        norms = np.linalg.norm(after["W_dec"], axis=1)
        errs["|W_dec rows| - 1"] = float(np.abs(norms - 1).max())
        tol = {"adam (x lr)": 0.02, "|W_dec rows| - 1": 1e-5}
        bad = ["%s: %.2e" % (n, e) for n, e in errs.items() if not e <= tol.get(n, TOL_REL)]
        check("trainer: %s (worst %.1e)" % (name, max(v for n, v in errs.items() if n not in tol)), not bad, bad)


# ---------------------------------------------------------------------------
# 3. The splice-in metric


def block_out(params, config, tokens, h, layer):
    """The residual after block @layer, from its input h (gpt2_ref's own
    forward, one block)."""
    _, c = ref.forward_cached(params, config, tokens, h_in=h, start_layer=layer)
    b = c["blocks"][0]
    p = c["p"]
    pre = "h.%d." % layer
    mid = h + b["z"] @ p[pre + "attn.c_proj.weight"] + p[pre + "attn.c_proj.bias"]
    return mid + b["post"] @ p[pre + "mlp.c_proj.weight"] + p[pre + "mlp.c_proj.bias"]


def resid_in(params, config, tokens, layer):
    p64 = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    h = p64["wte.weight"][tokens] + p64["wpe.weight"][np.arange(len(tokens))]
    for l in range(layer):
        h = block_out(params, config, tokens, h, l)
    return h


def nll(logits, tokens):
    lg = logits[:-1]
    mx = lg.max(1, keepdims=True)
    lse = np.log(np.exp(lg - mx).sum(1)) + mx[:, 0]
    return float((lse - lg[np.arange(len(lg)), tokens[1:]]).sum())


def splice_check(cli, root):
    vocab = os.environ.get("GLASSBOX_GPT2_VOCAB")
    if not vocab:
        check("splice: $GLASSBOX_GPT2_VOCAB is set", False)
        return
    rng = np.random.default_rng(3)
    config = ref.make_config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=50257)
    params = ref.random_checkpoint(config, seed=9, std=0.05, attn_std=0.2, fc_std=0.2)
    model = os.path.join(root, "model")
    stored = ref.write_hf_checkpoint(model, config, params, dtype="f32", vocab_dir=vocab)
    docs = ["The applicant lives in Eastbrook, zip 40106.", "Decision: approved",
            "A loan of $12,000 for a car; credit score 655 and debt-to-income 31%.",
            "Rain fell on the quiet town all night long, and nobody went out.",
            "Applicant: Maria Lopez, 41, Harbor End (40172). Income $52,000; debts $900 a month.",
            "The committee met on Tuesday to discuss the budget for the new library wing.",
            "Decision: rejected. Reason: credit score too low.",
            "She opened the window, listened to the birds, and wrote three letters before noon."]
    corpus = os.path.join(root, "docs.txt")
    with open(corpus, "w") as f:
        f.write("\n".join(docs) + "\n")
    # Documents packed back to back after <|endoftext|>, cut into windows of
    # the context (n_positions = 64), as the engine reads a corpus.
    stream = []
    for d in docs:
        r = subprocess.run([cli, "tokenize", "--model", model, "--special", "--json", d],
                           capture_output=True, text=True, check=True)
        stream += [50256] + json.loads(r.stdout)["ids"]
    windows = [np.array(stream[i:i + 64]) for i in range(0, len(stream), 64) if len(stream[i:i + 64]) >= 2]
    if len(windows) < 2:
        check("splice: the corpus spans several windows", False)
    cases = [
        ("standard at blocks.1.hook_resid_pre", "standard", 0, "blocks.1.hook_resid_pre", 1, None, False),
        ("topk at blocks.0.hook_resid_post, normalised", "topk", 6, "blocks.0.hook_resid_post", 1,
         "norm", False),
        ("standard at blocks.1.hook_resid_post (into ln_f), centred", "standard", 0,
         "blocks.1.hook_resid_post", 2, None, True),
    ]
    for i, (name, kind, k, hook, at, norm, center) in enumerate(cases):
        sae_dir = os.path.join(root, "splice-%d" % i)
        p = random_sae(rng, 32, 80)
        p["W_enc"] *= 3
        stats = None
        if norm:
            stats = {"mean": ref.quantize(0.1 * rng.standard_normal(32), "f32"),
                     "std": ref.quantize(0.5 + rng.random(32), "f32")}
        p = write_sae(sae_dir, p, kind, k, hook, extra_meta={"center": center}, norm=stats)
        clean = spliced = 0.0
        err = tot = n_act = l0 = 0.0
        sx = np.zeros(32)
        for t in windows:
            logits, _ = ref.forward_cached(stored, config, t)
            h = resid_in(stored, config, t, at)
            x = h[1:].copy()
            m = x.mean(1, keepdims=True) if center else np.zeros((len(x), 1))
            xi = x - m
            if stats:
                xi = (xi - stats["mean"]) / stats["std"]
            _, z = encode(p, xi, kind, k, True)
            xh = z @ p["W_dec"] + p["b_dec"]
            if stats:
                xh = xh * stats["std"] + stats["mean"]
            xh = xh + m
            hs = h.copy()
            hs[1:] = xh
            slog, _ = ref.forward_cached(stored, config, t, h_in=hs, start_layer=at)
            clean += nll(logits, t)
            spliced += nll(slog, t)
            err += ((x - xh) ** 2).sum()
            sx += x.sum(0)
            tot += (x ** 2).sum()
            n_act += len(x)
            l0 += (z > 0).sum()
        n_pred = sum(len(t) - 1 for t in windows)
        want = {"clean_loss": clean / n_pred, "spliced_loss": spliced / n_pred,
                "explained_variance": 1 - err / (tot - (sx ** 2).sum() / n_act), "mean_l0": l0 / n_act}
        want["loss_increase"] = want["spliced_loss"] - want["clean_loss"]
        r = subprocess.run([cli, "sae", "eval", "--model", model, "--sae", sae_dir, "--corpus", corpus, "--json"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            check("splice: %s" % name, False, [r.stderr.strip()])
            continue
        got = json.loads(r.stdout)
        bad = []
        for key, v in want.items():
            tol = 1e-4 if key in ("loss_increase", "explained_variance") else 1e-5 * max(1, abs(v))
            if not abs(got[key] - v) <= tol:
                bad.append("%s: engine %.7f, numpy %.7f" % (key, got[key], v))
        check("splice: %s (loss %.4f -> %.4f)" % (name, want["clean_loss"], want["spliced_loss"]), not bad, bad)
        if i == 0:
            # A mismatched SAE (d_in 16 for a 32-wide model) is a clear error.
            bad_dir = os.path.join(root, "splice-bad")
            write_sae(bad_dir, random_sae(rng, 16, 20), "standard", 0, hook)
            r = subprocess.run([cli, "sae", "eval", "--model", model, "--sae", bad_dir, "--corpus", corpus],
                               capture_output=True, text=True)
            check("splice: an SAE for another width is refused (exit 1, one line naming d_in)",
                  r.returncode == 1 and r.stderr.startswith("glassbox-cli: error: ") and "d_in is 16" in r.stderr
                  and r.stderr.count("\n") == 1, [r.stderr.strip()])


# ---------------------------------------------------------------------------
# 4. Files Glassbox writes


def written_check(root):
    folder = os.path.join(root, "step-0", "out", "after")
    with open(os.path.join(folder, "cfg.json")) as f:
        cfg = json.load(f)
    want = {"architecture": "standard", "d_in": 24, "d_sae": 96, "apply_b_dec_to_input": True,
            "normalize_activations": "none"}
    bad = ["%s = %r" % (k, cfg.get(k)) for k, v in want.items() if cfg.get(k) != v]
    if cfg.get("metadata", {}).get("hook_name") != "blocks.1.hook_resid_pre":
        bad.append("metadata.hook_name = %r" % cfg.get("metadata", {}).get("hook_name"))
    t, _ = ref.read_safetensors(os.path.join(folder, "sae_weights.safetensors"))
    shapes = {n: tuple(v.shape) for n, v in t.items()}
    if shapes != {"W_enc": (24, 96), "W_dec": (96, 24), "b_enc": (96,), "b_dec": (24,)}:
        bad.append("tensors %r" % shapes)
    sp, _ = ref.read_safetensors(os.path.join(folder, "sparsity.safetensors"))
    if "sparsity" not in sp or sp["sparsity"].shape != (96,) or not (sp["sparsity"] <= 0).all():
        bad.append("sparsity.safetensors")
    leftovers = [n for n in os.listdir(folder) if n.endswith(".tmp") or n.startswith(".")]
    if leftovers:
        bad.append("temporary files left: %r" % leftovers)
    check("files: SAELens v6 cfg.json, tensor names and shapes, log10 sparsity", not bad, bad)


# ---------------------------------------------------------------------------
# 5. Explain: SAE features at the decision position


def explain_check(cli, root):
    model = os.path.join(root, "model")
    if not os.path.isdir(model):
        check("explain: the splice model exists", False)
        return
    rng = np.random.default_rng(21)
    schema = os.path.join(root, "schema.json")
    with open(schema, "w") as f:
        json.dump({"template": "Applicant: {name}\nZip: {zip}\nIncome: {income}\nDecision:",
                   "labels": {"positive": " approved", "negative": " rejected"},
                   "fields": [{"name": "name"}, {"name": "zip"}, {"name": "income", "type": "integer"}]}, f)
    text = "Applicant: Maria Lopez\nZip: 40172\nIncome: 52000\nDecision:"
    dump = os.path.join(root, "explain-dump")
    r = subprocess.run([cli, "run", "--model", model, "--text", text, "--dump", dump], capture_output=True, text=True)
    if r.returncode != 0:
        check("explain: run --dump", False, [r.stderr.strip()])
        return
    cases = [
        ("topk k=8 at blocks.1.hook_resid_post, normalised and centred", "topk", 8, "blocks.1.hook_resid_post",
         "resid_post.npy", 1, True, True),
        ("standard at blocks.0.hook_resid_pre", "standard", 0, "blocks.0.hook_resid_pre", "resid_pre.npy", 0, False, False),
    ]
    for i, (name, kind, k, hook, npy, layer, norm, center) in enumerate(cases):
        sae_dir = os.path.join(root, "explain-sae-%d" % i)
        p = random_sae(rng, 32, 80)
        p["W_enc"] *= 3
        stats = None
        if norm:
            stats = {"mean": ref.quantize(0.1 * rng.standard_normal(32), "f32"),
                     "std": ref.quantize(0.5 + rng.random(32), "f32")}
        p = write_sae(sae_dir, p, kind, k, hook, extra_meta={"center": center}, norm=stats)
        r = subprocess.run([cli, "explain", "--model", model, "--schema", schema, "--text", text, "--sae", sae_dir,
                            "--sae-field", "zip", "--sae-top", "1000", "--no-token-occlusion", "--ig-steps", "2", "--json"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            check("explain: %s" % name, False, [r.stderr.strip()])
            continue
        got = json.loads(r.stdout)
        acts = np.load(os.path.join(dump, npy)).astype(np.float64)[layer]
        tokens = [t["id"] for t in got["tokens"]]
        with open(os.path.join(dump, "tokens.json")) as f:
            dumped = json.load(f)
        dumped_ids = dumped["tokens"]
        bad = []
        if tokens != list(dumped_ids):
            bad.append("explain's tokens differ from run's: %r vs %r" % (tokens, dumped_ids))
        x = acts.copy()
        if center:
            x = x - x.mean(1, keepdims=True)
        if stats:
            x = (x - stats["mean"]) / stats["std"]
        _, z = encode(p, x, kind, k, True)
        zip_field = [f["name"] for f in got["fields"]].index("zip")
        span = [t for t, tok in enumerate(got["tokens"]) if tok["field"] == zip_field]
        for key, want in (("features", z[-1]), ("field_features", z[span].max(0))):
            listed = {f["index"]: f["activation"] for f in got["sae"][key]}
            nz = {j: float(want[j]) for j in np.nonzero(want > 0)[0]}
            if set(listed) != set(nz):
                bad.append("%s: engine lists %d features, numpy finds %d active (%r)" %
                           (key, len(listed), len(nz), sorted(set(listed) ^ set(nz))[:8]))
                continue
            err = max(abs(listed[j] - v) for j, v in nz.items()) / max(max(nz.values(), default=1), 1e-30)
            if not err <= TOL_REL:
                bad.append("%s: max rel error %.2e" % (key, err))
            order = [f["index"] for f in got["sae"][key]]
            if [listed[j] for j in order] != sorted(listed.values(), reverse=True):
                bad.append("%s: not sorted by activation" % key)
        check("explain: %s, at the decision token and over the zip field's %d tokens" % (name, len(span)), not bad, bad)


def main(argv):
    if len(argv) != 3:
        print("usage: test_sae.py GLASSBOX-CLI SAE-STEP", file=sys.stderr)
        return 2
    cli, step_exe = argv[1], argv[2]
    root = tempfile.mkdtemp(prefix="gb-sae-ref-")
    try:
        fd_check()
        step_check(step_exe, root)
        splice_check(cli, root)
        written_check(root)
        explain_check(cli, root)
    finally:
        if not os.environ.get("GLASSBOX_REF_KEEP"):
            shutil.rmtree(root, ignore_errors=True)
    print("TAP version 13")
    print("1..%d" % len(results))
    failed = 0
    for i, (name, ok, lines) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        for line in lines:
            print("# " + line)
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
