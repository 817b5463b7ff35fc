#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Training throughput: glassbox-cli's trainer vs PyTorch CPU on the same
# GPT-2 architecture, batch, sequence length and threads, in one run.
#
#   tools/bench/train.sh                 # the demo model's shape
#   LAYERS=4 EMBD=192 HEADS=6 VOCAB=310 SEQ=128 BATCH=32 tools/bench/train.sh   # the prototype's
#
# PyTorch runs with OMP_WAIT_POLICY=PASSIVE (its best setting on 2 cores).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-2}
ARGS="--vocab ${VOCAB:-4096} --layers ${LAYERS:-6} --heads ${HEADS:-6} --embd ${EMBD:-192} --seq-len ${SEQ:-256} --batch ${BATCH:-16} --steps ${STEPS:-10} --threads $THREADS"

ninja -C "$BUILD" tools/bench/bench-train >/dev/null
g=$("$BUILD/tools/bench/bench-train" $ARGS)
t=$(OMP_WAIT_POLICY=PASSIVE "$PYTHON" "$ROOT/tools/bench/bench_train.py" $ARGS)
"$PYTHON" - "$g" "$t" "$ARGS" <<'PY'
import json, sys
g, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("training throughput (%s), %s parameters" % (sys.argv[3], g["params"]))
print("  glassbox: %8.0f tokens/s  (%.0f ms/step)" % (g["tokens_per_s"], g["ms_per_step"]))
print("  pytorch : %8.0f tokens/s  (%.0f ms/step, torch %s, OMP_WAIT_POLICY=PASSIVE)" % (
    t["tokens_per_s"], t["ms_per_step"], t["torch"]))
print("  ratio glassbox/pytorch: %.2fx" % (g["tokens_per_s"] / t["tokens_per_s"]))
PY
