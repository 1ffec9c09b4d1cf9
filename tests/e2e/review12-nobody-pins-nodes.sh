#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review12: an open of a file below a lazy dir makes its node pinned
# (node_promote), never freed, though the kernel forgets the file: nobody,
# through allow_other, reading each file once, leaves a node per file for
# the daemon's life. A second such round, on other partitions, grows the
# daemon as much as the first, where nodes freed at the kernel's forget
# would be reused (17 bytes per file before 15b1897, 348 on it).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3 setpriv

chmod 0755 "$SCRATCH"
# a python3 that nobody may run (not a shim below /root)
nobody_python=/usr/bin/python3
[ -x "$nobody_python" ] || nobody_python=$PYTHON3
preview_of_generated_parts -o allow_other

# round PARTITION... : nobody reads a byte of every file of the partitions'
# parts; then the kernel drops its inodes.
round() {
	as_nobody "$nobody_python" - "$mnt" "$@" <<'PY' || return 1
import os, sys
mnt = sys.argv[1]
for p in sys.argv[2:]:
    d = os.path.join(mnt, "data/small", p)
    for part in sorted(os.listdir(d)):
        if os.path.isdir(os.path.join(d, part)):
            for name in os.listdir(os.path.join(d, part)):
                with open(os.path.join(d, part, name), "rb") as f:
                    f.read(1)
PY
	echo 2 >/proc/sys/vm/drop_caches
}
rounds_reuse_memory "nobody reading each file once"
tap_is "$(find "$upper/tree/data/small" -mindepth 2 2>/dev/null | wc -l)" 0 "... and populated nothing"
unmount_union "$mnt"
tap_ok $? "unmounted"
tap_done
