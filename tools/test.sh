#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# README command 2: set up, build, run every test, then the engine tests again
# under AddressSanitizer + UndefinedBehaviorSanitizer, then a short run of
# every fuzz target.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh || exit 1
status=0
meson test -C build --print-errorlogs --num-processes 2 || status=1
[ -f build-asan/build.ninja ] ||
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debug >/dev/null || exit 1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
meson test -C build-asan --suite engine --print-errorlogs --num-processes 2 || status=1
# Every libFuzzer target (tests/fuzz/meson.build) for $GB_FUZZ_SECONDS
# (default 60) each, two at a time: about three minutes. The ten-minute
# runs are tools/fuzz.sh. Here the seed is fixed (GB_FUZZ_SEED, default 1)
# so that a failing run replays the same mutations; tools/fuzz.sh draws a
# new seed each time to explore further.
[ -f build-fuzz/build.ninja ] ||
  CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
    --buildtype=debugoptimized >/dev/null || exit 1
GB_FUZZ_SEED=${GB_FUZZ_SEED:-1} GB_FUZZ_SECONDS=${GB_FUZZ_SECONDS:-60} meson test -C build-fuzz --suite fuzz --print-errorlogs --num-processes 2 || status=1
exit $status
