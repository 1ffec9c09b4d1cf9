#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Two names of one file (a hard link made through the preview) are one inode
# on any POSIX filesystem: a write through one name is seen at once through
# the other, by stat and by an fd already open on it. The preview keys nodes
# by (parent, name), so each name is its own FUSE inode, with its own page
# cache and attributes cached for the timeout (a day by default): the other
# name keeps the old size and bytes.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_two

file=$(cd "$mnt" && find data/small -name index.bin | sort | head -n 1)
out=$(python3 - "$mnt/$file" "$mnt/metadata/other-name" <<'PY' 2>&1
import os, sys
a, b = sys.argv[1], sys.argv[2]
os.link(a, b)
fb = os.open(b, os.O_RDONLY)
os.pread(fb, 16, 0)  # cached
size = os.stat(b).st_size
fa = os.open(a, os.O_WRONLY | os.O_APPEND)
os.write(fa, b"appended")
os.close(fa)
fa = os.open(a, os.O_WRONLY)  # pwrite on an O_APPEND fd appends on Linux
os.pwrite(fa, b"NEWBYTES", 0)
os.close(fa)
print(os.stat(b).st_size - size, os.pread(fb, 8, 0).decode("latin-1"))
PY
)
tap_is "$out" "8 NEWBYTES" "the other name shows the new size and bytes, even through an fd open before"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
