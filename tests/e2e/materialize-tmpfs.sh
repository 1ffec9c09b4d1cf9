#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A DEST on a small tmpfs: the free-space check refuses before anything is
# written; with the check skipped, running out of space mid-copy fails
# clearly with nothing published, and once the tmpfs is grown the same
# command resumes. Hard links cannot cross filesystems: --mode link says so
# naming both paths. The volumes stay byte-identical.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ "$(id -u)" -eq 0 ] || _require_fail "needs root (mounts a tmpfs)"
require_cmd mount umount mountpoint
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

vols=("$DATA_DIR/v1.79.5"/node*)
snapshot_volumes "${vols[@]}"
bytes=$(du -sb --apparent-size "${vols[@]}" | awk '{ s += $1 } END { print s }')

tmp=$(scratch_dir tmpfs)
# Registered before mounting, so that an interrupted test unmounts too.
on_exit "mountpoint -q '$tmp' && { umount '$tmp' || umount -l '$tmp'; }"
mount -t tmpfs -o size=1m,mode=0755 vmunion-test "$tmp" || tap_bail "cannot mount a tmpfs"
tap_diag "the set holds $bytes bytes; the tmpfs 1 MiB"

# 1. The free-space check: refused, nothing written at all.
tap_fails "a too-small DEST is refused" "$VMUNION" materialize "${vols[@]}" "$tmp"
grep -q "not enough free space" "$TAP_OUT" && grep -q "nothing was written" "$TAP_OUT"
tap_ok $? "... saying so (needs, available, nothing written)" || tap_diag "$(cat "$TAP_OUT")"
"$VMUNION" materialize -q "${vols[@]}" "$tmp" >/dev/null 2>&1
tap_is "$?" 1 "... with exit status 1"
tap_is "$(ls -A "$tmp")" "" "DEST is still empty"
tap_fails "a missing DEST on it: refused too" "$VMUNION" materialize -q "${vols[@]}" "$tmp/sub"
[ ! -e "$tmp/sub" ]
tap_ok $? "... and not created"
tap_fails "the dry run says it would not fit" "$VMUNION" materialize -n "${vols[@]}" "$tmp"
grep -q "not enough free space" "$TAP_OUT"
tap_ok $? "... with the same message" || tap_diag "$(tail -n 3 "$TAP_OUT")"

# 2. No check: ENOSPC in the middle of the copy. Nothing is published and
# vmstorage would refuse the DEST; the error names the file and the reason.
tap_fails "--no-space-check: the copy runs out of space" \
	"$VMUNION" materialize --no-space-check --jobs 1 "${vols[@]}" "$tmp"
grep -q "No space left on device" "$TAP_OUT" && grep -q "rerun the same command to resume" "$TAP_OUT"
tap_ok $? "... with the file, ENOSPC and how to go on" || tap_diag "$(cat "$TAP_OUT")"
"$VMUNION" materialize -q --no-space-check --jobs 1 "${vols[@]}" "$tmp" >/dev/null 2>&1
tap_is "$?" 2 "... exit status 2"
[ -f "$tmp/restore-in-progress" ] && [ ! -e "$tmp/data" ] && [ ! -e "$tmp/indexdb" ] &&
	[ ! -e "$tmp/flock.lock" ]
tap_ok $? "nothing published, restore-in-progress in place" || tap_diag "$(ls -A "$tmp")"
tap_fails "verify: DEST differs" "$VMUNION" verify -q "${vols[@]}" "$tmp"

# 3. Room made: the same command resumes and finishes.
mount -o remount,size=64m "$tmp"
tap_ok $? "tmpfs grown to 64 MiB"
tap_run "the same command resumes" "$VMUNION" materialize -q "${vols[@]}" "$tmp"
tap_run "verify passes" "$VMUNION" verify "${vols[@]}" "$tmp"

# 4. link mode across filesystems: refused before writing, naming both.
tap_fails "--mode link from ext4 to tmpfs is refused" \
	"$VMUNION" materialize --mode link "${vols[@]}" "$tmp/linked"
grep -q "different filesystems" "$TAP_OUT" && grep -qF "${vols[0]}" "$TAP_OUT" &&
	grep -qF "$tmp/linked" "$TAP_OUT" && [ ! -e "$tmp/linked" ]
tap_ok $? "... naming the volume and DEST, nothing created" || tap_diag "$(cat "$TAP_OUT")"

umount "$tmp"
tap_ok $? "tmpfs unmounted"
assert_volumes_unchanged "volume byte-identical after the tmpfs tests"
tap_done
