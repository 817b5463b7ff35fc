#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Glassbox vs PyTorch (CPU) on one GPT-2-small checkpoint, in one run.
#
#   tools/bench/run.sh            # everything, 2 threads, best of 5
#   THREADS=1 REPEATS=9 tools/bench/run.sh
#
# Environment: BUILD (default ./build), MODEL (default $BUILD/bench-gpt2),
# THREADS (OpenBLAS and torch threads, default 2), REPEATS (default 5),
# POLICIES (torch's OMP wait policies to try, default passive,default),
# PYTHON (default /usr/bin/python3: Debian's, with python3-torch).
# Results: $BUILD/bench-results/DATE/{glassbox,pytorch}.jsonl and table.txt.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
MODEL=${MODEL:-$BUILD/bench-gpt2}
THREADS=${THREADS:-2}
REPEATS=${REPEATS:-5}
POLICIES=${POLICIES:-passive,default}
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=$ROOT/tools/bench

if ! "$PYTHON" -c 'import torch, numpy' 2>/dev/null; then
  echo "run.sh: $PYTHON cannot import torch and numpy (apt-get install python3-torch python3-numpy)" >&2
  exit 1
fi

# Build what the benchmark needs (only those targets, so a half-written file
# elsewhere in the tree does not stop it).
if [ ! -d "$BUILD" ]; then
  meson setup "$BUILD" "$ROOT"
fi
ninja -C "$BUILD" tools/bench/bench-engine app/glassbox-cli

# The random GPT-2-small checkpoint, made once.
if [ ! -f "$MODEL/model.safetensors" ]; then
  "$BUILD/app/glassbox-cli" init-model --preset gpt2 --seed 1 --output "$MODEL"
fi

OUT=$BUILD/bench-results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
echo "run.sh: results in $OUT" >&2

# Other work on the machine spoils every number here (on 2 cores, one busy
# process halves the BLAS rate). A sampler notes, every few seconds, any
# other process using 20% of a CPU or more; the table says so at the end.
# (Not the benchmark's own processes, nor one that has exited: top shows
# the torch benchmark, while it is reaped, as "[python3] <defunct>".)
: > "$OUT/others.log"
(
  while :; do
    top -b -c -n 2 -d 1 -w 400 2>/dev/null |
      awk '/^top -/ { f++ } f == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 >= 20 {
             cmd = ""; for (i = 12; i <= NF; i++) cmd = cmd " " $i; print $9 cmd }' |
      grep -v -E 'bench-engine|bench_torch|glassbox-cli|<defunct>|^[0-9.]+ top ' |
      sed "s/^/$(date +%H:%M:%S) /" >> "$OUT/others.log"
    sleep 2
  done
) &
MONITOR=$!
trap 'kill $MONITOR 2>/dev/null || true' EXIT INT TERM

echo "== Glassbox ($THREADS OpenBLAS threads)" >&2
OPENBLAS_NUM_THREADS=$THREADS "$BUILD/tools/bench/bench-engine" --model "$MODEL" --threads "$THREADS" \
  --repeats "$REPEATS" > "$OUT/glassbox.txt"
grep '^{' "$OUT/glassbox.txt" > "$OUT/glassbox.jsonl"
grep '^#' "$OUT/glassbox.txt" >&2 || true

echo "== PyTorch (torch.set_num_threads($THREADS), OPENBLAS_NUM_THREADS=$THREADS, OMP policies $POLICIES)" >&2
"$PYTHON" "$HERE/bench_torch.py" --model "$MODEL" --threads "$THREADS" --repeats "$REPEATS" \
  --policies "$POLICIES" --check --cli "$BUILD/app/glassbox-cli" > "$OUT/pytorch.txt"
grep '^{' "$OUT/pytorch.txt" > "$OUT/pytorch.jsonl"
grep '^#' "$OUT/pytorch.txt" >&2 || true

kill $MONITOR 2>/dev/null || true

"$PYTHON" - "$OUT" <<'EOF' | tee "$OUT/table.txt"
import json, sys, os, platform, datetime

out = sys.argv[1]
def load(name):
    d = {}
    with open(os.path.join(out, name)) as f:
        for line in f:
            o = json.loads(line)
            d[o["name"]] = o
    return d

g, t = load("glassbox.jsonl"), load("pytorch.jsonl")
def gv(n, k="value"): return g.get(n, {}).get(k)
def tv(n, k="value"):
    o = t.get(n + "@best") or t.get(n) or {}
    return o.get(k)

cpu = "?"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip(); break
except OSError:
    pass
env = g.get("env", {})
print("Glassbox vs PyTorch %s, %s, %d CPUs (%s), %s threads, best of %d, %s" % (
    t.get("env", {}).get("torch", "?"), cpu, os.cpu_count(), platform.machine(), env.get("threads"),
    int(env.get("repeats", 0)), datetime.datetime.now().strftime("%Y-%m-%d %H:%M")))
print("ratio = glassbox / pytorch (below 1: Glassbox is faster or smaller)")
print()
rows = [
    ("prefill 128, logits (ms)",          "prefill128",      "prefill128"),
    ("prefill 128 + attention (ms)",      "prefill128_attn", "prefill128_attn"),
    ("prefill 512, logits (ms)",          "prefill512",      "prefill512"),
    ("prefill 512 + attention (ms)",      "prefill512_attn", "prefill512_attn"),
    ("decode, KV cache (ms/token)",       "decode",          "decode"),
    ("decode vs torch mv path (ms/token)", "decode",         "decode_mv"),
    ("model load (ms)",                   "load",            "load"),
]
fmt = "%-36s | %10s | %10s | %6s | %s"
print(fmt % ("metric", "glassbox", "pytorch", "ratio", "pytorch setting"))
print("-" * 90)
def num(x, p=1): return "-" if x is None else ("%.*f" % (p, x))
for label, gn, tn in rows:
    a, b = gv(gn), tv(tn)
    r = a / b if a and b else None
    pol = (t.get(tn + "@best") or {}).get("policy", "")
    print(fmt % (label, num(a), num(b), num(r, 2), ("OMP " + pol) if pol else ""))
for label, gn, tn in [("peak RSS, prefill 128 (MiB)", "prefill128", "prefill128"),
                      ("peak RSS, prefill 512 + attn (MiB)", "prefill512_attn", "prefill512_attn"),
                      ("peak RSS, decode (MiB)", "decode", "decode")]:
    a, b = gv(gn, "peak_rss_mb"), tv(tn, "peak_rss_mb")
    r = a / b if a and b else None
    print(fmt % (label, num(a, 0), num(b, 0), num(r, 2), ""))
print()
sg, sg128 = gv("sgemm_1024x768x3072"), gv("sgemm_128x768x3072")
rd, tr, sv = gv("bandwidth_read"), gv("bandwidth_triad"), gv("sgemv_50257x768")
gf, wmb = gv("load", "prefill128_gflop"), gv("load", "decode_weight_mb")
print("machine: OpenBLAS sgemm 1024x768x3072 %s GFLOP/s (128x768x3072: %s), sgemv 50257x768 %s GB/s" % (
    num(sg), num(sg128), num(sv)))
print("         memory bandwidth (%s threads): read %s GB/s, STREAM triad %s GB/s" % (
    num(g.get("bandwidth_read", {}).get("bw_threads"), 0), num(rd), num(tr)))
if gf and sg:
    floor = gf / sg * 1e3
    print("floor prefill 128 = %.2f GFLOP / %.1f GFLOP/s = %.1f ms   (glassbox %.2fx, pytorch %.2fx the floor)" % (
        gf, sg, floor, gv("prefill128") / floor, (tv("prefill128") or 0) / floor))
if wmb and rd:
    floor = wmb / rd
    print("floor decode      = %.0f MB weights / %.1f GB/s read = %.1f ms/token   (triad: %.1f ms; "
          "glassbox %.2fx, pytorch mv %.2fx the floor)" % (
        wmb, rd, floor, wmb / tr if tr else float("nan"), gv("decode") / floor, (tv("decode_mv") or 0) / floor))
others = {}
try:
    for line in open(os.path.join(out, "others.log")):
        parts = line.split()
        if len(parts) >= 3:
            name = os.path.basename(parts[2])
            n, mx = others.get(name, (0, 0.0))
            others[name] = (n + 1, max(mx, float(parts[1])))
except OSError:
    pass
if others:
    print("NOT QUIET: other processes used the CPUs during the run, the figures are unreliable: " +
          ", ".join("%s (up to %.0f%%, %d samples)" % (k, v[1], v[0]) for k, v in others.items()))
else:
    print("quiet: no other process used 20% of a CPU during the run")
c = t.get("check")
if c:
    print("check: logits max rel err %.2e, attention max abs err %.2e over %d tokens (%s); same greedy token: %s" % (
        c["logits_max_rel_err"], c["attention_max_abs_err"], c["tokens"], "ok" if c["ok"] else "MISMATCH",
        "yes" if gv("decode", "last_token") == tv("decode", "last_token") else "no"))
EOF
