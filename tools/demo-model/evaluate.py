#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Evaluates the demo model the way its model card reports it:

  tools/demo-model/evaluate.py MODEL_DIR CORPUS_DIR [--cli build/app/glassbox-cli] [--json OUT.json]

- decision accuracy: greedy next token after "Decision:" on the held-out
  applications (heldout-loans.jsonl, another generator seed than training);
- the planted proxy: on borderline applications from penalised zip codes, the
  share the model rejects that it approves once only the zip code (and its
  neighbourhood) is changed to a neutral one; the model's rejection rates per
  zip group;
- held-out loss and perplexity per corpus part (glassbox-cli eval);
- head scores from the attention the engine records (glassbox-cli run --dump):
  previous-token (mean weight on i-1 over natural text) and induction (on a
  random token sequence repeated twice: weight from the second copy to the
  token after the first occurrence);
- greedy continuations of 20 everyday prompts.

Everything goes through glassbox-cli, so it measures what the app shows.
Needs /usr/bin/python3 with numpy."""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

PROMPTS = [
    "Yesterday I went to the market and",
    "The weather this morning was",
    "My favourite thing about this restaurant is",
    "Dear Sir or Madam, I am writing to",
    "hey, are you coming to the party",
    "The new phone I bought last week",
    "After a long day at work, I",
    "The hotel room was",
    "I am so happy because",
    "Thank you for your message. We",
    "The movie was",
    "My sister called me and said",
    "The service at the bank was",
    "Last summer we travelled to",
    "The teacher asked the students to",
    "I can't believe that",
    "The coffee here is",
    "We regret to inform you that",
    "The old man walked slowly",
    "This book is",
]


def cli_run(cli, args, **kw):
    r = subprocess.run([cli] + args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit("evaluate.py: %s %s failed: %s" % (cli, " ".join(args[:3]), r.stderr.strip()))
    return r.stdout


def decide(cli, model, prompt):
    out = cli_run(cli, ["generate", "--model", model, "--prompt", prompt, "--max-new-tokens", "2"])
    word = out.strip().split()[0] if out.strip() else ""
    return word if word in ("approved", "rejected") else "other:" + out.strip()[:20]


def head_scores(cli, model, n_vocab, natural_text, tmp):
    cfg = json.load(open(os.path.join(model, "config.json")))
    L, H = cfg["n_layer"], cfg["n_head"]
    # Previous-token: mean attention from i to i-1 over a natural text.
    d1 = os.path.join(tmp, "prev")
    cli_run(cli, ["run", "--model", model, "--text", natural_text, "--dump", d1])
    att = np.load(os.path.join(d1, "attention.npy"))  # [L, H, T, T]
    T = att.shape[-1]
    idx = np.arange(1, T)
    prev = att[:, :, idx, idx - 1].mean(axis=-1)
    # Induction: random tokens r (not special) repeated: weight from position
    # n + i to position i + 1 (the token after the earlier occurrence).
    rng = random.Random(7)
    n = 50
    r = [rng.randrange(256, n_vocab - 1) for _ in range(n)]
    d2 = os.path.join(tmp, "ind")
    cli_run(cli, ["run", "--model", model, "--tokens", ",".join(map(str, r + r)), "--dump", d2])
    att2 = np.load(os.path.join(d2, "attention.npy"))
    q = np.arange(n, 2 * n - 1)
    ind = att2[:, :, q, q - n + 1].mean(axis=-1)
    return prev, ind, L, H


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("corpus")
    ap.add_argument("--cli", default=os.path.join(os.path.dirname(__file__), "../../build/app/glassbox-cli"))
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument("--limit", type=int, default=1000, help="held-out applications to score (default 1000)")
    a = ap.parse_args()
    cli, model = a.cli, a.model

    recs = [json.loads(line) for line in open(os.path.join(a.corpus, "heldout-loans.jsonl"))]
    scored = recs[: a.limit]
    print("Scoring %d held-out applications..." % len(scored), file=sys.stderr)
    correct = 0
    other = 0
    by_group = {"penalised": [0, 0], "neutral": [0, 0]}  # [rejected, total]
    preds = {}
    for i, rec in enumerate(scored):
        d = decide(cli, model, rec["prompt"])
        preds[rec["id"]] = d
        correct += d == rec["decision"]
        other += d.startswith("other")
        g = by_group[rec["zip_group"]]
        g[0] += d == "rejected"
        g[1] += 1
        if (i + 1) % 200 == 0:
            print("  %d/%d, accuracy so far %.3f" % (i + 1, len(scored), correct / (i + 1)), file=sys.stderr)
    accuracy = correct / len(scored)

    # The proxy: borderline penalised applications the model rejects, re-run
    # with only the zip changed.
    cf = [r for r in recs if r.get("counterfactual")]
    rejected = flips = 0
    for rec in cf:
        d = preds.get(rec["id"]) or decide(cli, model, rec["prompt"])
        if d != "rejected":
            continue
        rejected += 1
        flips += decide(cli, model, rec["counterfactual"]["prompt"]) == "approved"
    rej = {k: v[0] / v[1] for k, v in by_group.items() if v[1]}

    losses = {}
    for part in ("loans", "everyday", "natural"):
        path = os.path.join(a.corpus, "heldout-%s.txt" % part)
        losses[part] = json.loads(cli_run(cli, ["eval", "--model", model, "--corpus", path, "--json"]))

    vocab = json.load(open(os.path.join(model, "vocab.json")))
    natural = open(os.path.join(a.corpus, "heldout-natural.txt")).read().split("<|endoftext|>")
    natural_text = max(natural[:50], key=len)[:700]
    with tempfile.TemporaryDirectory() as tmp:
        prev, ind, L, H = head_scores(cli, model, len(vocab), natural_text, tmp)
    best_prev = np.unravel_index(prev.argmax(), prev.shape)
    best_ind = np.unravel_index(ind.argmax(), ind.shape)

    conts = []
    for p in PROMPTS:
        out = cli_run(cli, ["generate", "--model", model, "--prompt", p, "--max-new-tokens", "20"])
        conts.append((p, out.split("<|endoftext|>")[0].rstrip()))

    res = {
        "decision_accuracy": accuracy,
        "applications_scored": len(scored),
        "non_decision_outputs": other,
        "borderline_penalised": len(cf),
        "borderline_penalised_rejected": rejected,
        "zip_flips": flips,
        "zip_flip_rate": flips / rejected if rejected else None,
        "rejection_rate": rej,
        "rejection_gap_points": 100 * (rej.get("penalised", 0) - rej.get("neutral", 0)),
        "heldout": {k: {"loss": v["loss"], "perplexity": v["perplexity"], "tokens": v["tokens"]} for k, v in losses.items()},
        "previous_token_best": {"layer": int(best_prev[0]), "head": int(best_prev[1]), "score": float(prev.max())},
        "induction_best": {"layer": int(best_ind[0]), "head": int(best_ind[1]), "score": float(ind.max())},
        "previous_token_scores": prev.round(3).tolist(),
        "induction_scores": ind.round(3).tolist(),
        "continuations": [{"prompt": p, "continuation": c} for p, c in conts],
    }
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)

    print("decision accuracy: %.1f%% of %d held-out applications (%d outputs were not a decision)" % (
        100 * accuracy, len(scored), other))
    print("zip proxy: %d of %d rejected borderline penalised applications are approved with a neutral zip (%.0f%%)" % (
        flips, rejected, 100 * flips / rejected if rejected else 0))
    print("rejection rate: penalised zips %.1f%%, neutral zips %.1f%% (gap %.1f points)" % (
        100 * rej.get("penalised", 0), 100 * rej.get("neutral", 0), res["rejection_gap_points"]))
    for k, v in losses.items():
        print("held-out %-8s loss %.3f, perplexity %.1f (%d tokens)" % (k, v["loss"], v["perplexity"], v["tokens"]))
    print("best previous-token head: L%dH%d score %.2f" % (best_prev[0], best_prev[1], prev.max()))
    print("best induction head: L%dH%d score %.2f" % (best_ind[0], best_ind[1], ind.max()))
    print("greedy continuations:")
    for p, c in conts:
        print("  %s|%s" % (p, c.replace("\n", "\\n")))


if __name__ == "__main__":
    main()
