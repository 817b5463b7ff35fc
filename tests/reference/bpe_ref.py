#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""An independent, deliberately naive byte-level BPE trainer, and a test that
`glassbox-cli train-tokenizer` makes exactly the same merges and vocabulary.

  bpe_ref.py GLASSBOX_CLI

The reference recounts every pair from scratch at every step (no incremental
bookkeeping, no heap), so it shares nothing with the engine's trainer but the
rules it must follow:
- split the text at every literal <|endoftext|>, which never merges;
- pre-tokenise with GPT-2's pattern (here with Python's re: the test corpus
  keeps to characters where [^\\W\\d_] is exactly \\p{L} and \\d is \\p{N});
- merge the most frequent adjacent pair; ties go to the smallest
  (left bytes, right bytes), comparing raw bytes;
- a merge that makes an existing symbol reuses its id; stop at the vocabulary
  size (bytes + new symbols + <|endoftext|>) or when no pair is left.
Prints TAP."""

import json
import os
import random
import re
import subprocess
import sys
import tempfile

EOT = "<|endoftext|>"
PRETOKEN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return bs, [chr(c) for c in cs]


def train(text, vocab_size):
    order, chars = bytes_to_unicode()
    counts = {}
    for piece in text.split(EOT):
        for m in PRETOKEN.finditer(piece):
            w = m.group(0).encode("utf-8")
            counts[w] = counts.get(w, 0) + 1
    words = {tuple(bytes([b]) for b in w): c for w, c in counts.items()}
    vocab = [bytes([b]) for b in order]
    known = set(vocab)
    merges = []
    while len(vocab) < vocab_size - 1:
        pairs = {}
        for syms, c in words.items():
            for a, b in zip(syms, syms[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        joined = best[0] + best[1]
        if joined not in known:
            known.add(joined)
            vocab.append(joined)
        new_words = {}
        for syms, c in words.items():
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and (syms[i], syms[i + 1]) == best:
                    out.append(joined)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + c
        words = new_words
    byte_char = dict(zip(order, chars))

    def spell(b):
        return "".join(byte_char[x] for x in b)
    vocab_json = {spell(t): i for i, t in enumerate(vocab)}
    vocab_json[EOT] = len(vocab)
    merges_txt = "#version: 0.2\n" + "".join("%s %s\n" % (spell(a), spell(b)) for a, b in merges)
    return vocab_json, merges_txt


def corpus(seed, n_docs):
    """Varied small text: names that recur, numbers, punctuation runs,
    contractions, accented letters, CJK, emoji, odd spacing."""
    rng = random.Random(seed)
    names = ["Anna", "Bob", "Chloé", "Dmitri", "Émile", "Zoë", "Kenji", "Ünal"]
    words = ("the a of to and in loan credit score approved rejected zip code apple banana "
             "naïve café über straße 東京 は 晴れ 🙂 🚀 x1 y2 under_score hello-world").split()
    docs = []
    for _ in range(n_docs):
        name = rng.choice(names)
        parts = []
        for _ in range(rng.randint(3, 12)):
            k = rng.random()
            if k < 0.5:
                parts.append(" ".join(rng.choice(words) for _ in range(rng.randint(2, 8))))
            elif k < 0.7:
                parts.append("%s's score is %d, isn't it?" % (name, rng.randint(300, 850)))
            elif k < 0.8:
                parts.append("%s said: \"I'll pay $%d,%03d!!\"" % (name, rng.randint(1, 99), rng.randint(0, 999)))
            elif k < 0.9:
                parts.append("  \t%s   we've   %s\n\n" % (name, rng.choice(words)))
            else:
                parts.append("... ;-) (%d%%) [%s]" % (rng.randint(0, 100), name))
        docs.append(" ".join(parts))
    return ("\n" + EOT + "\n").join(docs) + "\n"


def two_letter_words(seed):
    """Words over {a, b} make the same string by two routes (aa+b, a+ab),
    which exercises reusing an existing id."""
    rng = random.Random(seed)
    return " ".join("".join(rng.choice("ab") for _ in range(rng.randint(2, 9)))
                    for _ in range(3000))


def run_case(cli, n, text, vocab_size):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "corpus.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        out = os.path.join(d, "tok")
        r = subprocess.run([cli, "train-tokenizer", "--quiet", "--corpus", path,
                            "--vocab-size", str(vocab_size), "--output", out],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("not ok %d - vocab %d: cli failed: %s" % (n, vocab_size, r.stderr.strip()))
            return False
        with open(os.path.join(out, "merges.txt"), encoding="utf-8") as f:
            got_merges = f.read()
        with open(os.path.join(out, "vocab.json"), encoding="utf-8") as f:
            got_vocab_text = f.read()
    want_vocab, want_merges = train(text, vocab_size)
    got_vocab = json.loads(got_vocab_text)
    ok = got_merges == want_merges and got_vocab == want_vocab and \
        list(got_vocab.values()) == list(range(len(got_vocab)))
    if not ok:
        g, w = got_merges.splitlines(), want_merges.splitlines()
        first = next((i for i, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
        print("# merges: engine %d, reference %d; first difference at line %d: %r vs %r" %
              (len(g), len(w), first, g[first] if first < len(g) else None,
               w[first] if first < len(w) else None))
    print("%s %d - vocab %d: %d merges, %d ids identical to the reference" %
          ("ok" if ok else "not ok", n, vocab_size, want_merges.count("\n") - 1, len(want_vocab)))
    return ok


def main():
    cli = sys.argv[1]
    cases = [(corpus(1, 60), 300), (corpus(2, 120), 700), (corpus(3, 40), 2000),
             ("aaaaaaaa aaaa abab ab ba " * 20, 280), (two_letter_words(4), 400)]
    print("1..%d" % len(cases))
    ok = all([run_case(cli, i + 1, t, v) for i, (t, v) in enumerate(cases)])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
