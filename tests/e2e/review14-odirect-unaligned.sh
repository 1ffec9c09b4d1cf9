#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# O_DIRECT I/O of any alignment works through the daemon (fs.c OPEN_FLAGS
# drops O_DIRECT for that reason: requests come in libfuse's buffers). With
# passthrough the kernel would do it on the backing file, whose filesystem
# refuses an unaligned one (EINVAL), so an O_DIRECT open of a file not open
# goes through the daemon: an open file reads and writes as with
# -o nopassthrough, on the preview and on the read-only mount (review14).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

# direct_io FILE [w] : an unaligned O_DIRECT pread (100 bytes at 1), and
# pwrite (10 bytes at 3) with w: the byte counts, or the errors.
direct_io() {
	python3 - "$@" <<'PY' 2>&1
import os, sys
out = []
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
try:
    out.append(str(len(os.pread(fd, 100, 1))))
except OSError as e:
    out.append(e.strerror)
os.close(fd)
if len(sys.argv) > 2:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_DIRECT)
    try:
        out.append(str(os.pwrite(fd, b"0123456789", 3)))
    except OSError as e:
        out.append(e.strerror)
    os.close(fd)
print(" ".join(out))
PY
}

copy_two_volumes
snapshot_volumes "$vols/node0" "$vols/node1"
mnt=$(scratch_dir mnt)
head -c 65536 /dev/urandom >"$SCRATCH/random"
for opt in nopassthrough ""; do
	rm -rf "$SCRATCH/upper"
	mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$SCRATCH/upper${opt:+,$opt}"
	tap_ok $? "preview mounted ${opt:+(-o $opt)}" || tap_bail "no mount"
	cp "$SCRATCH/random" "$mnt/new.bin"
	tap_is "$(direct_io "$mnt/new.bin" w)" "100 10" \
		"an upper file: unaligned O_DIRECT read and write ${opt:+(-o $opt)}"
	unmount_union "$mnt"
	tap_ok $? "unmounted"
done

ro=$(scratch_dir ro)
f=$(cd "$vols/node0" && find data -name values.bin -size +1k | sort | head -1)
for opt in nopassthrough ""; do
	mount_union "$ro" "$vols/node0" "$vols/node1" -- ${opt:+-o $opt}
	tap_ok $? "read-only mount ${opt:+(-o $opt)}" || tap_bail "no mount"
	tap_is "$(direct_io "$ro/$f")" "100" "a volume file: unaligned O_DIRECT read ${opt:+(-o $opt)}"
	unmount_union "$ro"
	tap_ok $? "unmounted"
done
assert_volumes_unchanged
tap_done
