#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A mountpoint that is a volume, lies inside one, or holds one hides that
# volume behind the merged tree: whatever later opens the volume's path (a
# vmstorage restarted on it, `vmunion check`, the daemon itself remounting
# after a kill -9) gets the mount instead, or ENOTCONN from a dead one, and a
# writable preview mounted there takes the writes meant for the volume. The
# upper is checked for this (check_upper_location); the mountpoint must be
# too, read-only and preview alike.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse

copy_two_volumes
mkdir "$vols/node0/inside"
snapshot_volumes "$vols/node0" "$vols/node1"

n=0
for where in "$vols/node1" "$vols/node0/inside" "$vols"; do
	for mode in read-only preview; do
		n=$((n + 1))
		extra=()
		[ "$mode" = preview ] && extra=(-o "upper=$SCRATCH/upper$n")
		MOUNT_TIMEOUT=5 mount_union "$where" "$vols/node0" "$vols/node1" -- "${extra[@]}" \
			2>/dev/null
		rc=$?
		tap_ok $((rc == 0)) "$mode: a mountpoint at ${where#"$SCRATCH/"} is refused"
		if [ "$rc" -eq 0 ]; then
			unmount_union "$where"
		else
			# the refusal itself (the log's first line is the command)
			grep -q "^vmunionfs: mountpoint $where must not be the volume $vols/node" \
				"$MOUNT_LOG"
			tap_ok $? "$mode: ... naming it and the volume" || _log_tail "$MOUNT_LOG"
		fi
	done
done
assert_volumes_unchanged
tap_done
