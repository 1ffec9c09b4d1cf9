#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# review15: the FUSE connection aborted (`umount -f`, a stuck-mount
# recovery) while a client holds files open through the preview, the usual
# case (vmstorage holds its parts). No release ever comes for those opens,
# as for an open whose reply failed (fault-abort.sh), and the daemon exits:
# it must give back what they hold too, or LeakSanitizer reports the files
# (fs_free frees the nodes, not the files listed on them) and .ci/run's
# sanitizer phase fails. A SIGTERM (systemctl stop) while files are held
# ends the daemon the same way. Only a sanitizer build sees it: skipped
# otherwise.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
asan_build || tap_skip_all "not an ASan build: only LeakSanitizer sees the files left"

# sanitizer_report PID LOG : the sanitizer's report of daemon PID, from
# E2E_SANITIZER_LOG_DIR or else its log (-f: stderr is the log).
sanitizer_report() {
	if [ -n "${E2E_SANITIZER_LOG_DIR:-}" ]; then
		cat "$E2E_SANITIZER_LOG_DIR"/vmunionfs-*san."$1" 2>/dev/null
	else
		grep -A12 -E "ERROR: (Address|Leak)Sanitizer|runtime error" "$2"
	fi
}

copy_two_volumes
snapshot_volumes "$vols/node0" "$vols/node1"

# held_at_exit HOW : mounts a preview, holds a volume file and a new file
# open, ends the daemon by HOW (abort: `umount -f`; term: SIGTERM), closes
# the files, and checks the daemon's exit for a sanitizer report.
held_at_exit() {
	local how=$1 mnt pid log part report
	mnt=$(scratch_dir "mnt-$how")
	mount_union "$mnt" "$vols/node0" "$vols/node1" -- -f -o "upper=$SCRATCH/upper-$how"
	tap_ok $? "$how: preview mounted" || return
	pid=$(union_pid "$mnt")
	log=$MOUNT_LOG
	part=$(cd "$mnt" && find data -type f -name values.bin | head -1)
	head -c 65536 /dev/urandom >"$mnt/new.bin"
	exec 7<"$mnt/$part" 8<"$mnt/new.bin"
	tap_ok $? "$how: a volume file ($part) and a new file held open"
	case $how in
	abort) umount -f "$mnt" 2>/dev/null ;; # aborts the connection; busy, still mounted
	term) kill -TERM "$pid" ;;
	esac
	wait_for 20 eval "! _pid_alive $pid"
	tap_ok $? "$how: the daemon exits"
	exec 7<&- 8<&-
	fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
	! _mnt_is_mounted "$(_canon_mnt "$mnt")"
	tap_ok $? "$how: unmounted"
	report=$(sanitizer_report "$pid" "$log")
	[ -z "$report" ]
	tap_ok $? "$how: no sanitizer report at the daemon's exit" || tap_diag "$report"
}

held_at_exit abort
held_at_exit term
assert_volumes_unchanged
tap_done
