#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A volume file passed through is held by the FUSE connection, not by the
# daemon, until its last close. No closed file stays registered: once the
# daemon dies (SIGKILL, OOM), the volumes' filesystem unmounts, as with
# -o nopassthrough (review14 found it busy with 1024 kept files).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
volfs=$(scratch_dir volfs)
ro=$(scratch_dir ro)
for opt in nopassthrough ""; do
	mount -t tmpfs review14-vol "$volfs"
	tap_ok $? "a tmpfs for the volume" || tap_bail "no tmpfs"
	on_exit "umount -l '$volfs' 2>/dev/null"
	copy_volume "$DATA_DIR/v1.79.5/node0" "$volfs/node0"
	mount_union "$ro" "$volfs/node0" -- -f ${opt:+-o $opt}
	tap_ok $? "read-only mount ${opt:+(-o $opt)}" || tap_bail "no mount"
	pid=$(union_pid "$ro")
	find "$ro/data" -type f -exec cat {} + >/dev/null
	tap_ok $? "read every data file"
	sleep 1 # the kernel sends the last RELEASE after close(2) returns
	kill -9 "$pid"
	wait_for 5 eval "! _pid_alive $pid"
	tap_ok $? "the daemon is killed"
	# A killed daemon's leader is a zombie before its other threads have
	# closed the fds (slow under ASan): retry for 10 s. A file the kernel
	# kept registered would hold it until the mount is unmounted.
	wait_for 10 umount "$volfs" 2>"$SCRATCH/err"
	tap_ok $? "the volume's filesystem unmounts once the daemon is dead ${opt:+(-o $opt)}" ||
		tap_diag "$(cat "$SCRATCH/err"); lsof names $(lsof 2>/dev/null | grep -c "$volfs") holder(s)"
	_force_unmount "$ro"
	umount "$volfs" 2>/dev/null
	_MNT_PIDS[$(_canon_mnt "$ro")]=
done
tap_done
