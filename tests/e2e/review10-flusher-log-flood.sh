#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review10: a pending dir (files unlinked from it while lazy) that the
# flusher cannot populate (a full upper) stays pending and is tried again
# at every tick of the flusher, once a second, forever: each try makes
# children until ENOSPC, removes them, and logs the same error. One dir on
# a full upper floods the log (syslog under systemd) with a line a second;
# N dirs with N lines a second, for as long as the upper stays full.
# Expected: the failure is logged once (or backs off), not every second.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse

copy_two_volumes
snapshot_volumes "$vols/node0" "$vols/node1"
tmpfs_upper 400
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upperfs/upper"
tap_ok $? "preview mounted" || tap_bail "no mount"
log=$MOUNT_LOG

partition=data/small/2024_01
p1=$partition/$(cd "$mnt/$partition" && ls -d *_* | head -n 1)
mkdir "$mnt/$partition/probe" && rmdir "$mnt/$partition/probe"
tap_ok $? "the partition is populated; its part dirs are lazy"
i=0
while [ "$i" -lt 2000 ] && touch "$mnt/fill$i" 2>/dev/null; do i=$((i + 1)); done
tap_is "$(stat -f -c %d "$upperfs")" 0 "the upper is full ($i files made)"

if rm "$mnt/$p1/timestamps.bin" 2>/dev/null; then
	sleep 10
	lines=$(grep -c "cannot populate" "$log")
	[ "$lines" -le 2 ]
	tap_ok $? "one pending dir that cannot be populated: $lines error lines in 10 s (at most 2 expected)" ||
		grep "cannot populate" "$log" | tail -n 2 | tap_diag
else
	tap_ok 0 "the unlink failed at once: nothing pending"
fi
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
