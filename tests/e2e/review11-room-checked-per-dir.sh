#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review11: upper_has_room checks each lazy dir alone, against the upper's
# free inodes as they are now, never counting what the dirs already
# pending will take when they are populated. Two lazy dirs of 300 files
# each, on an upper with room for one population but not both: an rm in
# each returns 0 (each dir alone fits), the first population takes the
# room, the second fails with ENOSPC, and at the clean unmount the last
# try fails too: the file rm removed is back after the remount though the
# daemon was never killed (review10-unlink-full-upper-lost, with two dirs).
# Expected: either the second rm fails (ENOSPC, its dir populated first)
# or both files stay unlinked across a clean unmount.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse

copy_two_volumes
# Two part dirs of node0 with 300 more files each (a part's extra files
# are allowed), lazy in the preview.
dirA=data/small/2024_01/$(cd "$vols/node0/data/small/2024_01" && ls -d *_* | head -n 1)
dirB=data/small/2024_02/$(cd "$vols/node0/data/small/2024_02" && ls -d *_* | head -n 1)
for d in "$dirA" "$dirB"; do
	(cd "$vols/node0/$d" && for i in $(seq 300); do echo "$i" >"f$i"; done)
done
snapshot_volumes "$vols/node0" "$vols/node1"
tmpfs_upper 2000
upper=$upperfs/upper
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "preview mounted" || tap_bail "no mount"

[ -f "$mnt/$dirA/f1" ] && [ -f "$mnt/$dirB/f1" ]
tap_ok $? "the preview shows both dirs of 300 more files" || tap_done
for d in "$dirA" "$dirB"; do
	mkdir "$mnt/${d%/*}/probe" && rmdir "$mnt/${d%/*}/probe" || break
done
tap_ok $? "both partitions are populated; their part dirs are lazy"
# Leave 580 free inodes: each dir alone needs 300 + 256 (upper_has_room),
# both populations need ~600.
free=$(stat -f -c %d "$upperfs")
i=0
while [ "$free" -gt 580 ] && touch "$mnt/fill$i" 2>/dev/null; do
	i=$((i + 1))
	free=$(stat -f -c %d "$upperfs")
done
tap_is "$free" 580 "580 inodes left in the upper ($i files made)"

rm "$mnt/$dirA/f1" 2>"$SCRATCH/rmA.err"
rmA=$?
rm "$mnt/$dirB/f1" 2>"$SCRATCH/rmB.err"
rmB=$?
tap_diag "rm in A: status $rmA $(cat "$SCRATCH/rmA.err"); rm in B: status $rmB $(cat "$SCRATCH/rmB.err")"
sleep 4 # the flusher's turn
unmount_union "$mnt"
tap_ok $? "unmounted cleanly"
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "remounted" || tap_done
goneA=1 goneB=1
[ -e "$mnt/$dirA/f1" ] && goneA=0
[ -e "$mnt/$dirB/f1" ] && goneB=0
{ [ "$rmA" -ne 0 ] || [ "$goneA" = 1 ]; } && { [ "$rmB" -ne 0 ] || [ "$goneB" = 1 ]; }
tap_ok $? "an unlink that returned 0 is still done after a clean unmount (dir A: rm $rmA, gone $goneA; dir B: rm $rmB, gone $goneB)" ||
	grep -h "cannot populate\|back at the next mount" "$SCRATCH"/vmunionfs.1.log | tail -n 3 | tap_diag
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
