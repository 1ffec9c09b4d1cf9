#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Files unlinked from a lazy dir of the preview (fs.c, "files unlinked from
# lazy dirs"): vmstorage deletes every part it merged, so an unlink takes the
# file out of what the dir shows without populating it, and an rmdir of the
# emptied dir needs no population. The upper learns of it when the dir is
# synced, within 3 s (REMOVED_FLUSH_SECONDS and the flusher's tick), or at unmount; a daemon killed
# before that brings the files back whole, never half a dir.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3 getfattr

preview_of_two
upper=$SCRATCH/upper

# parts_of PARTITION : the part dirs of a partition of the mount, sorted.
parts_of() {
	(cd "$mnt/$1" && find . -mindepth 1 -maxdepth 1 -type d -name '*_*' -printf '%f\n' | sort)
}
# is_lazy DIR : DIR of the upper tree carries the lazy mark.
is_lazy() {
	getfattr -n user.vmunionfs.plan --only-values "$upper/tree/$1" >/dev/null 2>&1
}

partition=data/small/2024_01
mapfile -t parts < <(parts_of "$partition")
partition4=data/small/2024_04
mapfile -t parts4 < <(parts_of "$partition4")
[ "${#parts[@]}" -ge 2 ] && [ "${#parts4[@]}" -ge 2 ]
tap_ok $? "two partitions of 2 parts or more" || tap_done
p1=$partition/${parts[0]} p2=$partition/${parts[1]} p3=$partition4/${parts4[0]}
sum_values=$(sha256sum <"$mnt/$p2/values.bin")

t_rm=$(date +%s)
rm "$mnt/$p1/timestamps.bin"
tap_ok $? "unlinked a file from a lazy part dir"
[ ! -e "$mnt/$p1/timestamps.bin" ] && ! ls "$mnt/$p1" | grep -qx timestamps.bin
tap_ok $? "... it is gone from lookups and from the listing"
tap_is "$(ls "$mnt/$p1" | wc -l)" 4 "... the other files are still listed"
is_lazy "$p1" && [ -z "$(ls -A "$upper/tree/$p1")" ]
tap_ok $? "... and its dir was not populated (it is lazy, its upper dir empty)"
[ "$(stat -c %Y "$mnt/$p1")" -ge "$t_rm" ] && [ "$(stat -c %Z "$mnt/$p1")" -ge "$t_rm" ]
tap_ok $? "... its dir's mtime and ctime are the unlink's" || stat "$mnt/$p1" | tap_diag
err=$(rm "$mnt/$p1/timestamps.bin" 2>&1)
tap_ok $(($? == 0)) "a second unlink of it fails"
grep -q "No such file" <<<"$err"
tap_ok $? "... with ENOENT" || tap_diag "$err"

# An fd open on the file when it is unlinked still reads the volume's bytes.
out=$(python3 - "$mnt/$p2/values.bin" <<'PY' 2>&1
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.unlink(sys.argv[1])
data = b""
while True:
    chunk = os.read(fd, 1 << 16)
    if not chunk:
        break
    data += chunk
print(os.fstat(fd).st_nlink, hashlib.sha256(data).hexdigest() + "  -")
PY
)
tap_is "$out" "0 $sum_values" "an fd open on an unlinked lazy file: link count 0, the volume's bytes"

rm -r "$mnt/$p3"
tap_ok $? "rm -r of a whole lazy part dir"
[ ! -e "$mnt/$p3" ] && [ ! -e "$upper/tree/$p3" ]
tap_ok $? "... it is gone from the mount and from the upper"
tap_is "$(parts_of "$partition4" | wc -l)" $((${#parts4[@]} - 1)) "... the partition lists one part less"
is_lazy "$partition4/${parts4[1]}"
tap_ok $? "... its sibling parts stay lazy"

err=$(rmdir "$mnt/$p1" 2>&1)
tap_ok $(($? == 0)) "rmdir of a lazy dir that still shows files fails"
grep -q "not empty" <<<"$err"
tap_ok $? "... with ENOTEMPTY" || tap_diag "$err"

echo new >"$mnt/$p1/timestamps.bin"
tap_is "$(cat "$mnt/$p1/timestamps.bin" 2>&1)" new "a file made again under an unlinked name holds the new bytes"
tap_is "$(ls "$mnt/$p1" | wc -l)" 5 "... and is listed once"

# Within REMOVED_FLUSH_SECONDS the upper holds the dir without the file.
wait_for 10 eval "! is_lazy '$p2'"
tap_ok $? "the flusher populates a dir a file was unlinked from" || tap_done
[ ! -e "$upper/tree/$p2/values.bin" ] && [ -e "$upper/tree/$p2/index.bin" ]
tap_ok $? "... without the unlinked file, with the others" || ls -la "$upper/tree/$p2" | tap_diag

# An fsync of the dir tells the upper at once.
partition2=data/small/2024_02
mapfile -t parts2 < <(parts_of "$partition2")
q1=$partition2/${parts2[0]} q2=$partition2/${parts2[1]}
python3 - "$mnt/$q1" <<'PY'
import os, sys
os.unlink(os.path.join(sys.argv[1], "index.bin"))
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
os.fsync(fd)
PY
tap_ok $? "unlinked a file, then fsynced its lazy dir"
! is_lazy "$q1" && [ ! -e "$upper/tree/$q1/index.bin" ] && [ -e "$upper/tree/$q1/values.bin" ]
tap_ok $? "... the upper holds the dir without the file as fsync returns"

# An unmount right after an unlink tells the upper too.
rm "$mnt/$q2/metaindex.bin" && unmount_union "$mnt"
tap_ok $? "unlinked a file and unmounted at once"
! is_lazy "$q2" && [ ! -e "$upper/tree/$q2/metaindex.bin" ]
tap_ok $? "... the upper holds the dir without the file"
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "remounted" || tap_done
[ ! -e "$mnt/$q2/metaindex.bin" ] && [ ! -e "$mnt/$p2/values.bin" ] && [ ! -e "$mnt/$p3" ] &&
	[ ! -e "$mnt/$q1/index.bin" ] && [ "$(cat "$mnt/$p1/timestamps.bin")" = new ]
tap_ok $? "... every unlink, rmdir and new file is still there"

# A daemon killed before the upper learned of an unlink: the file is back,
# whole (as on a filesystem that crashed before committing the unlink).
partition3=data/small/2024_03
r1=$partition3/$(parts_of "$partition3" | head -n 1)
sum_index=$(sha256sum <"$mnt/$r1/index.bin")
pids=$(union_pids "$mnt")
rm "$mnt/$r1/index.bin" && kill -9 $pids
tap_ok $? "unlinked a file and killed the daemon at once"
# Until it is gone: a killed daemon still holds the upper's lock while the
# kernel tears it down, and the remount would be refused ("in use").
wait_for 30 eval "! _pid_alive ${pids%% *}"
unmount_union "$mnt" 2>/dev/null
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "remounted" || tap_done
tap_is "$(sha256sum <"$mnt/$r1/index.bin" 2>&1)" "$sum_index" "... the file is back with its bytes"
tap_is "$(ls "$mnt/$r1" | wc -l)" 5 "... and its dir shows every file"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
