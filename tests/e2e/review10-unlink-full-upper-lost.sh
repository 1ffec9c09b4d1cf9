#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review10: on a full upper, an unlink from a lazy dir reports success
# though the upper can never learn of it. Before 026c3e7 the unlink
# populated the dir first and failed with ENOSPC, so the caller knew. Now
# the flusher fails to populate the dir (ENOSPC) and keeps it pending; at a
# clean unmount the last try fails too and the unlink is dropped: after
# the remount the file is back, whole, though rm returned 0 and the daemon
# was never killed (vmunionfs(1) promises the upper learns of it "at
# unmount"; only a daemon killed before brings the files back).
# Expected: either the unlink fails (ENOSPC) or the file stays unlinked
# across a clean unmount.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse

copy_two_volumes
snapshot_volumes "$vols/node0" "$vols/node1"
tmpfs_upper 400
upper=$upperfs/upper
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "preview mounted" || tap_bail "no mount"

partition=data/small/2024_01
p1=$partition/$(cd "$mnt/$partition" && ls -d *_* | head -n 1)
# The partition is populated (its part dirs become lazy upper dirs), then
# the rest of the upper's inodes are taken.
mkdir "$mnt/$partition/probe" && rmdir "$mnt/$partition/probe"
tap_ok $? "the partition is populated; its part dirs are lazy"
i=0
while [ "$i" -lt 2000 ] && touch "$mnt/fill$i" 2>/dev/null; do i=$((i + 1)); done
tap_is "$(stat -f -c %d "$upperfs")" 0 "the upper is full ($i files made)"

rm "$mnt/$p1/timestamps.bin" 2>"$SCRATCH/rm.err"
rm_rc=$?
tap_diag "rm of a file of a lazy part dir on the full upper: status $rm_rc $(cat "$SCRATCH/rm.err")"
unmount_union "$mnt"
tap_ok $? "unmounted cleanly"
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "remounted" || tap_done
gone=1
[ -e "$mnt/$p1/timestamps.bin" ] && gone=0
[ "$rm_rc" -ne 0 ] || [ "$gone" = 1 ]
tap_ok $? "an unlink that returned 0 is still there after a clean unmount (rm status $rm_rc, file gone: $gone)" ||
	grep "cannot populate" "$SCRATCH"/vmunionfs.1.log | tail -n 2 | tap_diag
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
