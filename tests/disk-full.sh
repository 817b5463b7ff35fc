#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# disk-full.sh GLASSBOX-CLI
# Saves onto a full disk: in a private mount namespace (unshare; skipped
# where the system allows none), a 1 MiB tmpfs holds a file from an
# earlier save; the disk is filled; saving again must fail with one error
# line, leave the old file byte for byte as it was, and leave no temporary
# file behind. TAP output.
set -u
cli=$1
if [ "${GB_DISK_FULL_INNER:-}" != 1 ]; then
  if ! unshare -rm true 2>/dev/null; then
    echo "1..0 # SKIP no mount namespace here (unshare -rm)"
    exit 77
  fi
  GB_DISK_FULL_INNER=1 exec unshare -rm "$0" "$@"
fi

n=0
failed=0
result() {  # result OK|FAIL NAME
  n=$((n + 1))
  if [ "$1" = OK ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi
}

work=$(mktemp -d)
disk="$work/disk"
mkdir "$disk"
mount -t tmpfs -o size=1m tmpfs "$disk" || { echo "1..0 # SKIP cannot mount a tmpfs"; exit 77; }
model="$work/model"
"$cli" init-model --preset tiny --seed 3 --output "$model" >/dev/null || exit 1

# The earlier saves.
"$cli" attention --model "$model" --text "The bank said no." --layer 0 --head 1 --output "$disk/map.png" || exit 1
"$cli" init-model --preset tiny --seed 1 --output "$disk/m" >/dev/null 2>&1 ||
  { echo "# the tiny model does not fit the tmpfs"; exit 1; }
cp -r "$disk/map.png" "$disk/m" "$work/" || exit 1

fill() {
  dd if=/dev/zero of="$disk/fill" bs=4k 2>/dev/null
  dd if=/dev/zero of="$disk/fill-tail" bs=64 2>/dev/null
  true
}
unchanged() {  # unchanged NAME...: each file equals the copy in $work
  for f in "$@"; do cmp -s "$disk/$f" "$work/$f" || return 1; done
}
no_temporaries() {
  [ -z "$(find "$disk" -type f ! -name 'fill*' ! -name map.png ! -path "$disk/m/*")" ] &&
    [ -z "$(find "$disk/m" -type f ! -name config.json ! -name model.safetensors ! -name vocab.json ! -name merges.txt)" ]
}

echo "1..6"
fill

err=$("$cli" attention --model "$model" --text "The bank said no, and the applicant asked why." --layer 0 --head 2 \
  --scale 4 --force --output "$disk/map.png" 2>&1 >/dev/null)
status=$?
echo "# attention: exit $status: $err"
[ "$status" -eq 1 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && case "$err" in
  "glassbox-cli: error: "*map.png*) true ;; *) false ;; esac && result OK "attention export on a full disk: one error line naming the file" ||
  result FAIL "attention export on a full disk: one error line naming the file"
unchanged map.png && result OK "the earlier heatmap is intact" || result FAIL "the earlier heatmap is intact"

err=$("$cli" init-model --preset tiny --seed 2 --force --output "$disk/m" 2>&1 >/dev/null)
status=$?
echo "# init-model --force: exit $status: $err"
[ "$status" -eq 1 ] && case "$err" in "glassbox-cli: error: "*"$disk/m"*) true ;; *) false ;; esac &&
  result OK "model save on a full disk fails with an error naming the file" ||
  result FAIL "model save on a full disk fails with an error naming the file"
unchanged m/config.json m/model.safetensors m/vocab.json m/merges.txt && result OK "the earlier model is intact" ||
  result FAIL "the earlier model is intact"
no_temporaries && result OK "no temporary file left behind" || { find "$disk" -type f | sed 's/^/# left: /'; result FAIL "no temporary file left behind"; }

# With room again, the same saves succeed (the failures were the disk's).
rm -f "$disk"/fill*
"$cli" init-model --preset tiny --seed 2 --force --output "$disk/m" >/dev/null 2>&1 &&
  ! cmp -s "$disk/m/model.safetensors" "$work/m/model.safetensors" && result OK "with room again the save succeeds" ||
  result FAIL "with room again the save succeeds"

umount "$disk"
rm -rf "$work"
exit $failed
