#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The daemon says which file failed (a volume file truncated underneath the
# mount, a copy-up without space, an edited stub) on stderr. Without -f it
# daemonizes, and fuse_daemonize points stderr at /dev/null: in the default
# mode every one of those messages is lost, and the operator sees only EIO.
# The message must reach the stderr the daemon was started with (or syslog).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd truncate

copy_two_volumes
mnt=$(scratch_dir mnt)
# No -f: the daemon runs in the background, as an operator starts it.
mount_union "$mnt" "$vols/node0" "$vols/node1"
tap_ok $? "mounted read-only, in the background" || tap_bail "no mount"
log=$MOUNT_LOG

file=$(cd "$vols/node0" && find data/small -name index.bin | sort | head -n 1)
truncate -s 100 "$vols/node0/$file"
cat "$mnt/$file" >/dev/null 2>"$SCRATCH/err"
tap_ok $(($? == 0)) "reading a volume file truncated underneath the mount fails"
sleep 0.5
grep -q "$file" "$log"
tap_ok $? "the daemon's message names the file where the operator can see it" ||
	_log_tail "$log" 5
unmount_union "$mnt"
tap_ok $? "unmounted"
tap_done
