#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks glassbox-cli explain --json against an independent float64 numpy
computation (gpt2_ref) on tiny random models:

  /usr/bin/python3 tests/reference/test_explain.py /path/to/glassbox-cli

For an application rendered from fields through a schema (labels "Y"/"N",
single byte tokens of the 257-token byte vocabulary):
- the tokens (the byte-level encoding, done here from vocab.json);
- the decision: log-odds = logit[Y] - logit[N] at the last position and
  p = sigmoid(log-odds);
- occlusion per field: log-odds minus the log-odds of the text re-rendered
  here without the field's line (and with the neutral value, --occlusion
  neutral);
- occlusion per token (the text without that token);
- gradient x input and integrated gradients per token (64 midpoint steps,
  baseline = position embeddings only) from gpt2_ref's float64 backward, and
  IG's completeness (sum = F(x) - F(baseline) within 1%), in numpy and as
  the engine reports it;
- attention from the last position: every head, each layer's mean, the
  rollout (Abnar & Zuidema: rownorm(0.5 A + 0.5 I), multiplied up the layers);
- a GPT2ForSequenceClassification checkpoint: class probabilities.
Output is TAP; exit status 1 on any failure (never a skip).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

TOL_REL = 2e-4       # engine float32 vs float64, relative to the largest value
TOL_COMPLETE = 0.01  # IG completeness at 64 steps

SCHEMA = {
    "name": "reference",
    "template": "Form\nName: {name}\nScore: {score}\nIncome: {income}\nZip: {zip}\nDecision:",
    "labels": {"positive": "Y", "negative": "N"},
    "fields": [
        {"name": "name", "max": 30},
        {"name": "score", "type": "integer", "min": 300, "max": 850, "neutral": "600"},
        {"name": "income", "type": "money", "min": 0, "max": 10000000, "neutral": "40000"},
        {"name": "zip", "type": "enum", "values": ["40106", "40112", "40118"]},
    ],
}
FIELDS = {"name": "Ann Lee", "score": 655, "income": 52000, "zip": "40106"}
SHOWN = {"name": "Ann Lee", "score": "655", "income": "$52,000", "zip": "40106"}
NEUTRAL = {"score": "600", "income": "$40,000"}


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def result(self, ok, name, lines=()):
        self.n += 1
        self.failed += 0 if ok else 1
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, name))
        for line in lines:
            for part in str(line).splitlines():
                print("# " + part)
        sys.stdout.flush()


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def encoder(model_dir):
    vocab = json.load(open(os.path.join(model_dir, "vocab.json"), encoding="utf-8"))
    b2u = bytes_to_unicode()
    return lambda text: [vocab[b2u[b]] for b in text.encode("utf-8")]


def render(shown, drop=None):
    lines = ["Form", "Name: %s" % shown["name"], "Score: %s" % shown["score"],
             "Income: %s" % shown["income"], "Zip: %s" % shown["zip"], "Decision:"]
    if drop is not None:
        idx = {"name": 1, "score": 2, "income": 3, "zip": 4}[drop]
        lines.pop(idx)
    return "\n".join(lines)


def run_cli(cli, args):
    proc = subprocess.run([cli, "explain"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError("exit %d: %s" % (proc.returncode, proc.stderr.decode("utf-8", "replace")))
    return json.loads(proc.stdout.decode("utf-8"))


def rel_err(np, got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-12))


def main(argv):
    tap = Tap()
    print("1..9")
    try:
        import numpy as np
        import gpt2_ref as ref
    except ImportError as e:
        tap.result(False, "numpy and gpt2_ref import", [str(e)])
        return 1
    cli = argv[1]
    root = tempfile.mkdtemp(prefix="glassbox-explain-ref-")
    try:
        # The byte vocabulary, as init-model --preset tiny writes it.
        vocab_dir = os.path.join(root, "vocab")
        subprocess.run([cli, "init-model", "--preset", "tiny", "--seed", "1", "--output", vocab_dir],
                       check=True, capture_output=True)
        config = ref.make_config(n_layer=2, n_head=2, n_embd=16, n_positions=128, vocab_size=257)
        params = ref.random_checkpoint(config, seed=5, std=0.4, attn_std=0.5, fc_std=0.5)
        model = os.path.join(root, "model")
        stored = ref.write_hf_checkpoint(model, config, params, dtype="f32", vocab_dir=None)
        for f in ("vocab.json", "merges.txt"):
            shutil.copyfile(os.path.join(vocab_dir, f), os.path.join(model, f))
        schema = os.path.join(root, "schema.json")
        json.dump(SCHEMA, open(schema, "w"))
        app = os.path.join(root, "app.json")
        json.dump({"id": "ref", "fields": FIELDS}, open(app, "w"))
        enc = encoder(model)
        Y, N = enc("Y")[0], enc("N")[0]

        def log_odds(text):
            lg = ref.forward(stored, config, enc(text))["logits"]
            return float(lg[-1, Y] - lg[-1, N])

        out = run_cli(cli, ["--model", model, "--schema", schema, "--application", app, "--json", "--ig-steps", "64"])
        text = render(SHOWN)
        tokens = enc(text)
        got_tokens = [t["id"] for t in out["tokens"]]
        tap.result(out["text"] == text and got_tokens == tokens, "text and tokens",
                   ["%d tokens" % len(tokens)])

        lo = log_odds(text)
        d = out["decision"]
        e1 = abs(d["log_odds"] - lo) / max(abs(lo), 1e-9)
        e2 = abs(d["p_positive"] - 1 / (1 + np.exp(-lo)))
        tap.result(e1 <= TOL_REL and e2 <= 1e-5 and abs(lo) > 0.1, "decision",
                   ["log-odds engine %.6f numpy %.6f (rel %.1e); p %.6f" % (d["log_odds"], lo, e1, d["p_positive"])])

        occ = [lo - log_odds(render(SHOWN, drop=f)) for f in ("name", "score", "income", "zip")]
        got = [f["occlusion"] for f in out["fields"]]
        err = rel_err(np, got, occ)
        tap.result(err <= TOL_REL, "occlusion per field (line removed)",
                   ["numpy %s" % np.round(occ, 5), "engine %s" % np.round(got, 5), "rel error %.1e" % err])

        outn = run_cli(cli, ["--model", model, "--schema", schema, "--application", app, "--json",
                             "--occlusion", "neutral", "--ig-steps", "2", "--no-token-occlusion"])
        occn = []
        for f in ("name", "score", "income", "zip"):
            if f in NEUTRAL:
                s = dict(SHOWN)
                s[f] = NEUTRAL[f]
                occn.append(lo - log_odds(render(s)))
            else:
                occn.append(lo - log_odds(render(SHOWN, drop=f)))
        gotn = [f["occlusion"] for f in outn["fields"]]
        err = rel_err(np, gotn, occn)
        tap.result(err <= TOL_REL, "occlusion per field (neutral value)",
                   ["numpy %s" % np.round(occn, 5), "engine %s" % np.round(gotn, 5), "rel error %.1e" % err])

        tok_occ = [lo - log_odds_tokens(ref, stored, config, tokens[:i] + tokens[i + 1:], Y, N)
                   for i in range(len(tokens) - 1)] + [0.0]
        got = [t["occlusion"] for t in out["tokens"]]
        err = rel_err(np, got, tok_occ)
        tap.result(err <= TOL_REL, "occlusion per token", ["rel error %.1e over %d tokens" % (err, len(tokens))])

        # Gradients: x = wte[tok] + wpe, baseline wpe; midpoint rule.
        steps = 64
        t = len(tokens)
        wte = stored["wte.weight"][tokens]
        wpe = stored["wpe.weight"][:t]
        pos = t - 1

        def grad_at(h):
            logits, caches = ref.forward_cached(stored, config, tokens, h_in=h, start_layer=0)
            _, d_pre = ref.backward(caches, ref.logit_diff_d_logits(t, logits.shape[1], pos, Y, N))
            return float(logits[pos, Y] - logits[pos, N]), d_pre[0]

        fx, g1 = grad_at(wpe + wte)
        fb, _ = grad_at(wpe)
        acc = np.zeros_like(wte)
        for k in range(steps):
            acc += grad_at(wpe + (k + 0.5) / steps * wte)[1]
        ig = (wte * acc / steps).sum(axis=1)
        gxi = (wte * g1).sum(axis=1)
        got_ig = [x["integrated_gradients"] for x in out["tokens"]]
        got_gxi = [x["grad_x_input"] for x in out["tokens"]]
        e_ig, e_gxi = rel_err(np, got_ig, ig), rel_err(np, got_gxi, gxi)
        tap.result(e_ig <= TOL_REL and e_gxi <= TOL_REL, "gradient x input and integrated gradients per token",
                   ["IG rel error %.1e, grad x input rel error %.1e" % (e_ig, e_gxi)])

        comp_np = abs(ig.sum() - (fx - fb)) / abs(fx - fb)
        comp = out["integrated_gradients"]
        ok = comp_np <= TOL_COMPLETE and comp["completeness_error"] <= TOL_COMPLETE and \
            abs(comp["baseline_log_odds"] - fb) <= TOL_REL * max(1, abs(fb)) and abs(fx - fb) > 0.1
        tap.result(ok, "integrated gradients completeness at 64 steps",
                   ["F(x) %.6f F(baseline) %.6f sum IG numpy %.6f engine %.6f" % (fx, fb, ig.sum(), comp["sum"]),
                    "completeness error numpy %.4f%% engine %.4f%%" % (100 * comp_np, 100 * comp["completeness_error"])])

        att = np.stack(ref.forward(stored, config, tokens)["attention"])  # [L, H, T, T]
        L, H = att.shape[:2]
        heads = att[:, :, -1, :].reshape(-1)
        means = att.mean(axis=1)
        roll = np.eye(t)
        for layer in range(L):
            a = 0.5 * means[layer] + 0.5 * np.eye(t)
            a = a / a.sum(axis=-1, keepdims=True)
            roll = a @ roll
        a_out = out["attention"]
        errs = (rel_err(np, a_out["heads"], heads), rel_err(np, a_out["layer_mean"], means[:, -1, :].reshape(-1)),
                rel_err(np, a_out["rollout"], roll[-1]))
        tap.result(max(errs) <= TOL_REL, "attention from the decision position (heads, layer means, rollout)",
                   ["rel errors %.1e %.1e %.1e" % errs])

        # A classification head: classes named N and Y.
        cconfig = ref.make_config(n_layer=2, n_head=2, n_embd=16, n_positions=128, vocab_size=257,
                                  id2label={0: "N", 1: "Y"})
        cconfig["pad_token_id"] = 256
        cparams = ref.random_checkpoint(cconfig, seed=6, std=0.4, attn_std=0.5, fc_std=0.5, n_labels=2)
        cparams["score.weight"] = cparams["score.weight"] * 0.05   # classes not saturated
        cmodel = os.path.join(root, "cls")
        cstored = ref.write_hf_checkpoint(cmodel, cconfig, cparams, dtype="f32")
        for f in ("vocab.json", "merges.txt"):
            shutil.copyfile(os.path.join(vocab_dir, f), os.path.join(cmodel, f))
        cout = run_cli(cli, ["--model", cmodel, "--schema", schema, "--application", app, "--json", "--ig-steps", "2",
                             "--no-token-occlusion"])
        cl = ref.forward(cstored, cconfig, tokens)["class_logits"][-1]
        pr = np.exp(cl - cl.max())
        pr /= pr.sum()
        cd = cout["decision"]
        got_pr = [c["p"] for c in cd.get("classes", [])]
        ok = abs(cd["log_odds"] - (cl[1] - cl[0])) <= TOL_REL * max(1, abs(cl[1] - cl[0])) and \
            abs(cd["p_positive_word"] - pr[1]) <= 1e-5 and cd["source"] == "classification head" and \
            len(got_pr) == 2 and max(abs(got_pr[k] - pr[k]) for k in range(2)) <= 1e-5 and \
            [c["label"] for c in cd["classes"]] == ["N", "Y"]
        tap.result(ok, "GPT2ForSequenceClassification: class probabilities",
                   ["classes numpy %s; engine p(Y) %.6f log-odds %.6f" % (np.round(pr, 6), cd["p_positive_word"],
                                                                          cd["log_odds"]),
                    "gradients: %s" % cout["integrated_gradients"]["note"]])
    except Exception as e:  # any failure is a test failure, never a skip
        tap.result(False, "unexpected error", [repr(e)])
    finally:
        if not os.environ.get("GLASSBOX_REF_KEEP"):
            shutil.rmtree(root, ignore_errors=True)
    return 1 if tap.failed else 0


def log_odds_tokens(ref, stored, config, tokens, Y, N):
    lg = ref.forward(stored, config, tokens)["logits"]
    return float(lg[-1, Y] - lg[-1, N])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
