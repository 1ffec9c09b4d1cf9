#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review12: a file below a lazy dir that the kernel was shown by st_ino gets
# a pinned node when its dir is populated (adopt_children), and a pinned
# node is never freed, even once the file is deleted and the kernel forgot
# it. So what vmstorage does all day (a walk of the parts, their dirs
# populated by a merge, the merged parts deleted) leaves a node per file
# walked for the daemon's life: a second such round, on other partitions,
# grows the daemon as much as the first, where freed nodes would be reused.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_generated_parts

# round PARTITION... : each file of the partitions stat'ed (a walk), each
# part dir populated (a file made and removed in it, as a merge's tmp
# does), then every part deleted, and the kernel's inodes dropped.
round() {
	python3 - "$mnt" "$@" <<'PY'
import os, shutil, sys
mnt = sys.argv[1]
for p in sys.argv[2:]:
    d = os.path.join(mnt, "data/small", p)
    parts = [os.path.join(d, x) for x in sorted(os.listdir(d)) if "_" in x or len(x) == 16]
    for part in parts:
        for name in os.listdir(part):
            os.stat(os.path.join(part, name))
    for part in parts:
        open(os.path.join(part, "probe"), "w").close()
        os.unlink(os.path.join(part, "probe"))
    for part in parts:
        shutil.rmtree(part)
PY
	sync
	echo 2 >/proc/sys/vm/drop_caches
}
rounds_reuse_memory "a walk, their dirs populated, every part deleted"
unmount_union "$mnt"
tap_ok $? "unmounted"
tap_done
