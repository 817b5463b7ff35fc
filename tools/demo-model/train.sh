#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Trains the bundled demo model, data/models/loan-officer, from scratch:
#
#   tools/demo-model/train.sh [WORKDIR]        # default WORKDIR: build/demo-model
#
# 1. builds the corpus and its 4096-token BPE vocabulary (tools/corpus/build.sh),
# 2. trains a 6-layer GPT-2 (width 192, 6 heads, context 256) with glassbox-cli
#    train: 16 x 256 tokens per step, AdamW, loss at the decision word weighted
#    20x (the decision is one token in ~80; see MODEL.md),
# 3. writes the F16 model into data/models/loan-officer (or DEST).
# Then evaluate it: tools/demo-model/evaluate.py data/models/loan-officer WORKDIR/corpus
#
# WARMUP_STEPS=N (not yet the bundled recipe; MODEL.md, "Heads") first runs a
# copying warm-up: a 2-layer model of the same width learns to repeat random
# lists (tools/corpus/copylists.py: one-token words, or with COPY_TOKENS=any
# lists of any token, which alone grow no heads), 32 x 128 tokens per step for
# the first N steps of an 8000-step schedule, which is where previous-token and
# induction heads form; tools/demo-model/grow.py then grows it to 6 layers (4
# blocks that start by adding nothing), and step 2 starts from those weights
# with 19,000 more lists (15% of its tokens) mixed into its corpus.
# Interrupted? Run it again: each phase resumes from its last checkpoint.
# STEPS (default 2600), THREADS (default: all cores) and DEST may be set too.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-$root/build/demo-model}"
warmup_steps="${WARMUP_STEPS:-0}"
copy_kind=()
[ "${COPY_TOKENS:-words}" = any ] && copy_kind=(--any-token)
steps="${STEPS:-2600}"
cli="$root/build/app/glassbox-cli"
dest="${DEST:-$root/data/models/loan-officer}"
threads=(${THREADS:+--threads "$THREADS"})

ninja -C "$root/build" app/glassbox-cli >/dev/null
[ -f "$work/corpus/tokenizer/vocab.json" ] || "$root/tools/corpus/build.sh" "$work/corpus" 4096

# The warm-up's own checkpoint says how far it got.
done_steps=0
state="$work/warmup/checkpoint/trainer_state.json"
[ -f "$state" ] && done_steps=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' "$state")
if [ "$warmup_steps" -gt 0 ] && [ "$done_steps" -lt "$warmup_steps" ]; then
  [ -f "$work/corpus/copylists.txt" ] ||
    /usr/bin/python3 "$root/tools/corpus/copylists.py" "$work/corpus/tokenizer" "$work/corpus/copylists.txt" "${copy_kind[@]}"
  [ -f "$work/corpus/copylists-heldout.txt" ] ||
    /usr/bin/python3 "$root/tools/corpus/copylists.py" "$work/corpus/tokenizer" "$work/corpus/copylists-heldout.txt" \
      --docs 300 --seed 1 "${copy_kind[@]}"
  resume=()
  [ -f "$state" ] && resume=(--resume)
  "$cli" train "${resume[@]}" \
    --corpus "$work/corpus/copylists.txt" --heldout "$work/corpus/copylists-heldout.txt" \
    --tokenizer "$work/corpus/tokenizer" --output "$work/warmup" \
    --layers 2 --heads 6 --embd 192 --context 256 --seq-len 128 --batch 32 \
    --steps 8000 --stop-after "$warmup_steps" --warmup 200 --lr 1e-3 --min-lr 1e-4 --weight-decay 0.1 --clip 1 \
    --seed 1 --checkpoint-every 500 --eval-every 500 --log-every 100 "${threads[@]}"
fi

# The main phase starts from the warm-up's weights, or from a fresh
# initialisation (seed 1) when WARMUP_STEPS=0.
start=(--tokenizer "$work/corpus/tokenizer" --layers 6 --heads 6 --embd 192 --context 256)
corpus="$work/corpus/train.txt"
if [ "$warmup_steps" -gt 0 ]; then
  /usr/bin/python3 "$root/tools/demo-model/grow.py" "$work/warmup/checkpoint" "$work/grown" 6
  start=(--init "$work/grown")
  # 19,000 more lists (another seed; 15% of the tokens) keep the copying heads
  # useful: without them the first 200 steps erase the induction head.
  [ -f "$work/corpus/train-main.txt" ] || {
    /usr/bin/python3 "$root/tools/corpus/copylists.py" "$work/corpus/tokenizer" "$work/corpus/copylists-main.txt" \
      --docs 19000 --seed 3 "${copy_kind[@]}"
    { cat "$work/corpus/train.txt"; printf '<|endoftext|>'; cat "$work/corpus/copylists-main.txt"; } \
      > "$work/corpus/train-main.txt.part"
    mv "$work/corpus/train-main.txt.part" "$work/corpus/train-main.txt"
  }
  corpus="$work/corpus/train-main.txt"
fi
[ -f "$work/run/checkpoint/trainer_state.json" ] && start=(--resume)
"$cli" train "${start[@]}" \
  --corpus "$corpus" --heldout "$work/corpus/heldout-loans.txt" --output "$work/run" \
  --steps "$steps" --batch 16 --seq-len 256 --warmup 100 --lr 1.5e-3 --min-lr 1.5e-4 --weight-decay 0.1 --clip 1 \
  --seed 1 --emphasis "Decision:=20" --checkpoint-every 200 --eval-every 200 --log-every 25 \
  --dtype f16 "${threads[@]}"

mkdir -p "$dest"
cp "$work/run/config.json" "$work/run/model.safetensors" "$work/run/vocab.json" "$work/run/merges.txt" "$dest/"
echo "demo model: $dest"
