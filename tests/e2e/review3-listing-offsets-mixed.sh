#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (listings): the offsets of a preview's listing depend on the
# handle. One opened while its dir is lazy counts the plan's entries (1, 2,
# 3...); one opened after the dir was populated passes on the upper fs's
# cookies (ext4: hashes). But the kernel keeps one listing cache per dir
# (cache_readdir), filled by whichever handle read first, and serves every
# handle from it. Once that cache is dropped (a file made in the dir, then
# a listing from the start), a handle half-way through goes on at the
# daemon with an offset of the other numbering:
# - skip: a lazy handle given an ext4 cookie lists nothing more (the plan
#   has no entry that far): entries that never moved are missing;
# - duplicate: a handle on the upper given a plan position (2) has ext4
#   seek to hash 2, the start: entries come twice.
# POSIX lets entries made or removed meanwhile be listed or not, but
# every other entry exactly once.
# Fixed: every handle numbers a dir's entries alike (src/listing.h): a
# name of the plan keeps its plan position once the dir is populated, a
# new name the offset it was first given.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_two

# listing.py CASE DIR [FILE]: reads the listing of DIR with small getdents
# calls through two handles (see above); prints the names the second
# handle saw, one a line.
cat >"$SCRATCH/listing.py" <<'PY'
import os, sys
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.environ['top_srcdir'], 'tests/e2e'))
import getdents

def some(fd):
    """One getdents64 of 128 bytes: a few entries, not all."""
    return getdents.some(fd, 128)

def rest(fd):
    return getdents.rest(fd, 128)

def opendir(path):
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)

case, d = sys.argv[1], sys.argv[2]
if case == 'skip':
    handle = opendir(d)                          # lazy: plan positions
    open(os.path.join(d, 'new1'), 'w').close()   # populates d
    rest(opendir(d))                             # fills the cache: ext4 cookies
    seen = some(handle)                          # from the cache
else:
    rest(opendir(d))                             # lazy: caches plan positions
    with open(sys.argv[3], 'ab') as f:           # a copy-up populates d,
        f.write(b'x')                            # the cache stays
    handle = opendir(d)                          # on the upper: ext4 cookies
    seen = some(handle)                          # from the cache
open(os.path.join(d, 'new2'), 'w').close()       # the cache is stale...
some(opendir(d))                                 # ...and dropped here
seen += rest(handle)                             # at the daemon
print('\n'.join(seen))
PY

# check CASE DIR [FILE]
check() {
	local case=$1 dir=$2 seen twice missing
	python3 "$SCRATCH/listing.py" "$@" >"$SCRATCH/$case.seen" 2>&1
	tap_ok $? "$case: listed ${dir#"$mnt"/} through two handles" ||
		tap_diag <"$SCRATCH/$case.seen"
	seen=$(tr '\n' ' ' <"$SCRATCH/$case.seen")
	twice=$(sort "$SCRATCH/$case.seen" | uniq -d | tr '\n' ' ')
	tap_is "$twice" "" "$case: no entry listed twice (saw: $seen)"
	# Every entry but new2 (made during the listing) must be there.
	missing=$(ls -a "$dir" | grep -vx new2 | grep -vxF -f "$SCRATCH/$case.seen" | tr '\n' ' ')
	tap_is "$missing" "" "$case: no entry missing (saw: $seen)"
}

check skip "$mnt/data/small/2024_04"
part=$(cd "$mnt" && ls -d data/small/2024_03/*/values.bin | head -n 1)
check duplicate "$mnt/data/small/2024_03" "$mnt/$part"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
