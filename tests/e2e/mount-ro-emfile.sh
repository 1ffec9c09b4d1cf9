#!/bin/bash
# Every open() of a file of a read-only mount holds one fd of the daemon.
# When they run out (another user holding many opens, a low limit), an open
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
prlimit --pid "$pid" --nofile=64:64
tap_ok $? "the daemon's fd limit is 64"

file=$(cd "$mnt" && find data/small -name index.bin | sort | head -n 1)
out=$(python3 - "$mnt/$file" <<'PY' 2>&1
import errno, os, sys
fds = []
for _ in range(200):
    try:
        fds.append(os.open(sys.argv[1], os.O_RDONLY))
    except OSError as e:
        print(errno.errorcode.get(e.errno, e.errno))
        break
else:
    print("no error")
PY
)
case $out in EMFILE | ENFILE) rc=0 ;; *) rc=1 ;; esac
tap_ok $rc "an open past the daemon's fd limit fails with EMFILE or ENFILE" || tap_diag "got: $out"
! grep -q "changed underneath" "$log"
tap_ok $? "the log does not blame the volume" || _log_tail "$log" 3

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
