#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What: root holds a file of the preview open and has read it; its volume
# file is then removed from the volume (an operator cleaning up, a volume
# that is not locked), and other files are read. Since the fd cache (fs.c
# volume_fds) an open file holds no fd of its volume file: once other reads
# evict it, the next read of the open file opens the volume file again by
# name, and fails with ENOENT. The cache is made small here with a lower
# fd limit (it keeps half of it); on a real volume, reading 1024 other files
# does the same.
# Why it matters: an open file stops reading, with an errno read(2) does not
# give on a local file system, although its bytes are still on the disk;
# before the cache, the open held the file, and reads went on.
# Right: a file open and read once reads the same bytes while it is open.
# Status: kept out of TESTS, as the behaviour README describes. The volumes
# may not change under a mount (they are locked, shared); a volume file
# removed anyway fails with EIO and a log line naming it, as on the
# read-only mount, open or not: an fd per open file is what the fd cache
# bounds (review8-preview-fd-many-files).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd prlimit python3
copy_two_volumes
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$SCRATCH/upper"
tap_ok $? "preview mounted" || tap_bail "no mount"
pid=$(union_pid "$mnt")
files=()
mapfile -t files < <(cd "$mnt" && find data indexdb -type f -name '*.bin' | sort)
held=${files[0]}
source=$vols/node0/$held
[ -f "$source" ] || source=$vols/node1/$held
tight_fd_limit "$pid"
tap_ok $? "the daemon's fd limit is $limit: its fd cache keeps $((limit / 2))"
[ "${#files[@]}" -gt "$((limit / 2))" ]
tap_ok $? "${#files[@]} files to read, more than the cache keeps"

"$PYTHON3" - "$mnt" "$source" "${files[@]}" >"$SCRATCH/result" 2>&1 <<'PY'
import os, sys
mnt, source, held, others = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
fd = os.open(os.path.join(mnt, held), os.O_RDONLY)
first = os.pread(fd, 1 << 20, 0)
os.unlink(source)
for name in others:
    with open(os.path.join(mnt, name), "rb") as f:
        f.read()
# Out of the page cache: the next read asks the daemon.
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
try:
    again = os.pread(fd, 1 << 20, 0)
    print("held:", "same bytes" if again == first else "other bytes")
except OSError as e:
    print("held:", e.strerror)
PY
tap_ok $? "root read the held file and every other file" || tap_diag "$(cat "$SCRATCH/result")"
# Snapshotted after the one change the test makes: the daemon makes none.
snapshot_volumes "$vols/node0" "$vols/node1"
grep -qx 'held: same bytes' "$SCRATCH/result"
tap_ok $? "the file held open still reads its bytes" || tap_diag "$(cat "$SCRATCH/result")"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
