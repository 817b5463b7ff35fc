#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Trains the bundled demo model, data/models/loan-officer, from scratch:
#
#   tools/demo-model/train.sh [WORKDIR]        # default WORKDIR: build/demo-model
#
# 1. builds the corpus and its 4096-token BPE vocabulary (tools/corpus/build.sh);
# 2. copying warm-up, where the previous-token and induction heads form
#    (MODEL.md, "Heads"): a 2-layer model of the final width learns to repeat
#    random lists (tools/corpus/copylists.py), 32 x 128 tokens per step:
#    a. lists of one-token words, the first 3000 steps of an 8000-step schedule
#       (the loss leaves its plateau near step 2100);
#    b. 1500 steps on lists of any token (word pieces, digits, punctuation), so
#       the heads serve every token, not only words;
# 3. tools/demo-model/grow.py grows it to 6 layers (4 new blocks that start by
#    adding nothing);
# 4. trains the 6-layer model (width 192, 6 heads, context 256) on the loan
#    corpus with 19,000 more any-token lists mixed in (15% of the tokens; without
#    them the first 200 steps erase the induction head): 16 x 256 tokens per
#    step, AdamW, loss at the decision word weighted 20x (the decision is one
#    token in ~80; see MODEL.md);
# 5. writes the F16 model into data/models/loan-officer (or DEST).
# Then evaluate it: tools/demo-model/evaluate.py data/models/loan-officer WORKDIR/corpus
# Interrupted? Run it again: each phase resumes from its last checkpoint.
# STEPS (main phase, default 2600), THREADS (default: all cores) and DEST may be set.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-$root/build/demo-model}"
steps="${STEPS:-2600}"
cli="$root/build/app/glassbox-cli"
dest="${DEST:-$root/data/models/loan-officer}"
threads=(${THREADS:+--threads "$THREADS"})
py=/usr/bin/python3
c="$work/corpus"

ninja -C "$root/build" app/glassbox-cli >/dev/null
[ -f "$c/tokenizer/vocab.json" ] || "$root/tools/corpus/build.sh" "$c" 4096

# copylists OUTPUT ARGS...: writes the lists once, atomically.
copylists() {
  local out="$1"; shift
  [ -f "$out" ] && return 0
  "$py" "$root/tools/corpus/copylists.py" "$c/tokenizer" "$out.part" "$@"
  mv "$out.part" "$out"
}
# step_of DIR: the step of DIR's checkpoint, 0 when there is none.
step_of() {
  local s="$1/checkpoint/trainer_state.json"
  if [ -f "$s" ]; then "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' "$s"; else echo 0; fi
}

# 2a. One-token words.
copylists "$c/copylists.txt"
copylists "$c/copylists-heldout.txt" --docs 300 --seed 1
if [ "$(step_of "$work/words")" -lt 3000 ]; then
  start=(--tokenizer "$c/tokenizer" --layers 2 --heads 6 --embd 192 --context 256)
  [ -f "$work/words/checkpoint/trainer_state.json" ] && start=(--resume)
  "$cli" train "${start[@]}" \
    --corpus "$c/copylists.txt" --heldout "$c/copylists-heldout.txt" --output "$work/words" \
    --seq-len 128 --batch 32 --steps 8000 --stop-after 3000 --warmup 200 --lr 1e-3 --min-lr 1e-4 \
    --weight-decay 0.1 --clip 1 --seed 1 --checkpoint-every 500 --eval-every 500 --log-every 100 "${threads[@]}"
fi

# 2b. Any token, from the word model's weights (a fresh optimiser and schedule).
copylists "$c/copylists-any.txt" --any-token
copylists "$c/copylists-any-heldout.txt" --any-token --docs 300 --seed 1
if [ ! -f "$work/any/model.safetensors" ]; then
  start=(--init "$work/words/checkpoint")
  [ -f "$work/any/checkpoint/trainer_state.json" ] && start=(--resume)
  "$cli" train "${start[@]}" \
    --corpus "$c/copylists-any.txt" --heldout "$c/copylists-any-heldout.txt" --output "$work/any" \
    --seq-len 128 --batch 32 --steps 1500 --warmup 100 --lr 1e-3 --min-lr 1e-4 \
    --weight-decay 0.1 --clip 1 --seed 1 --checkpoint-every 500 --eval-every 500 --log-every 100 "${threads[@]}"
fi

# 3. Six layers.
"$py" "$root/tools/demo-model/grow.py" "$work/any" "$work/grown" 6

# 4. The loan officer, with lists still mixed in.
copylists "$c/copylists-main-any.txt" --any-token --docs 19000 --seed 3
[ -f "$c/train-main.txt" ] || {
  { cat "$c/train.txt"; printf '<|endoftext|>'; cat "$c/copylists-main-any.txt"; } > "$c/train-main.txt.part"
  mv "$c/train-main.txt.part" "$c/train-main.txt"
}
start=(--init "$work/grown")
[ -f "$work/run/checkpoint/trainer_state.json" ] && start=(--resume)
"$cli" train "${start[@]}" \
  --corpus "$c/train-main.txt" --heldout "$c/heldout-loans.txt" --output "$work/run" \
  --steps "$steps" --batch 16 --seq-len 256 --warmup 100 --lr 1.5e-3 --min-lr 1.5e-4 --weight-decay 0.1 --clip 1 \
  --seed 1 --emphasis "Decision:=20" --checkpoint-every 200 --eval-every 200 --log-every 25 \
  --dtype f16 "${threads[@]}"

mkdir -p "$dest"
cp "$work/run/config.json" "$work/run/model.safetensors" "$work/run/vocab.json" "$work/run/merges.txt" "$dest/"
echo "demo model: $dest"
