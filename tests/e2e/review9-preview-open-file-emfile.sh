#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What: root holds a file of the preview open and has read it; the daemon
# then runs out of fds (its limit lowered under what it holds, as when a
# user of an allow_other preview holds every fd it can get: files with the
# upper's own bytes still cost one each). Another open fails, which is
# expected. Since the fd cache (fs.c volume_fds), an open file holds no fd
# of its volume file: the failed open empties the cache, and root's next
# read of the file it holds open needs a new fd.
# Why it matters: read(2) of a file that is open and was readable fails
# (EMFILE, which read never returns on a local file system) for as long as
# someone else keeps the daemon out of fds; before the cache, each open
# held its fd, and reads of open files went on.
# Right: a file open and read once is still read whole, whatever opens fail
# after.
# Status: kept out of TESTS, as the behaviour README describes. Holding an
# fd per open volume file is what let one user take every fd of the daemon
# (review8-preview-fd-many-files); the cache bounds them, and a read then
# needs an fd. Out of fds, such a read fails with EMFILE, once a second
# logged, and reads on once an fd is free.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd prlimit python3
preview_of_two
pid=$(union_pid "$mnt")
files=()
mapfile -t files < <(cd "$mnt" && find data/small -name index.bin | sort | head -n 2)
held=${files[0]} other=${files[1]}

hard=$(hard_fd_limit "$pid")
"$PYTHON3" - "$mnt/$held" "$mnt/$other" "$pid" "$hard" >"$SCRATCH/result" 2>&1 <<'PY'
import os, subprocess, sys
held, other, pid, hard = sys.argv[1:]
fd = os.open(held, os.O_RDONLY)
first = os.pread(fd, 1 << 20, 0)
# Below the fds the daemon holds: it gets no new fd until restored.
subprocess.run(["prlimit", "--pid", pid, "--nofile=4:" + hard], check=True)
try:
    os.close(os.open(other, os.O_RDONLY))
    print("other: opened")
except OSError as e:
    print("other:", e.strerror)
# Out of the page cache: the next read asks the daemon.
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
try:
    again = os.pread(fd, 1 << 20, 0)
    print("held:", "same bytes" if again == first else "other bytes")
except OSError as e:
    print("held:", e.strerror)
subprocess.run(["prlimit", "--pid", pid, "--nofile=" + hard + ":" + hard], check=True)
PY
tap_ok $? "root held a file open while the daemon ran out of fds" || tap_diag "$(cat "$SCRATCH/result")"
grep -qx 'other: Too many open files' "$SCRATCH/result"
tap_ok $? "another open fails while the daemon has no fd" || tap_diag "$(cat "$SCRATCH/result")"
grep -qx 'held: same bytes' "$SCRATCH/result"
tap_ok $? "the file held open still reads its bytes" || tap_diag "$(cat "$SCRATCH/result")"
cmp -s "$mnt/$held" "$vols/node0/$held" || cmp -s "$mnt/$held" "$vols/node1/$held"
tap_ok $? "with fds again, the file reads as a volume's"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
