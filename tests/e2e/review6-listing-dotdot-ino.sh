#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (listings): in a dir's listing, ".." carries its parent's inode,
# as on a plain dir and as the preview's populated dirs give it. A lazy
# dir, listed from the plan (readdir_plan), gives its own inode for ".."
# instead, so d_ino of ".." is not stat("..").st_ino there.
# Fixed: both listings give ".." the parent node's inode.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_two

# dotdot.py DIR: d_ino of DIR's "..", and the st_ino of DIR/..
cat >"$SCRATCH/dotdot.py" <<'PY'
import os, sys
d = sys.argv[1]
# scandir hides "." and "..": read the raw entries (getdents.py)
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.environ['top_srcdir'], 'tests/e2e'))
import ctypes, struct, getdents
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
buf = ctypes.create_string_buffer(65536)
n = getdents.libc.syscall(getdents.GETDENTS64, fd, buf, len(buf))
at = 0
while at < n:
    ino, _, reclen = struct.unpack_from('<QqH', buf.raw, at)
    if buf.raw[at + 19:at + reclen].split(b'\0', 1)[0] == b'..':
        print(ino, os.stat(os.path.join(d, '..')).st_ino)
    at += reclen
PY
check() {
	local what=$1 dir=$2 got
	got=$(python3 "$SCRATCH/dotdot.py" "$dir" 2>&1)
	tap_ok $? "$what: listed ${dir#"$mnt"/}" || tap_diag <<<"$got"
	tap_is "$(awk '$1 "" != $2 ""' <<<"$got")" "" "$what: d_ino of \"..\" is the parent's st_ino (d_ino st_ino: $got)"
}

check lazy "$mnt/data/small"
check "lazy partition" "$mnt/data/small/2024_03"
touch "$mnt/data/small/2024_04/made-here"
check "made populated" "$mnt/data/small/2024_04"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
