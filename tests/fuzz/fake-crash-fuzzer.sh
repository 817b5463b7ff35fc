#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Stands in for a libFuzzer binary that found a crash: libFuzzer's default
# exit status then is 77, which meson reads as "skipped". The test
# run-fuzzer-crash-fails checks that run-fuzzer.sh turns it into a failure.
echo "stat::number_of_executed_units: 1"
echo "==1== ERROR: libFuzzer: deadly signal"
exit 77
