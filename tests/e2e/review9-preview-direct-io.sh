#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What: O_DIRECT reads and writes, 4 KiB aligned (buffer, offset and size),
# of preview files with the upper's own bytes: one created on the mount, and
# a volume file after its copy-up. The daemon opens the upper file with the
# open's O_DIRECT (fs.c OPEN_FLAGS), but reads into its thread buffer and
# writes from libfuse's, neither aligned (malloc): the upper's filesystem
# refuses each with EINVAL. (A stub reads its volume file, opened without
# O_DIRECT: that works, till the first write copies it up.)
# Why it matters: a program using O_DIRECT (databases, dd oflag=direct,
# vmstorage run with a direct-I/O option) reads and writes the same file
# on the disk of the upper, but gets EINVAL for every I/O on the preview,
# and the same file read at first, then fails after its first write.
# Right: aligned O_DIRECT I/O works on the preview as on the upper's own
# filesystem.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

# direct_io PATH : creates PATH if need be, writes 4 KiB at 0 and reads them
# back, O_DIRECT; prints "ok" or what failed.
direct_io() {
	"$PYTHON3" - "$1" <<'PY'
import mmap, os, sys
buf = mmap.mmap(-1, 4096)  # page aligned
buf[:] = b"d" * 4096
try:
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
except OSError as e:
    print("open:", e.strerror)
    sys.exit()
try:
    os.pwritev(fd, [buf], 0)
    buf[:] = b"\0" * 4096
    n = os.preadv(fd, [buf], 0)
    print("ok" if n == 4096 and buf[:] == b"d" * 4096 else "read back %d other bytes" % n)
except OSError as e:
    print(e.strerror)
PY
}

out=$(direct_io "$SCRATCH/on-disk")
[ "$out" = ok ] || tap_skip_all "the scratch dir's filesystem takes no O_DIRECT: $out"
preview_of_two
out=$(direct_io "$mnt/metadata/direct")
tap_is "$out" ok "O_DIRECT write and read of a file created on the preview"
stub=$(cd "$mnt" && find data/small -name index.bin | sort | head -n 1)
"$PYTHON3" - "$mnt/$stub" >"$SCRATCH/stub" 2>&1 <<'PY'
import mmap, os, sys
buf = mmap.mmap(-1, 4096)
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
first = os.preadv(fd, [buf], 0)
with open(sys.argv[1], "ab") as f:
    f.write(b"x")  # copied up: the upper's own bytes
try:
    print("before %d, after %d" % (first, os.preadv(fd, [buf], 0)))
except OSError as e:
    print("before %d, after: %s" % (first, e.strerror))
PY
tap_is "$(cat "$SCRATCH/stub")" "before 4096, after 4096" \
	"an O_DIRECT open of a volume file reads on after its copy-up"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
