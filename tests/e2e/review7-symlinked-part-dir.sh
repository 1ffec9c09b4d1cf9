#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review7: a live part dir that is a symlink to the part (an operator who
# moved a big part to another disk, as vmstorage's own snapshots link
# parts). vmstorage opens a part dir through a symlink, and vmunion follows
# a symlinked partition (symlink-partition.sh); but a symlinked part is
# dropped from the merge with only a warning, "hidden from the merged
# volume: not a part directory": the merged volume silently loses the
# part's rows, and the reason sends the operator to look at a dir that is a
# part. review5 fixed the same wording for a part file that is a symlink.
# Right: the part is taken (4 data parts), or check names it a symlink
# and refuses it as an error (status 2), not a warning.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

copy_volume "$DATA_DIR/v1.79.5/node0" "$SCRATCH/node0" || tap_bail "cannot copy node0"
month="$SCRATCH/node0/data/small/2024_01"
part=$(ls "$month" | head -n 1)
mkdir "$SCRATCH/disk2" && mv "$month/$part" "$SCRATCH/disk2/" &&
	ln -s "$SCRATCH/disk2/$part" "$month/$part"
tap_ok $? "node0's 2024_01 part moved to another dir, a symlink in its place"
snapshot_volumes "$SCRATCH/node0"

"$VMUNION" check "$SCRATCH/node0" >"$SCRATCH/out" 2>&1
rc=$?
if grep -q '4 data parts' "$SCRATCH/out"; then
	tap_ok 0 "check takes the symlinked part (4 data parts)"
else
	tap_is "$rc" 2 "check calls the dropped part an error (status 2), not a warning" ||
		tap_diag "$(cat "$SCRATCH/out")"
	grep "$part" "$SCRATCH/out" | grep -q 'symlink'
	tap_ok $? "... naming it a symlink, not 'not a part directory'" ||
		tap_diag "$(cat "$SCRATCH/out")"
fi
assert_volumes_unchanged
tap_done
