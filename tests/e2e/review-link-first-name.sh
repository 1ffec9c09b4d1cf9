#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The first name of a file, looked up while it had one link (its attributes
# cached for the timeout, a day by default), then hard-linked through the
# preview and truncated through the new name: stat of the first name must
# show the new size and two links. preview-hardlink-stale.sh checks the new
# name only. Known defect, not in TESTS: the kernel keeps the first name's
# attributes (FUSE link does not invalidate them, and the new name is
# another node); a fix needs the daemon to notify the kernel
# (fuse_lowlevel_notify_inval_inode of the linked node after the link).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_two
file=$(cd "$mnt" && find data/small -name values.bin | sort | head -n 1)
out=$(python3 - "$mnt/$file" "$mnt/data/small/2024_01/other-name" <<'PY' 2>&1
import os, sys
a, b = sys.argv[1], sys.argv[2]
os.stat(a)          # cached: one link
os.link(a, b)
os.truncate(b, 3)
st = os.stat(a)
print(st.st_size, st.st_nlink, len(open(a, "rb").read()))
PY
)
tap_is "$out" "3 2 3" "the first name shows the size and link count the new name gave it"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
