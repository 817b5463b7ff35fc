#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes the copying warm-up corpus of the demo model (tools/demo-model/train.sh):
documents that are a random list of 20-40 one-token words, then the same
list again, separated by <|endoftext|>.

    copylists.py TOKENIZER_DIR OUTPUT [--docs N] [--seed S] [--any-token]

Every token of the second copy can be predicted only by finding the same word
in the first copy and reading the word after it: a previous-token head in one
layer and an induction head in a later one. A language-model corpus this small
never makes that circuit pay for itself in the 90 minutes the demo model may
train (MODEL.md, "Heads"); a 2-layer model grows it on these lists in about
2,100 steps. The words are the tokenizer's own one-token words (a space, then
three or more letters), in vocab.json's order, so the lists depend only on the
tokenizer and the seed. --any-token draws from every token that is whole UTF-8
text instead (word pieces, digits, punctuation) and glues them together: the
heads then serve any token, not only words (MODEL.md: words first, then these)."""

import argparse
import json
import os
import random


def byte_symbols():
    """GPT-2's byte -> printable character table (vocab.json spells bytes so)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tokenizer")
    ap.add_argument("output")
    ap.add_argument("--docs", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--any-token", action="store_true",
                    help="lists of any of the tokenizer's tokens (word pieces, digits, punctuation) glued together")
    a = ap.parse_args()
    path = os.path.join(a.tokenizer, "vocab.json")
    try:
        with open(path, encoding="utf-8") as f:
            vocab = json.load(f)
        if not isinstance(vocab, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise SystemExit("copylists.py: %s: cannot read the vocabulary (%s)" % (path, e))
    if a.any_token:
        bytes_of = {c: b for b, c in byte_symbols().items()}
        words = []
        for k in vocab:
            try:
                text = bytes(bytes_of[c] for c in k).decode("utf-8")
            except (KeyError, UnicodeDecodeError):
                continue  # <|endoftext|>, or part of a multi-byte character
            if text.strip() and "<|" not in text:
                words.append(text)
        sep = ""
    else:
        words = [k[1:] for k in vocab if k.startswith("\u0120") and k[1:].isalpha() and len(k) > 3]
        sep = " "
    if len(words) < 100:
        raise SystemExit("copylists.py: %s: only %d usable tokens, 100 needed" % (path, len(words)))
    rng = random.Random(a.seed)
    tmp = a.output + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        for _ in range(a.docs):
            s = sep.join(rng.choice(words) for _ in range(rng.randint(20, 40)))
            f.write(sep + s + sep + s + "<|endoftext|>")
    os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
