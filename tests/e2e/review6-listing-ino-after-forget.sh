#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (listings): a listing's d_ino must be the st_ino stat gives. A
# plan child of a populated dir is shown with its plan inode (1<<62 | n)
# while the kernel holds its node; once memory pressure makes the kernel
# forget it (echo 2 > drop_caches), the next LOOKUP makes a new node with
# the upper file's inode. The dir's listing, kept by the kernel
# (keep_cache + cache_readdir) since nothing in the dir changed, still
# gives the plan inode: d_ino and st_ino disagree, and the st_ino of a dir
# no one touched changed (find -inum, tar/rsync hard-link detection).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_two

cat >"$SCRATCH/inodes.py" <<'PY'
import os, sys
d = sys.argv[1]
def listed():
    return {e.name: e.inode() for e in os.scandir(d)}
def stats():
    return {n: os.lstat(os.path.join(d, n)).st_ino for n in os.listdir(d)}
before = stats()                                  # plan inodes
open(os.path.join(d, 'made-here'), 'w').close()   # populates d
held = os.open(d, os.O_RDONLY | os.O_DIRECTORY)   # keeps d's inode and cache
listed()                                          # the kernel caches it
with open('/proc/sys/vm/drop_caches', 'w') as f:  # forgets d's children
    f.write('2')
now, shown = stats(), listed()
for name in sorted(now):
    print(name, before.get(name, '-'), now[name], shown.get(name))
PY
python3 "$SCRATCH/inodes.py" "$mnt/data/small/2024_04" >"$SCRATCH/inodes.out" 2>&1
tap_ok $? "listed a populated dir before and after the kernel forgot its children" ||
	tap_diag <"$SCRATCH/inodes.out"
# name, st_ino before, st_ino now, d_ino now
tap_is "$(awk '$3 "" != $4 ""' "$SCRATCH/inodes.out")" "" "every d_ino is the st_ino stat gives"
tap_is "$(awk '$2 != "-" && $2 "" != $3 ""' "$SCRATCH/inodes.out")" "" \
	"no st_ino changed for an entry no one touched"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
