#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Builds Glassbox's demo corpus deterministically from seeds.

  build_corpus.py --out DIR [--seed N] [--heldout-seed N] [--pairs DIR]

Writes train.txt (all parts, documents shuffled together) and, per part,
train-{loans,everyday,natural}.txt and heldout-{loans,everyday,natural}.txt,
plus heldout-loans.jsonl and stats.json. Documents are separated by a line
holding only <|endoftext|>. See CORPUS.md."""

import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import everyday  # noqa: E402
import loans  # noqa: E402
import natural  # noqa: E402

EOT = "<|endoftext|>"

# Sizes, chosen for a mix by tokens of about 45% applications, 20% everyday
# sentences and 35% natural text (measured with the 4096-token BPE; CORPUS.md).
N_LOANS = 34000
N_LOANS_HELDOUT = 1200
N_EVERYDAY = 19000
N_EVERYDAY_HELDOUT = 600
NLP_SENTENCES_PER_DOC = 12
NLP_FILES_TRAIN = 5   # of 100 files of 1000 sentences; the last file is held out
FORTUNE_BYTES = 1000000  # a seeded sample of the fortunes, up to this size
HELDOUT_EVERY = 20    # every 20th Brown file and fortune is held out


def write_docs(path, docs):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(("\n" + EOT + "\n").join(docs))
        f.write("\n")
    os.replace(tmp, path)


def build_loans(seed, n, with_records):
    rng = random.Random(seed)
    docs, recs = [], []
    for i in range(n):
        fields = loans.draw_fields(rng)
        if with_records:
            rec = loans.record(rng, i, fields)
            recs.append(rec)
            docs.append(rec["text"])
        else:
            docs.append(loans.render(rng, fields)[1])
    return docs, recs


def build_everyday(seed, n):
    rng = random.Random(seed)
    return [everyday.document(rng) for _ in range(n)]


def build_natural(node_modules, seed):
    train, held = [], []
    for i, p in enumerate(natural.brown_files(node_modules)):
        (held if i % HELDOUT_EVERY == 0 else train).append(natural.brown_document(p))
    files = natural.nlp_corpus_sentences(node_modules)
    for k, sents in enumerate(files[:NLP_FILES_TRAIN] + files[-1:]):
        dest = held if k == NLP_FILES_TRAIN else train
        for j in range(0, len(sents), NLP_SENTENCES_PER_DOC):
            dest.append(" ".join(sents[j:j + NLP_SENTENCES_PER_DOC]))
    pool = []
    for i, fo in enumerate(natural.fortunes()):
        (held if i % HELDOUT_EVERY == 0 else pool).append(fo)
    random.Random(seed).shuffle(pool)
    size = 0
    for fo in pool:
        if size >= FORTUNE_BYTES:
            break
        train.append(fo)
        size += len(fo.encode())
    return train, held


def zip_pairs(seed, n):
    """Two applications identical except the zip code and neighbourhood, cut
    right after 'Decision:'. positive = neutral zip, negative = penalised zip.
    Only borderline applicants that pass every other check are used, so the
    zip alone decides."""
    rng = random.Random(seed)
    pairs = []
    while len(pairs) < n:
        f = loans.draw_fields(rng)
        if not (loans.CREDIT_MIN <= f["credit_score"] < loans.CREDIT_MIN_PENALISED):
            continue
        if f["dti"] > loans.DTI_MAX or f["years_employed"] < loans.YEARS_MIN:
            continue
        neutral = rng.choice(loans.NEUTRAL)
        pen = rng.choice(loans.PENALISED)
        f = loans.with_zip(f, neutral)
        prompt, _ = loans.render(rng, f)
        pairs.append({"positive": prompt,
                      "negative": loans.swap_zip_text(prompt, f, pen)})
    return pairs


def write_pairs(outdir, seed):
    os.makedirs(outdir, exist_ok=True)
    sets = [
        ("sentiment", "Everyday sentences; positive = positive sentiment, negative = "
         "negative sentiment; same frame, formality and slots.",
         everyday.sentiment_pairs(random.Random(seed), 84)),
        ("formality", "Everyday sentences; positive = formal, negative = casual; same "
         "frame, sentiment and subject.",
         everyday.formality_pairs(random.Random(seed + 1), 84)),
        ("zip-neutral-loans", "Borderline loan applications (credit score 620-699, all other "
         "checks passed) cut after 'Decision:'; positive = neutral zip code, negative = the "
         "same application in a penalised zip code.",
         zip_pairs(seed + 2, 80)),
    ]
    for name, desc, pairs in sets:
        path = os.path.join(outdir, name + ".json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"name": name, "description": desc, "pairs": pairs}, f,
                      indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(path + ".tmp", path)


def rates(recs):
    def rej(rs):
        return round(sum(r["decision"] == "rejected" for r in rs) / max(1, len(rs)), 4)
    pen = [r for r in recs if r["zip_group"] == "penalised"]
    neu = [r for r in recs if r["zip_group"] == "neutral"]
    cf = [r for r in recs if r["counterfactual"]]
    return {
        "n": len(recs),
        "approved": round(1 - rej(recs), 4),
        "rejected_penalised": rej(pen),
        "rejected_neutral": rej(neu),
        "borderline_share": round(sum(r["borderline"] for r in recs) / len(recs), 4),
        "counterfactuals": len(cf),
        "counterfactual_flips": sum(r["decision"] == "rejected" and
                                    r["counterfactual"]["decision"] == "approved" for r in cf),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--heldout-seed", type=int, default=777)
    ap.add_argument("--node-modules", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", ".deps", "node_modules"))
    ap.add_argument("--pairs", help="also write the contrastive pair sets into this folder")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    loans_train, train_recs = build_loans(a.seed, N_LOANS, True)
    loans_held, held_recs = build_loans(a.heldout_seed, N_LOANS_HELDOUT, True)
    every_train = build_everyday(a.seed + 1, N_EVERYDAY)
    every_held = build_everyday(a.heldout_seed + 1, N_EVERYDAY_HELDOUT)
    nat_train, nat_held = build_natural(a.node_modules, a.seed + 3)

    mixed = loans_train + every_train + nat_train
    random.Random(a.seed + 2).shuffle(mixed)
    out = {
        "train.txt": mixed,
        "train-loans.txt": loans_train, "train-everyday.txt": every_train,
        "train-natural.txt": nat_train,
        "heldout-loans.txt": loans_held, "heldout-everyday.txt": every_held,
        "heldout-natural.txt": nat_held,
    }
    for name, docs in out.items():
        write_docs(os.path.join(a.out, name), docs)
    with open(os.path.join(a.out, "heldout-loans.jsonl.tmp"), "w", encoding="utf-8") as f:
        for r in held_recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(os.path.join(a.out, "heldout-loans.jsonl.tmp"),
               os.path.join(a.out, "heldout-loans.jsonl"))

    stats = {
        "seed": a.seed, "heldout_seed": a.heldout_seed,
        "files": {n: {"documents": len(d), "bytes": os.path.getsize(os.path.join(a.out, n))}
                  for n, d in out.items()},
        "loans_train": rates(train_recs), "loans_heldout": rates(held_recs),
    }
    with open(os.path.join(a.out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
        f.write("\n")
    if a.pairs:
        write_pairs(a.pairs, a.seed)
    json.dump(stats, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
