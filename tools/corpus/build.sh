#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Builds the demo corpus and its tokenizer, deterministically:
#   tools/corpus/build.sh OUTDIR [VOCAB_SIZE]
# OUTDIR gets train*.txt, heldout*.txt, heldout-loans.jsonl, stats.json,
# tokenizer/{vocab.json,merges.txt} (VOCAB_SIZE ids, default 4096) and
# tokens.json (tokens per part). Sources are read where tools/setup.sh
# installed them (.deps/node_modules, /usr/share/games/fortunes); seeds are
# the defaults of build_corpus.py. See tools/corpus/CORPUS.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:?usage: tools/corpus/build.sh OUTDIR [VOCAB_SIZE]}"
vocab="${2:-4096}"
cli="${GLASSBOX_CLI:-$root/build/app/glassbox-cli}"

[ -x "$cli" ] || ninja -C "$root/build" app/glassbox-cli
/usr/bin/python3 "$here/build_corpus.py" --out "$out" >/dev/null
"$cli" train-tokenizer --corpus "$out/train.txt" --vocab-size "$vocab" --output "$out/tokenizer"
/usr/bin/python3 "$here/measure.py" "$out" "$out/tokenizer" --cli "$cli" > "$out/tokens.json"
echo "corpus: $out (stats.json, tokens.json)"
