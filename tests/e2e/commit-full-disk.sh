#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (issue 9): a full disk DURING the staging (TARGET on a small loop
# ext4, --no-space-check so that the copy runs into ENOSPC). The man page
# says materialize exits 1 only when it refuses BEFORE writing anything and
# 2 "when writing failed (... rerun to resume)"; --into exits 1 here (it maps
# ENOSPC to "refused") while it has written a partial stage and tells the
# operator to rerun. Rollback must then restore TARGET byte for byte, and a
# rerun with space must complete.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"
[ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null 2>&1 || tap_skip_all "needs root and mkfs.ext4"

truncate -s 20M "$SCRATCH/img" && mkfs.ext4 -q "$SCRATCH/img" || tap_bail "mkfs.ext4"
mnt=$(scratch_dir mnt)
mount -o loop "$SCRATCH/img" "$mnt" || tap_skip_all "cannot mount a loop ext4"
on_exit "umount '$mnt' 2>/dev/null || umount -l '$mnt'"
work=$SCRATCH/set
vols=()
for n in 0 1 2 3; do
	if [ "$n" = 1 ]; then
		copy_volume "$DATA_DIR/v1.79.5/node$n" "$mnt/node$n" || tap_bail "cannot copy node$n"
		vols+=("$mnt/node$n")
	else
		copy_volume "$DATA_DIR/v1.79.5/node$n" "$work/node$n" || tap_bail "cannot copy node$n"
		vols+=("$work/node$n")
	fi
done
target=$mnt/node1
snapshot_volumes "$work/node0" "$work/node2" "$work/node3"
tree_checksum --mtime "$target" >"$SCRATCH/original" || tap_bail "cannot checksum"
avail=$(df -B1 --output=avail "$mnt" | tail -n 1)
fallocate -l $((avail - 1500000)) "$mnt/filler" || tap_bail "fallocate"

"$VMUNION" materialize --into "$target" --no-space-check "${vols[@]}" >"$SCRATCH/out" 2>&1
rc=$?
grep -q "No space left" "$SCRATCH/out"
tap_ok $? "the staging ran into ENOSPC, naming the file" || tap_diag "$(cat "$SCRATCH/out")"
tap_is "$rc" 2 "exit 2 (writing failed, rerun to resume), as the man page says"
tap_run "rollback on the full disk" "$VMUNION" rollback "$target"
tree_checksum --mtime "$target" >"$SCRATCH/now"
cmp -s "$SCRATCH/original" "$SCRATCH/now"
tap_ok $? "TARGET byte-identical after the rollback"
rm -f "$mnt/filler"
tap_run "with space again: the commit completes" "$VMUNION" materialize --into "$target" -q "${vols[@]}"
tap_run "rollback" "$VMUNION" rollback -q "$target"
assert_volumes_unchanged "the other volumes are byte-identical"
tap_done
