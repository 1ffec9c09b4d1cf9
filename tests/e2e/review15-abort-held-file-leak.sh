#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# review15: the FUSE connection aborted (`umount -f`, a stuck-mount
# recovery) while a client holds files open through the preview, the usual
# case (vmstorage holds its parts). No release ever comes for those opens,
# as for an open whose reply failed (fault-abort.sh), and the daemon exits:
# it must give back what they hold too, or LeakSanitizer reports the files
# (fs_free frees the nodes, not the files listed on them) and .ci/run's
# sanitizer phase fails. Only a sanitizer build sees it: skipped otherwise.
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
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -f -o "upper=$SCRATCH/upper"
tap_ok $? "preview mounted" || tap_done
pid=$(union_pid "$mnt")
log=$MOUNT_LOG

part=$(cd "$mnt" && find data -type f -name values.bin | head -1)
head -c 65536 /dev/urandom >"$mnt/new.bin"
exec 7<"$mnt/$part" 8<"$mnt/new.bin"
tap_ok $? "a volume file ($part) and a new file held open"

umount -f "$mnt" 2>/dev/null # aborts the connection; busy, so still mounted
exec 7<&- 8<&-
wait_for 20 eval "! _pid_alive $pid"
tap_ok $? "the daemon exits after the abort"
fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
! mountpoint -q "$mnt"
tap_ok $? "unmounted"

report=$(sanitizer_report "$pid" "$log")
[ -z "$report" ]
tap_ok $? "no sanitizer report at its exit" || tap_diag "$report"
assert_volumes_unchanged
tap_done
