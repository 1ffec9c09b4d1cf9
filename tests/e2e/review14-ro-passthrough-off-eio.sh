#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The read-only mount turns passthrough off when the kernel refuses a volume
# file (one volume on a stacked filesystem: here another vmunionfs mount).
# A file held open from before, passed through, must still open again, as
# with -o nopassthrough: the kernel refuses (EIO) an open of an inode in
# passthrough mode that is not, so opens are still answered (review14).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3
passthrough_volumes
below=$(scratch_dir below)
mount_union "$below" "$vols/node1"
tap_ok $? "node1 served by a read-only mount (a stacked volume)" || tap_bail "no mount"
a=$(cd "$vols/node0" && find data -name values.bin | sort | head -1)
b=$(cd "$vols/node1" && find data -name values.bin | sort | head -1)

# reopen_held MNT : holds node0's file open, opens node1's (refused as a
# backing file: passthrough off), then opens node0's file again, 3 times.
reopen_held() {
	python3 - "$1/$a" "$1/$b" <<'PY' 2>&1
import os, sys
a, b = sys.argv[1:3]
held = os.open(a, os.O_RDONLY)
os.close(os.open(b, os.O_RDONLY))
out = []
for i in range(3):
    try:
        fd = os.open(a, os.O_RDONLY)
        out.append(str(len(os.read(fd, 100))))
        os.close(fd)
    except OSError as e:
        out.append(e.strerror)
os.close(held)
print(" ".join(out))
PY
}

ro=$(scratch_dir ro)
for opt in nopassthrough ""; do
	mount_union "$ro" "$vols/node0" "$below" -- ${opt:+-o $opt}
	tap_ok $? "read-only mount of node0 and the stacked node1 ${opt:+(-o $opt)}" || tap_bail "no mount"
	tap_is "$(reopen_held "$ro")" "100 100 100" \
		"a file held open reopens after node1's file is opened ${opt:+(-o $opt)}"
	grep -q "passthrough off" "$MOUNT_LOG" && tap_diag "the log: $(grep "passthrough off" "$MOUNT_LOG")"
	unmount_union "$ro"
	tap_ok $? "unmounted"
done
unmount_union "$below"
tap_ok $? "unmounted the stacked volume"
assert_volumes_unchanged
tap_done
