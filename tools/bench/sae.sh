#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# SAE training throughput: Glassbox's trainer against PyTorch (CPU) on the
# same SAE and the same kind of data, in one run.
#
#   tools/bench/sae.sh                  # 2 threads, 100 warm-up + 100 measured steps
#   THREADS=1 STEPS=200 tools/bench/sae.sh
#
# The SAE is the issue's classic one: d_in 768, 4x width (3072 latents),
# batch 512, ReLU, L1 penalty, Adam, decoder rows renormalised every step.
# Data: synthetic activations, 16 unit directions per token (bench-sae.c,
# bench_sae_torch.py), so both become sparse as they train. Glassbox uses
# sparse kernels once fewer than 8% of latents are active (the dense
# products before); PyTorch runs dense products throughout. Each prints
# JSON lines; the table gives activations/s of the measured phase.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
THREADS=${THREADS:-2}
STEPS=${STEPS:-100}
WARMUP=${WARMUP:-100}
L1=${L1:-0.5}
PYTHON=${PYTHON:-/usr/bin/python3}

ninja -C "$BUILD" tools/bench/bench-sae >/dev/null
OUT=$BUILD/bench-results/sae-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
"$BUILD/tools/bench/bench-sae" --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP" --l1 "$L1" | tee "$OUT/glassbox.jsonl"
OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=$THREADS "$PYTHON" "$ROOT/tools/bench/bench_sae_torch.py" \
  --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP" --l1 "$L1" | tee "$OUT/pytorch.jsonl"
"$PYTHON" - "$OUT" <<'PY' | tee "$OUT/table.txt"
import json, sys, os
rows = {}
for impl in ("glassbox", "pytorch"):
    for line in open(os.path.join(sys.argv[1], impl + ".jsonl")):
        r = json.loads(line)
        rows[(impl, r["phase"])] = r
print("%-10s %-9s %12s %8s %7s" % ("impl", "phase", "acts/s", "L0", "EV"))
for (impl, phase), r in sorted(rows.items()):
    print("%-10s %-9s %12d %8.1f %7.3f" % (impl, phase, r["acts_per_s"], r["l0"], r["ev"]))
g, t = rows[("glassbox", "measured")], rows[("pytorch", "measured")]
print("measured phase: Glassbox / PyTorch = %.2fx" % (g["acts_per_s"] / t["acts_per_s"]))
PY
