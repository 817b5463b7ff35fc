#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Counts tokens per corpus part with a trained tokenizer, through the CLI.

  measure.py CORPUS_DIR TOKENIZER_DIR [--cli build/app/glassbox-cli]

Prints JSON: bytes, documents, tokens and bytes/token per file, the mix of
train.txt by tokens, and tokens per held-out application."""

import argparse
import json
import os
import subprocess
import sys
import tempfile

PARTS = ["train-loans.txt", "train-everyday.txt", "train-natural.txt",
         "heldout-loans.txt", "heldout-everyday.txt", "heldout-natural.txt"]
EOT = "\n<|endoftext|>\n"


def count_tokens(cli, tok, docs):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(docs, f)
        path = f.name
    try:
        out = subprocess.run([cli, "tokenize", "--model", tok, "--batch", path],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    return [len(json.loads(line)["ids"]) for line in out.splitlines()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("tokenizer")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--cli", default=os.path.join(here, "..", "..", "build", "app", "glassbox-cli"))
    a = ap.parse_args()
    res = {}
    for name in PARTS:
        with open(os.path.join(a.corpus, name), encoding="utf-8") as f:
            text = f.read()
        docs = text.rstrip("\n").split(EOT)
        n = count_tokens(a.cli, a.tokenizer, docs)
        # + one <|endoftext|> token between documents
        tokens = sum(n) + len(docs) - 1
        res[name] = {"bytes": len(text.encode()), "documents": len(docs), "tokens": tokens,
                     "bytes_per_token": round(len(text.encode()) / tokens, 3),
                     "tokens_per_document": round(sum(n) / len(docs), 1),
                     "max_tokens_per_document": max(n)}
    train = sum(res[p]["tokens"] for p in PARTS[:3])
    res["mix_by_tokens"] = {p: round(res[p]["tokens"] / train, 3) for p in PARTS[:3]}
    res["train_tokens"] = train
    json.dump(res, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
