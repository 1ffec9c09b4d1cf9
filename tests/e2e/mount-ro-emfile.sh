#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Every file open through a read-only mount holds one fd of the daemon
# (opens of one file share it). When they run out (many files open, a low
# limit), an open
# must fail with what happened (EMFILE/ENFILE, logged as such), not with EIO
# and a log line blaming the volume ("the volume changed underneath the
# mount"), which sends the operator to check healthy volumes.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd prlimit python3

vols="$SCRATCH/vols"
copy_volume "$DATA_DIR/v1.79.5/node0" "$vols/node0" &&
	copy_volume "$DATA_DIR/v1.79.5/node1" "$vols/node1"
tap_ok $? "copied two volumes" || tap_bail "cannot copy the sample volumes"
snapshot_volumes "$vols/node0" "$vols/node1"
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -f
tap_ok $? "mounted read-only" || tap_bail "no mount"
log=$MOUNT_LOG
pid=$(union_pids "$mnt")
pid=${pid%% *}
# Room for a few more fds than the daemon holds now, fewer than its files.
limit=$(($(ls "/proc/$pid/fd" | wc -l) + 8))
prlimit --pid "$pid" --nofile=$limit:$limit
tap_ok $? "the daemon's fd limit is $limit"

out=$(cd "$mnt" && find . -type f | python3 -c '
import errno, os, sys
fds = []
for path in sys.stdin.read().split():
    try:
        fds.append(os.open(path, os.O_RDONLY))
    except OSError as e:
        print(errno.errorcode.get(e.errno, e.errno))
        break
else:
    print("no error")
' 2>&1)
case $out in EMFILE | ENFILE) rc=0 ;; *) rc=1 ;; esac
tap_ok $rc "an open past the daemon's fd limit fails with EMFILE or ENFILE" || tap_diag "got: $out"
! grep -q "changed underneath" "$log"
tap_ok $? "the log does not blame the volume" || _log_tail "$log" 3

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
