#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (listings): with OPENDIR answered ENOSYS a handle holds no upper
# fd; a READDIR at offset 0 opens the upper dir by the node's path. While
# the dir's parent is swapped with another (renameat2 RENAME_EXCHANGE),
# between the swap on the upper and the nodes following it, that path names
# the other dir: a handle held on p1/d lists p2/d's names, and the daemon
# numbers them into p1/d's listing, which the kernel then keeps. A plain
# dir never lists another's entries. (A create by the held fd lands in the
# other dir the same way: op_create resolves the path too.)
# Fixed: a path is built and opened under fs->renaming, which a rename
# holds for writing from the upper's rename to the nodes'.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_two

# swap.py PARENT SECONDS: p1/d holds a0..a4, p2/d b0..b4; swaps p1 and p2
# while listing the dir held open as p1/d from the start (a name made and
# removed by the held fd first, so that the kernel drops its cached
# listing). Prints each listing that had a name of the other dir.
cat >"$SCRATCH/swap.py" <<'PY'
import ctypes, os, sys, threading, time
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.environ['top_srcdir'], 'tests/e2e'))
import getdents
RENAME_EXCHANGE = 2
libc = ctypes.CDLL(None, use_errno=True)
parent, seconds = sys.argv[1], float(sys.argv[2])
for sub, prefix in (('p1', 'a'), ('p2', 'b')):
    os.makedirs(os.path.join(parent, sub, 'd'))
    for i in range(5):
        open(os.path.join(parent, sub, 'd', '%s%d' % (prefix, i)), 'w').close()
held = os.open(os.path.join(parent, 'p1', 'd'), os.O_RDONLY | os.O_DIRECTORY)
stop = time.time() + seconds
def swap():
    one, two = os.path.join(parent, 'p1').encode(), os.path.join(parent, 'p2').encode()
    while time.time() < stop:
        if libc.renameat2(-100, one, -100, two, RENAME_EXCHANGE) < 0:
            raise OSError(ctypes.get_errno(), 'renameat2')
thread = threading.Thread(target=swap)
thread.start()
listings = 0
while time.time() < stop:
    try:
        os.close(os.open('x', os.O_CREAT | os.O_WRONLY, dir_fd=held))
        os.unlink('x', dir_fd=held)
    except OSError:
        pass  # not what this test is about
    os.lseek(held, 0, os.SEEK_SET)
    names = getdents.some(held, 65536)
    if any(name.startswith('b') for name in names):
        print(' '.join(names))
    listings += 1
thread.join()
print('listings', listings, file=sys.stderr)
PY
python3 "$SCRATCH/swap.py" "$mnt/data/small" 8 >"$SCRATCH/swap.out" 2>"$SCRATCH/swap.err"
tap_ok $? "listed a held dir while its parent was swapped with another" ||
	tap_diag <"$SCRATCH/swap.err"
tap_diag <"$SCRATCH/swap.err"
tap_is "$(wc -l <"$SCRATCH/swap.out")" 0 \
	"no listing of the held dir had the other dir's names (e.g. $(head -n 1 "$SCRATCH/swap.out"))"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
