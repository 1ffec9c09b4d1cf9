#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review5: DEST given as a symlink to a directory not made yet (a newcomer's
# /srv/vm/merged -> /disk2/merged). materialize fails with "cannot create:
# File exists", then says DEST "is unfinished (vmstorage will not start on
# it); rerun the same command to resume" and exits 2 (writing failed), though
# it wrote nothing, and a rerun fails the same way forever. vmunionfs names
# the same case for an upper ("a symlink to nothing: give an existing
# directory or a new name"). Either follow the link and make the dir, or
# refuse before writing (status 1) saying that DEST is a dangling symlink.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

vols=("$DATA_DIR/v1.79.5/node0" "$DATA_DIR/v1.79.5/node1")
snapshot_volumes "${vols[@]}"
ln -s "$SCRATCH/disk2/merged" "$SCRATCH/merged"
mkdir -p "$SCRATCH/disk2"

"$VMUNION" materialize -q "${vols[@]}" "$SCRATCH/merged" >"$SCRATCH/out" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then
	tap_ok 0 "materialize followed the link"
	tap_run "... and DEST verifies" "$VMUNION" verify "${vols[@]}" "$SCRATCH/merged"
else
	tap_is "$rc" 1 "materialize refuses a dangling DEST before writing (status 1)" ||
		tap_diag "$(cat "$SCRATCH/out")"
	grep -q 'symlink' "$SCRATCH/out"
	tap_ok $? "... saying DEST is a symlink to nothing" || tap_diag "$(cat "$SCRATCH/out")"
	! grep -q 'rerun' "$SCRATCH/out"
	tap_ok $? "... and not advising a rerun that fails the same way" ||
		tap_diag "$(cat "$SCRATCH/out")"
fi
assert_volumes_unchanged
tap_done
