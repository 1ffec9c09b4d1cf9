#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review10: the upper learns of files unlinked from lazy dirs at unmount in
# op_destroy, which runs after the kernel unmounted and after serve() has
# removed libfuse's signal handlers. A SIGTERM then (systemd kills what is
# left in a mount unit's cgroup once umount returns, as for a preview in
# /etc/fstab; an operator who stops the service after unmounting it; a
# second ^C) kills the daemon with its default action in the middle of the
# flush: every unlink not flushed yet comes back, though the unmount was
# clean and the daemon was sent the polite signal. Nothing is logged.
# Expected: a SIGTERM after a clean unmount loses no unlink.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_many_lazy_parts 200
pid=$(union_pid "$mnt")

# count_files FILE : how many part dirs of the mount show FILE.
count_files() {
	python3 - "$mnt" "$1" <<'PY'
import os, sys
mnt, name, n = sys.argv[1], sys.argv[2], 0
for m in sorted(os.listdir(mnt + "/data/small")):
    d = os.path.join(mnt, "data/small", m)
    n += sum(os.path.exists(os.path.join(d, p, name)) for p in os.listdir(d) if "_" in p)
print(n)
PY
}
unlink_in_every_part min_dedup_interval
tap_is "$(count_files min_dedup_interval)" 0 "unlinked a file from each lazy part dir"
fusermount3 -u "$mnt"
tap_ok $? "unmounted cleanly (fusermount3 -u)"
kill -TERM "$pid" 2>/dev/null
tap_diag "SIGTERM sent to the daemon $pid once the unmount returned"
wait_for 60 eval "! _pid_alive $pid"
tap_ok $? "the daemon exited"
_MNT_PIDS[$(_canon_mnt "$mnt")]=
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "remounted" || tap_done
tap_is "$(count_files min_dedup_interval)" 0 "no unlinked file is back after a clean unmount and a SIGTERM"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
