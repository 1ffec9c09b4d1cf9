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
# Right: the part is taken, or the volume is refused, naming the symlink.
# vmunion refuses it (plan.c collect_parts): the operator puts the part dir
# back in its place, and nothing is lost in silence.
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
tap_is $? 2 "check refuses the volume (status 2), it does not drop the part with a warning" ||
	tap_diag "$(cat "$SCRATCH/out")"
grep "$part" "$SCRATCH/out" | grep -q 'is a symlink'
tap_ok $? "... naming the part a symlink, not 'not a part directory'" ||
	tap_diag "$(cat "$SCRATCH/out")"
mnt=$(scratch_dir mnt)
"$VMUNIONFS" "$SCRATCH/node0" "$DATA_DIR/v1.79.5/node1" "$mnt" >"$SCRATCH/mount.out" 2>&1
rc=$?
mountpoint -q "$mnt" && fusermount3 -u "$mnt"
[ "$rc" -ne 0 ] && grep -q "$part is a symlink" "$SCRATCH/mount.out"
tap_ok $? "the mount refuses too, naming the symlinked part" || tap_diag "$(cat "$SCRATCH/mount.out")"
assert_volumes_unchanged
tap_done
