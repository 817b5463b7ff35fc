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
# 3. writes the F16 model into data/models/loan-officer and evaluates it
#    (tools/demo-model/evaluate.py).
# Interrupted? Run it again: training resumes from WORKDIR/run/checkpoint.
# STEPS (default 2600) and THREADS (default: all cores) may be set.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-$root/build/demo-model}"
steps="${STEPS:-2600}"
cli="$root/build/app/glassbox-cli"
dest="$root/data/models/loan-officer"

ninja -C "$root/build" app/glassbox-cli >/dev/null
[ -f "$work/corpus/tokenizer/vocab.json" ] || "$root/tools/corpus/build.sh" "$work/corpus" 4096

resume=()
[ -f "$work/run/checkpoint/trainer_state.json" ] && resume=(--resume)
"$cli" train "${resume[@]}" \
  --corpus "$work/corpus/train.txt" --heldout "$work/corpus/heldout-loans.txt" \
  --tokenizer "$work/corpus/tokenizer" --output "$work/run" \
  --layers 6 --heads 6 --embd 192 --context 256 --seq-len 256 --batch 16 \
  --steps "$steps" --warmup 100 --lr 1.5e-3 --min-lr 1.5e-4 --weight-decay 0.1 --clip 1 \
  --seed 1 --emphasis "Decision:=20" --checkpoint-every 200 --eval-every 200 --log-every 25 \
  --dtype f16 ${THREADS:+--threads "$THREADS"}

mkdir -p "$dest"
cp "$work/run/config.json" "$work/run/model.safetensors" "$work/run/vocab.json" "$work/run/merges.txt" "$dest/"
echo "demo model: $dest"
