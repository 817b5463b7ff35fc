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
#    corpus with 19,000 more any-token lists mixed in (16% of the tokens; without
#    them the first 200 steps erase the induction head): 16 x 256 tokens per
#    step, AdamW, loss at the decision word weighted 20x (the decision is one
#    token in ~80; see MODEL.md);
# 5. copies the F16 model into data/models/loan-officer (or DEST).
# Then evaluate it: tools/demo-model/evaluate.py data/models/loan-officer WORKDIR/corpus
# Interrupted? Run it again: each phase resumes from its last checkpoint, and a
# finished phase is skipped (a finished run is only copied to DEST again).
# Files in WORKDIR are reused by name: use a fresh WORKDIR for another recipe.
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

# copylists OUTPUT ARGS...: writes the lists once (copylists.py writes atomically).
copylists() {
  local out="$1"; shift
  [ -f "$out" ] || "$py" "$root/tools/corpus/copylists.py" "$c/tokenizer" "$out" "$@"
}
# ckpt DIR: DIR's complete checkpoint folder, as glassbox-cli train --resume
# finds it (a save interrupted between its two renames leaves .new or .old);
# nothing when there is none.
ckpt() {
  local n
  for n in checkpoint checkpoint.new checkpoint.old; do
    if [ -f "$1/$n/trainer_state.json" ] && [ -f "$1/$n/optimizer.safetensors" ]; then
      echo "$1/$n"; return 0
    fi
  done
}
# step_of DIR: the step of DIR's checkpoint, 0 when there is none.
step_of() {
  local d
  d="$(ckpt "$1")"
  if [ -n "$d" ]; then "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' "$d/trainer_state.json"
  else echo 0; fi
}
# start_args DIR ARGS...: --resume when DIR has a checkpoint, else ARGS (one per line).
start_args() {
  if [ -n "$(ckpt "$1")" ]; then echo --resume; else shift; printf '%s\n' "$@"; fi
}

# 2a. One-token words.
copylists "$c/copylists.txt"
copylists "$c/copylists-heldout.txt" --docs 300 --seed 1
s="$(step_of "$work/words")"
if [ "$s" -lt 3000 ]; then
  mapfile -t start < <(start_args "$work/words" --tokenizer "$c/tokenizer" --layers 2 --heads 6 --embd 192 --context 256)
  "$cli" train "${start[@]}" \
    --corpus "$c/copylists.txt" --heldout "$c/copylists-heldout.txt" --output "$work/words" \
    --seq-len 128 --batch 32 --steps 8000 --stop-after 3000 --warmup 200 --lr 1e-3 --min-lr 1e-4 \
    --weight-decay 0.1 --clip 1 --seed 1 --checkpoint-every 500 --eval-every 500 --log-every 100 "${threads[@]}"
fi

# 2b. Any token, from the word model's weights (a fresh optimiser and schedule).
copylists "$c/copylists-any.txt" --any-token
copylists "$c/copylists-any-heldout.txt" --any-token --docs 300 --seed 1
s="$(step_of "$work/any")"
if [ "$s" -lt 1500 ]; then
  mapfile -t start < <(start_args "$work/any" --init "$(ckpt "$work/words")")
  "$cli" train "${start[@]}" \
    --corpus "$c/copylists-any.txt" --heldout "$c/copylists-any-heldout.txt" --output "$work/any" \
    --seq-len 128 --batch 32 --steps 1500 --warmup 100 --lr 1e-3 --min-lr 1e-4 \
    --weight-decay 0.1 --clip 1 --seed 1 --checkpoint-every 500 --eval-every 500 --log-every 100 "${threads[@]}"
fi

# 3. Six layers, from the final checkpoint (the same weights as the model).
"$py" "$root/tools/demo-model/grow.py" "$(ckpt "$work/any")" "$work/grown" 6

# 4. The loan officer, with lists still mixed in.
copylists "$c/copylists-main-any.txt" --any-token --docs 19000 --seed 3
[ -f "$c/train-main-any.txt" ] || {
  { cat "$c/train.txt"; printf '<|endoftext|>'; cat "$c/copylists-main-any.txt"; } > "$c/train-main-any.txt.part"
  mv "$c/train-main-any.txt.part" "$c/train-main-any.txt"
}
s="$(step_of "$work/run")"
if [ "$s" -lt "$steps" ] || [ ! -f "$work/run/model.safetensors" ]; then
  mapfile -t start < <(start_args "$work/run" --init "$work/grown")
  "$cli" train "${start[@]}" \
    --corpus "$c/train-main-any.txt" --heldout "$c/heldout-loans.txt" --output "$work/run" \
    --steps "$steps" --batch 16 --seq-len 256 --warmup 100 --lr 1.5e-3 --min-lr 1.5e-4 --weight-decay 0.1 --clip 1 \
    --seed 1 --emphasis "Decision:=20" --checkpoint-every 200 --eval-every 200 --log-every 25 \
    --dtype f16 "${threads[@]}"
fi

mkdir -p "$dest"
cp "$work/run/config.json" "$work/run/model.safetensors" "$work/run/vocab.json" "$work/run/merges.txt" "$dest/"
echo "demo model: $dest"
