#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (listings): with OPENDIR answered ENOSYS a handle holds no upper
# fd; a READDIR at offset 0 (or an FSYNCDIR) opens the upper dir by the
# node's path. While the dir's parent is being renamed, between the
# rename(2) on the upper and the nodes following it, that path names
# nothing: getdents(2) and fsync(2) on a dir that exists all along, held
# open, fail with ENOENT. On a plain dir they never fail.
# Fixed: a path is built and opened under fs->renaming, which a rename
# holds for writing from the upper's rename to the nodes'.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_two

# race.py PARENT SECONDS: renames PARENT/p1 to p2 and back while another
# thread, holding PARENT/p1/d open, changes d (so the kernel drops its
# cached listing), lists it from the start and fsyncs it. Prints the
# failures of getdents and fsync.
cat >"$SCRATCH/race.py" <<'PY'
import os, sys, threading, time
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.environ['top_srcdir'], 'tests/e2e'))
import getdents
parent, seconds = sys.argv[1], float(sys.argv[2])
os.makedirs(os.path.join(parent, 'p1', 'd'))
for i in range(20):
    open(os.path.join(parent, 'p1', 'd', 'f%d' % i), 'w').close()
held = os.open(os.path.join(parent, 'p1', 'd'), os.O_RDONLY | os.O_DIRECTORY)
stop = time.time() + seconds
def rename():
    while time.time() < stop:
        os.rename(os.path.join(parent, 'p1'), os.path.join(parent, 'p2'))
        os.rename(os.path.join(parent, 'p2'), os.path.join(parent, 'p1'))
thread = threading.Thread(target=rename)
thread.start()
listings = 0
while time.time() < stop:
    try:
        os.close(os.open('x', os.O_CREAT | os.O_WRONLY, dir_fd=held))
        os.unlink('x', dir_fd=held)
    except OSError:
        pass  # not what this test is about
    os.lseek(held, 0, os.SEEK_SET)
    try:
        getdents.some(held, 65536)
    except OSError as e:
        print('getdents', os.strerror(e.errno))
    try:
        os.fsync(held)
    except OSError as e:
        print('fsync', e.strerror)
    listings += 1
thread.join()
print('listings', listings, file=sys.stderr)
PY
python3 "$SCRATCH/race.py" "$mnt/data/small" 8 >"$SCRATCH/race.out" 2>"$SCRATCH/race.err"
tap_ok $? "listed and synced a held dir while its parent was renamed" ||
	tap_diag <"$SCRATCH/race.err"
tap_diag <"$SCRATCH/race.err"
tap_is "$(grep ^getdents "$SCRATCH/race.out" | sort | uniq -c)" "" "getdents never failed"
tap_is "$(grep ^fsync "$SCRATCH/race.out" | sort | uniq -c)" "" "fsync never failed"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
