#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# run-fuzzer.sh FUZZER SEEDS REGRESSIONS WORKDIR SECONDS (or $GB_FUZZ_SECONDS)
# $GB_FUZZ_SEED fixes libFuzzer's random seed (unset or 0: a new one).
# Runs one libFuzzer target for SECONDS on its seeds, its past crashes and
# the corpus it grew before (WORKDIR/corpus), then prints one summary line.
# A crash leaves its input in WORKDIR/crashes/ and fails the test: copy it
# into tests/fuzz/regressions/NAME/ with the fix.
set -u
fuzzer=$1 seeds=$2 regressions=$3 work=$4 seconds=${GB_FUZZ_SECONDS:-$5}
name=$(basename "$fuzzer")
mkdir -p "$work/corpus" "$work/crashes"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export OPENBLAS_NUM_THREADS=1
log="$work/last-run.log"
# -rss_limit_mb also caps single allocations: hostile input that makes the
# engine ask for 1.5 GB at once is a bug.
# -error_exitcode=1: libFuzzer's default, 77, is what meson reads as a
# skipped test, so a crash would not fail the suite.
"$fuzzer" -seed="${GB_FUZZ_SEED:-0}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1536 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$work/crashes/" -error_exitcode=1 \
  "$work/corpus" "$seeds" "$regressions" >"$log" 2>&1
status=$?
[ "$status" -eq 77 ] && status=1
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
units=$(ls "$work/corpus" | wc -l)
crashes=$(ls "$work/crashes" | wc -l)
line="$name: ${execs:-?} executions in ${seconds}s (seed ${GB_FUZZ_SEED:-random}), coverage ${cov:-?} edges (${ft:-?} features), corpus $units files, $crashes crash files, exit $status"
echo "$(date -u +%FT%TZ) $line" >>"$work/../summary.txt"
echo "$line"
if [ "$status" -ne 0 ]; then
  tail -n 60 "$log"
fi
exit "$status"
