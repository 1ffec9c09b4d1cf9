#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review10: a population interrupted by a crash leaves a lazy dir holding
# some of its children in the upper (vmunionfs(1): "the next one removes
# what the interrupted one made and starts over"). Before 026c3e7 the
# first unlink from that dir populated it, which removed the leftovers.
# Now the unlinks populate nothing, and refuse_lazy_nonempty lets the rmdir
# of the emptied lazy dir through to the upper, whose dir still holds the
# leftovers: rmdir fails with ENOTEMPTY on a dir that lists nothing
# (vmstorage's removal of a merged part panics on it). The interrupted
# population is made by hand while unmounted: a stub of the dir's first
# file, as create_child leaves it.
# Expected: rm -r of the lazy part dir succeeds.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd getfattr setfattr

preview_of_two
upper=$SCRATCH/upper
partition=data/small/2024_01
part=$(cd "$mnt/$partition" && ls -d *_* | head -n 1)
p1=$partition/$part
mkdir "$mnt/$partition/probe" && rmdir "$mnt/$partition/probe"
tap_ok $? "the partition is populated; its part dirs are lazy"
unmount_union "$mnt"
tap_ok $? "unmounted"
getfattr -n user.vmunionfs.plan --only-values "$upper/tree/$p1" >/dev/null 2>&1
tap_ok $? "the part dir is lazy in the upper"
# What a population killed after its first child leaves.
first=$(cd "$vols/node0/$p1" 2>/dev/null && ls | head -n 1)
[ -n "$first" ] || first=$(cd "$vols/node1/$p1" && ls | head -n 1)
size=$(stat -c %s "$vols/node0/$p1/$first" 2>/dev/null || stat -c %s "$vols/node1/$p1/$first")
truncate -s "$size" "$upper/tree/$p1/$first" && chmod 0600 "$upper/tree/$p1/$first"
tap_ok $? "a population interrupted after its first child ($first) is left in the upper"
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "remounted" || tap_done
tap_is "$(ls "$mnt/$p1" | wc -l)" 5 "the lazy part dir lists its 5 files"
rm -r "$mnt/$p1" 2>"$SCRATCH/rm.err"
tap_ok $? "rm -r of the lazy part dir" || tap_diag "$(cat "$SCRATCH/rm.err")"
[ ! -e "$mnt/$p1" ]
tap_ok $? "... it is gone"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
