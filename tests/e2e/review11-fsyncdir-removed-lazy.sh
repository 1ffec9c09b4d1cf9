#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review11: fsync of an open lazy dir that was emptied by unlinks and then
# removed (rmdir while open, as any rm -r of an open dir): sync_dir sees
# the unlinks (plan_dir still set, children gone) and populates the
# removed dir; node_open fails, fsync returns ENOENT, and the daemon logs
# "upper tree/(null): cannot populate it" (log_entry formats the path of
# a node that has none: a NULL through %s). sync_dir says a removed dir
# has nothing to sync, as on ext4 or tmpfs, where fsync of an open
# removed dir returns 0; so does this preview for a removed dir that was
# not lazy.
# Expected: fsync returns 0, and no "(null)" in the log.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
preview_of_two

fsync_removed() { # DIR: opens DIR, empties and removes it, fsyncs the fd
	python3 - "$1" <<'PY'
import os, sys
d = sys.argv[1]
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
for n in os.listdir(d):
    os.unlink(os.path.join(d, n))
os.rmdir(d)
try:
    os.fsync(fd)
    print("0")
except OSError as e:
    print(e.strerror)
PY
}

partition=data/small/2024_01
part=$partition/$(cd "$mnt/$partition" && ls -d *_* | head -n 1)
mkdir "$mnt/$partition/probe" && rmdir "$mnt/$partition/probe"
tap_ok $? "the partition is populated; its part dir is lazy"
mkdir "$mnt/plain" && touch "$mnt/plain/f"
tap_is "$(fsync_removed "$mnt/plain")" 0 "fsync of a removed dir that was not lazy: 0"
tap_is "$(fsync_removed "$mnt/$part")" 0 "fsync of a removed lazy dir emptied by unlinks: 0"
! grep -q "(null)" "$MOUNT_LOG"
tap_ok $? "no (null) path in the daemon's log" || grep "(null)" "$MOUNT_LOG" | tap_diag
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
