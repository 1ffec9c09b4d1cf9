#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The preview turns passthrough off when the kernel refuses an upper file
# (here one below a mount inside the upper tree: another preview, too deep
# a stack). Its files open at that moment still pass through, and a new
# open of one must too: the kernel refuses (EIO) one read through the
# daemon. Off stops new registrations only (review14).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3
passthrough_volumes
mnt=$(scratch_dir mnt)
for opt in nopassthrough ""; do
	rm -rf "$SCRATCH/upper" "$SCRATCH/upper2"
	mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$SCRATCH/upper${opt:+,$opt}"
	tap_ok $? "preview mounted ${opt:+(-o $opt)}" || tap_bail "no mount"
	echo held >"$mnt/held.bin" && mkdir "$mnt/extra"
	mount_union "$SCRATCH/upper/tree/extra" "$vols/node0" "$vols/node1" -- -o "upper=$SCRATCH/upper2"
	tap_ok $? "another preview mounted inside the upper tree" || tap_bail "no mount"
	echo x >"$SCRATCH/upper/tree/extra/x.bin"
	out=$(python3 - "$mnt" <<'PY' 2>&1
import os, sys
mnt = sys.argv[1]
held = os.open(mnt + "/held.bin", os.O_RDONLY)
fd = os.open(mnt + "/extra/x.bin", os.O_RDWR)
out = [os.read(fd, 10).decode().strip()]
os.close(fd)
try:
    fd = os.open(mnt + "/held.bin", os.O_RDWR)
    out.append(os.read(fd, 10).decode().strip())
    os.close(fd)
except OSError as e:
    out.append(e.strerror)
os.close(held)
print(" ".join(out))
PY
)
	tap_is "$out" "x held" "a file held open reopens for writing after the other mount's file is opened ${opt:+(-o $opt)}"
	unmount_union "$SCRATCH/upper/tree/extra"
	tap_ok $? "unmounted the inner preview"
	unmount_union "$mnt"
	tap_ok $? "unmounted"
done
assert_volumes_unchanged
tap_done
