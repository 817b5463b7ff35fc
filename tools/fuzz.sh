#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# tools/fuzz.sh [SECONDS] [TARGET...]
# Builds build-fuzz (clang, libFuzzer, ASan + UBSan; engine and fuzz targets
# only) and runs each fuzz target (default: all, one after the other) for
# SECONDS (default 600) at low priority. Each run prints one line
# (executions, coverage, corpus, crashes), also appended to
# build-fuzz/tests/fuzz/work/summary.txt; a crash leaves its input in
# build-fuzz/tests/fuzz/work/TARGET/crashes/ and makes this exit non-zero.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
    --buildtype=debugoptimized >/dev/null || exit 1
fi
nice -n 10 ninja -C build-fuzz >/dev/null || exit 1
targets=()
for t in "$@"; do targets+=("fuzz-$t"); done
GB_FUZZ_SECONDS=$seconds nice -n 15 meson test -C build-fuzz --suite fuzz --no-rebuild --num-processes 1 \
  -t 0 --print-errorlogs "${targets[@]}"
status=$?
grep -h "executions" build-fuzz/meson-logs/testlog.txt | grep "^fuzz-" || true
exit $status
