#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# README command 1: set up, build, and start Glassbox on the bundled demo
# model (data/models/loan-officer). Extra arguments go to glassbox, e.g.
#   tools/run.sh --model ~/models/gpt2
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
# The settings schema of the uninstalled build (recent models, preferences).
export GSETTINGS_SCHEMA_DIR="$PWD/build/data"
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "tools/run.sh: no display (DISPLAY and WAYLAND_DISPLAY are unset); showing the command-line tool instead." >&2
  cli=build/app/glassbox-cli
  text=$'Name: Dana Reyes\nCredit score: 664\nDebt-to-income: 22%\nYears at current job: 4\nNeighbourhood: Eastbrook (40106)\nDecision:'
  echo "== generate (the demo model decides a loan application)"; "$cli" generate --prompt "$text" --max-new-tokens 8
  echo "== heads"; "$cli" heads
  exit 0
fi
exec build/app/glassbox "$@"
