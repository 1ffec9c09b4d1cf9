#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Files below lazy dirs have no node in the daemon until an op needs one
# (fs.c: the kernel knows them by their st_ino). A walk of every file costs
# the daemon little memory per file; a file known that way and then chmodded,
# written, linked, renamed away after its dir's population, or unlinked,
# behaves as on a copy, and keeps the st_ino it was first shown with.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_two
upper=$SCRATCH/upper
partition=data/small/2024_01
parts=($(cd "$mnt/$partition" && find . -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort))
[ "${#parts[@]}" -ge 3 ]
tap_ok $? "the partition has ${#parts[@]} lazy parts" || tap_done
a=$partition/${parts[0]} b=$partition/${parts[1]} c=$partition/${parts[2]}

# A chmod of a file only stat'ed so far.
ino=$(stat -c %i "$mnt/$a/values.bin")
chmod 600 "$mnt/$a/values.bin"
tap_ok $? "chmod of a file below a lazy dir, known by its st_ino alone"
tap_is "$(stat -c '%a %i' "$mnt/$a/values.bin")" "600 $ino" "... shows the new mode, and the same st_ino"
tap_is "$(stat -c %a "$upper/tree/$a/values.bin" 2>&1)" 600 "... and the upper has it"

# Known by the kernel (a held O_PATH fd: no OPEN), then its dir populated
# by a sibling's creation, the file renamed into another part, and its old
# name made again: the inode the kernel holds follows the rename.
python3 - "$mnt" "$b" "$c" "$vols" >"$SCRATCH/rename.out" 2>&1 <<'PY'
import os, sys
mnt, b, c, vols = sys.argv[1:]
old, new = os.path.join(mnt, b, "index.bin"), os.path.join(mnt, c, "index.renamed")
for volume in ("node0", "node1"):  # not through the mount: an OPEN makes a node
    if os.path.exists(os.path.join(vols, volume, b, "index.bin")):
        want = open(os.path.join(vols, volume, b, "index.bin"), "rb").read()
held = os.open(old, os.O_PATH)
ino = os.fstat(held).st_ino
open(os.path.join(mnt, b, "sibling"), "w").close()  # populates b
os.rename(old, new)                                  # populates c
with open(old, "wb") as f:
    f.write(b"another file")
checks = [
    ("the held inode keeps its st_ino", os.fstat(held).st_ino == ino),
    ("its new name shows it", os.stat(new).st_ino == ino),
    ("the old name is another file", os.stat(old).st_ino != ino),
    ("its bytes are the volume's", open(new, "rb").read() == want),
]
with open(new, "ab") as f:  # a write through the inode the kernel held
    f.write(b"tail")
os.chmod(new, 0o640)
checks.append(("a write and a chmod of it after the rename",
               open(new, "rb").read() == want + b"tail" and
               os.fstat(held).st_mode & 0o777 == 0o640))
for what, ok in checks:
    print(("ok " if ok else "FAIL ") + what)
PY
tap_ok $? "a file known by st_ino, renamed out of its populated dir" ||
	tap_diag <"$SCRATCH/rename.out"
tap_is "$(grep -c '^ok ' "$SCRATCH/rename.out")" 5 "... all five checks hold" ||
	tap_diag <"$SCRATCH/rename.out"

# Unlinked from its lazy dir while the kernel holds it: link count 0.
lazy=$(cd "$mnt" && find data/small/2024_02 -mindepth 1 -maxdepth 1 -type d | sort | head -n 1)
python3 - "$mnt" "$lazy" >"$SCRATCH/unlink.out" 2>&1 <<'PY'
import os, sys
mnt, d = sys.argv[1:]
path = os.path.join(mnt, d, "timestamps.bin")
held = os.open(path, os.O_PATH)
ino = os.fstat(held).st_ino
os.unlink(path)
st = os.fstat(held)
print("nlink %d same-ino %s gone %s" % (st.st_nlink, st.st_ino == ino, not os.path.exists(path)))
PY
tap_is "$(cat "$SCRATCH/unlink.out")" "nlink 0 same-ino True gone True" \
	"a file known by st_ino, unlinked from its lazy dir: link count 0"

# A hard link of a file only stat'ed so far, below a lazy dir.
d=$(cd "$mnt" && find data/small/2024_03 -mindepth 1 -maxdepth 1 -type d | sort | head -n 1)
ino=$(stat -c %i "$mnt/$d/metaindex.bin")
ln "$mnt/$d/metaindex.bin" "$mnt/$d/metaindex.link"
tap_ok $? "a hard link of a file known by its st_ino alone"
tap_is "$(stat -c '%h %i' "$mnt/$d/metaindex.bin") $(stat -c '%h %i' "$mnt/$d/metaindex.link")" \
	"2 $ino 2 $ino" "... both names show two links and its st_ino"

# The kernel forgets what it knew, then finds it again.
sync
echo 2 >/proc/sys/vm/drop_caches
tap_is "$(stat -c '%a %i' "$mnt/$a/values.bin")" "600 $(stat -c %i "$mnt/$a/values.bin")" \
	"after the kernel dropped its inodes, the chmodded file is still 600"

unmount_union "$mnt"
tap_ok $? "unmounted"

# Memory: a walk of every file of a set of lazy parts.
preview_of_generated_parts
files=$(find "$set_dir"/v? -type f | wc -l)
find "$mnt/indexdb" -printf '%s\n' >/dev/null # libfuse's buffers, before the count
before=$(vm_rss "$pid")
find "$mnt" -printf '%s %T@\n' >/dev/null
after=$(vm_rss "$pid")
# A node per file was 260 bytes; a part dir's node is shared by its 5 files.
check_rss_growth "$before" "$after" "$files" 120 "a walk of $files files"
tap_is "$(find "$upper/tree" -mindepth 1 | wc -l)" "$(ls -A "$mnt" | wc -l)" \
	"... and populated nothing"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
