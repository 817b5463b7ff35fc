#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# README command 1: set up, build, and start Glassbox on the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cli=build/app/glassbox-cli
model=data/models/demo
if [ ! -f "$model/model.safetensors" ]; then
  # The trained demo model is not bundled yet: show the engine on a randomly
  # initialised GPT-2-small-shaped model with GPT-2's own vocabulary.
  model=build/models/random-gpt2
  [ -f "$model/model.safetensors" ] || "$cli" init-model --preset gpt2 --seed 1 --output "$model"
  echo "(no trained demo model yet: using random weights in $model, so the text is gibberish)"
fi
text="The bank rejected the loan application because"
echo "== tokenize"; "$cli" tokenize --model "$model" "$text"
echo "== run --dump build/demo-dump"; "$cli" run --model "$model" --text "$text" --dump build/demo-dump && ls -l build/demo-dump
echo "== generate"; "$cli" generate --model "$model" --prompt "$text" --max-new-tokens 20 --temperature 0.8 --seed 1
