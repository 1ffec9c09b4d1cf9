#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Opens through a read-only mount do not reach the daemon: reads take the
# volume file's fd from a bounded cache (src/fd_cache.c), which gives fds
# back when the daemon runs out. So every file may be held open by clients
# with the daemon's fd limit low, and all read right, by concurrent readers
# too. When the daemon has no fd left at all, a read fails with what
# happened (EMFILE/ENFILE, logged as such), not with EIO and a log line
# blaming the volume ("the volume changed underneath the mount"), which
# sends the operator to check healthy volumes.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd prlimit python3

copy_two_volumes
snapshot_volumes "$vols/node0" "$vols/node1"
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -f
tap_ok $? "mounted read-only" || tap_bail "no mount"
log=$MOUNT_LOG
pid=$(union_pids "$mnt")
pid=${pid%% *}
fd_count() {
	find "/proc/$pid/fd" -mindepth 1 | wc -l
}
held=$(fd_count)

# --- no fd left: the read fails as such ------------------------------------
file=$(cd "$mnt" && find data -type f -name 'index.bin' | sort | head -n 1)
prlimit --pid "$pid" --nofile=3:
tap_ok $? "the daemon's soft fd limit is 3, below the $held fds it holds"
out=$(python3 -c '
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    os.read(fd, 4096)
    print("no error")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
' "$mnt/$file" 2>&1)
case $out in EMFILE | ENFILE) rc=0 ;; *) rc=1 ;; esac
tap_ok $rc "a read with no fd left fails with EMFILE or ENFILE" || tap_diag "got: $out"
grep -q "the daemon's own limit" "$log"
tap_ok $? "the log says it is the daemon's limit" || _log_tail "$log" 3
! grep -q "changed underneath" "$log"
tap_ok $? "the log does not blame the volume" || _log_tail "$log" 3

# --- a few fds: every file held open, read right, by 4 readers --------------
limit=$((held + 6))
prlimit --pid "$pid" --nofile=$limit:
tap_ok $? "the daemon's soft fd limit is $limit"
python3 - "$pid" "$mnt" "$vols/node0" "$vols/node1" >"$SCRATCH/read.out" 2>&1 <<'PY'
import os, sys, threading
pid, mnt, vols = sys.argv[1], sys.argv[2], sys.argv[3:]
made = ("parts.json", "flock.lock", "minTimestampForCompositeIndex", "converted-to-")  # merged
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(mnt) for f in fs)
daemon_fds = len(os.listdir("/proc/%s/fd" % pid))
fds = [os.open(p, os.O_RDONLY) for p in paths]  # every file held open at once
opened_fds = len(os.listdir("/proc/%s/fd" % pid))
bad, compared = [], [0]

def reader(share):
    for path, fd in share:
        got = b"".join(iter(lambda: os.read(fd, 1 << 16), b""))
        rel = os.path.relpath(path, mnt)
        sources = [os.path.join(v, rel) for v in vols if os.path.isfile(os.path.join(v, rel))]
        wanted = [open(s, "rb").read() for s in sources]
        if wanted and got not in wanted and not os.path.basename(rel).startswith(made):
            bad.append(rel)
        compared[0] += bool(wanted)

pairs = list(zip(paths, fds))
threads = [threading.Thread(target=reader, args=(pairs[i::4],)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("# %d files held open: the daemon's fds %d before, %d after; %d compared with a "
      "volume file, %d differ %s" % (len(fds), daemon_fds, opened_fds, compared[0], len(bad),
                                      bad[:3]))
sys.exit(1 if bad or compared[0] < 40 or opened_fds > daemon_fds else 0)
PY
tap_ok $? "every file held open at once (no daemon fd taken) reads as its volume file, 4 readers at a time" ||
	tap_diag "$(cat "$SCRATCH/read.out")"
cat "$SCRATCH/read.out"
! grep -q "changed underneath" "$log"
tap_ok $? "the log blames no volume" || _log_tail "$log" 3

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
