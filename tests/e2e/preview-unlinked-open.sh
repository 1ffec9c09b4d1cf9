#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A file that is open stays usable after its name is unlinked (POSIX; vmstorage
# deletes parts that readers still hold open). On a preview, a stub (a volume
# file not yet copied up) open when it is unlinked must still fstat, and a
# write to it through an fd opened for writing before the unlink must work: its
# copy-up has no name left to open, but the fd must not fail with ENOENT.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_two

parts=$(cd "$mnt" && find data/small -name index.bin | sort | head -n 2)
ro=$(printf '%s\n' "$parts" | sed -n 1p)
rw=$(printf '%s\n' "$parts" | sed -n 2p)
size=$(stat -c %s "$mnt/$ro")

# Open read-only, unlink, print fstat's size and how much a read gets.
out=$(python3 - "$mnt/$ro" <<'PY' 2>&1
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.unlink(sys.argv[1])
print(os.fstat(fd).st_size, len(os.pread(fd, 16, 0)))
PY
)
tap_is "$out" "$size 16" "an open stub unlinked still fstats (and reads)"

# Open for writing, unlink, write and read back.
out=$(python3 - "$mnt/$rw" <<'PY' 2>&1
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.unlink(sys.argv[1])
os.pwrite(fd, b"hello", 0)
print(os.pread(fd, 5, 0).decode())
PY
)
tap_is "$out" "hello" "an open stub unlinked still takes a write"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
