#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review7: a populate that fails on a full upper (ENOSPC, here out of
# inodes) keeps the children it made. The dir stays lazy and is served
# right, but what it took of the upper stays taken until that same dir is
# populated again: a create in one big lazy dir fails, and from then on
# every other write of the preview fails with ENOSPC too (vmstorage's
# flushes into populated dirs), though nothing new was kept. A copy-up that
# fails on ENOSPC gives its blocks back (upper.h); a populate must as well:
# after the failed create, a mkdir in the populated root must still work.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse

copy_two_volumes
# 400 more parts in node0's 2024_01 (copies of its part under other
# names): a dir whose populate needs more inodes than the upper has left.
month="$vols/node0/data/small/2024_01"
python3 - "$month" <<'PY' || tap_bail "cannot copy the part"
import os, shutil, sys
month = sys.argv[1]
part = sorted(os.listdir(month))[0]
for i in range(1, 401):
    shutil.copytree(os.path.join(month, part),
                    os.path.join(month, "%s_%016X" % (part.rsplit("_", 1)[0], 0x18EB73DEA55F0800 + i)))
PY
snapshot_volumes "$vols/node0" "$vols/node1"
tmpfs_upper 200
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upperfs/upper"
tap_ok $? "preview mounted" || tap_bail "no mount"
tap_is "$(ls "$mnt/data/small/2024_01" | wc -l)" 404 "2024_01 lists its 404 parts"
# The dirs above 2024_01 populated first: what they keep is no leak.
mkdir "$mnt/data/small/probe" && rmdir "$mnt/data/small/probe"
tap_ok $? "a mkdir and rmdir in data/small populate the dirs above 2024_01"
free_before=$(stat -f -c %d "$upperfs")
tap_diag "inodes free before: $free_before"

timeout 60 touch "$mnt/data/small/2024_01/new" 2>"$SCRATCH/touch.err"
tap_ok $(($? == 0)) "a create in 2024_01 fails (its populate runs out of inodes)"
grep -q "No space left" "$SCRATCH/touch.err"
tap_ok $? "... with ENOSPC" || tap_diag "$(cat "$SCRATCH/touch.err")"
tap_is "$(ls "$mnt/data/small/2024_01" | wc -l)" 404 "2024_01 still lists its 404 parts"

free_after=$(stat -f -c %d "$upperfs")
tap_diag "inodes free after the failed populate: $free_after"
[ "$free_after" -ge "$free_before" ]
tap_ok $? "the failed populate gave back the inodes it took ($free_after of $free_before free)"
timeout 10 mkdir "$mnt/elsewhere" 2>"$SCRATCH/mkdir.err"
tap_ok $? "a mkdir in the populated root still works" || tap_diag "$(cat "$SCRATCH/mkdir.err")"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
