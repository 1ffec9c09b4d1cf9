#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The upper's filesystem reuses the inode number of a file vmstorage deleted
# while it still holds the file open (a part merged away): the new file
# must read as itself, and the open deleted one as itself, never each
# other (an alias serves the wrong bytes; vmstorage 1.79 panicked on
# "cannot close ... index.bin: input/output error" at startup, 1 run in 6).
# The upper is on a small ext4 image, which hands a freed inode number to
# the next file created.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3 mkfs.ext4

img="$SCRATCH/upper.img"
upperfs=$(scratch_dir upperfs)
truncate -s 64M "$img" && mkfs.ext4 -q -F "$img" && mount -o loop "$img" "$upperfs"
tap_ok $? "an ext4 image for the upper" || tap_done
on_exit "umount -l '$upperfs' 2>/dev/null"
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$DATA_DIR/v1.150.0-cluster/node0" -- -o upper="$upperfs/upper"
tap_ok $? "mounted" || tap_done

python3 - "$mnt" "$upperfs/upper" >"$SCRATCH/reuse.out" 2>&1 <<'PY'
import os, sys
mnt, upper = sys.argv[1], sys.argv[2]
parts = sorted(os.path.join(dp, n) for dp, dn, fn in os.walk(os.path.join(mnt, "data/small"))
               for n in fn if n == "index.bin")
victim = parts[0]
# A change in its dir populates it (upper.h): the victim is then a stub file.
os.close(os.open(victim + ".populate", os.O_CREAT | os.O_WRONLY, 0o644))
os.unlink(victim + ".populate")
want = open(victim, "rb").read()
fd = os.open(victim, os.O_RDONLY)  # held open, as vmstorage holds a merged part
ino = os.stat(os.path.join(upper, "tree", os.path.relpath(victim, mnt))).st_ino
os.unlink(victim)
hit = None
for k in range(500):
    p = os.path.join(mnt, "new%d" % k)
    with open(p, "wb") as f:
        f.write(b"new %d" % k)
    if os.stat(os.path.join(upper, "tree", "new%d" % k)).st_ino == ino:
        hit = k
        break
if hit is None:
    print("the upper's filesystem did not reuse inode %d" % ino)
    sys.exit(77)
print("inode %d of the deleted %s reused by new%d" % (ino, os.path.relpath(victim, mnt), hit))
errors = []
try:
    got = open(os.path.join(mnt, "new%d" % hit), "rb").read()
    if got != b"new %d" % hit:
        errors.append("new%d reads %r, not its own bytes" % (hit, got[:16]))
except OSError as e:
    errors.append("new%d: %s" % (hit, e))
try:
    if os.pread(fd, 64, 0) != want[:64]:
        errors.append("the open deleted file reads other bytes")
    os.close(fd)
except OSError as e:
    errors.append("the open deleted file: %s" % e)
print("\n".join(errors) or "both read right")
sys.exit(1 if errors else 0)
PY
rc=$?
tap_diag "$(cat "$SCRATCH/reuse.out")"
if [ "$rc" -eq 77 ]; then
	tap_skip "no inode reuse" "a new file with a reused inode number reads as itself"
else
	tap_ok "$rc" "a new file with a reused inode number reads as itself, the deleted one too"
fi
mountpoint -q "$mnt"
tap_ok $? "the daemon is alive"
unmount_union "$mnt"
tap_ok $? "unmounted"
tap_done
