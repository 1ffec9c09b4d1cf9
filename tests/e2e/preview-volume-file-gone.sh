#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A volume file removed, shrunk or grown underneath a preview: a stub and a
# file below a lazy dir read their volume file through the daemon's fd
# cache. One removed fails with EIO (as on the read-only mount), one shorter
# than the plan says fails, never reads as zeros, and the log names each;
# the other files read right and the daemon keeps serving. The faults are
# made on the test's own copies of the volumes.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse

vols="$SCRATCH/vols"
copy_volume "$DATA_DIR/v1.79.5/node0" "$vols/node0" &&
	copy_volume "$DATA_DIR/v1.79.5/node1" "$vols/node1"
tap_ok $? "copied two volumes" || tap_bail "cannot copy the sample volumes"
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -f -o "upper=$SCRATCH/upper"
tap_ok $? "preview mounted" || tap_bail "no mount"
log=$MOUNT_LOG

# Part files of node0 that the mount shows under the same path: one for
# each fault, below a lazy dir, and as a stub of a populated one.
mapfile -t files < <(cd "$vols/node0" && find data -type f -name '*.bin' -size +1k | sort |
	while read -r f; do [ -f "$mnt/$f" ] && echo "$f"; done)
[ "${#files[@]}" -ge 8 ]
tap_ok $? "node0 has ${#files[@]} part files shown under their own path" || tap_done
stubdir=$(dirname "${files[4]}")
touch "$mnt/$stubdir/.p" && rm "$mnt/$stubdir/.p"
getfattr -n user.vmunionfs.lower "$SCRATCH/upper/tree/${files[4]}" >/dev/null 2>&1
tap_ok $? "a part dir populated: ${files[4]} is a stub in the upper"

# fault NAME FILE CHANGE: CHANGE the volume file, then read it through the
# preview: EIO, no bytes made up, a log line naming it.
fault() {
	local name=$1 file=$2 change=$3
	cp "$vols/node0/$file" "$SCRATCH/orig"
	$change "$vols/node0/$file"
	! cat "$mnt/$file" >"$SCRATCH/out" 2>"$SCRATCH/err" && grep -q "Input/output error" "$SCRATCH/err"
	tap_ok $? "$name: reading $file fails with EIO" || tap_diag "$(cat "$SCRATCH/err")"
	cmp -s -n "$(stat -c %s "$SCRATCH/out")" "$SCRATCH/out" "$SCRATCH/orig"
	tap_ok $? "$name: what was read, if anything, is the file's own bytes"
	wait_for 5 grep -q "$(basename "$(dirname "$file")")/$(basename "$file").*changed underneath the mount" "$log"
	tap_ok $? "$name: a log line names it" || _log_tail "$log"
}
shrink() { truncate -s 100 "$1"; }
# The open checks the file; a file shrunk after the open fails at the read.
fault "lazy, removed" "${files[0]}" rm
fault "lazy, shrunk" "${files[1]}" shrink
fault "stub, removed" "${files[4]}" rm
exec 7<"$mnt/${files[5]}"
shrink "$vols/node0/${files[5]}"
! cat <&7 >"$SCRATCH/out" 2>"$SCRATCH/err"
tap_ok $? "stub, shrunk while open: the read fails" || tap_diag "$(cat "$SCRATCH/err")"
exec 7<&-

bad=0
for f in "${files[@]:6}"; do
	cmp -s "$mnt/$f" "$vols/node0/$f" || { bad=$((bad + 1)); tap_diag "differs: $f"; }
done
[ "$bad" -eq 0 ]
tap_ok $? "the other part files read right ($((${#files[@]} - 6)) files)"
stat "$mnt/${files[0]}" >/dev/null
tap_ok $? "a removed volume file still stats (the plan's attributes)"
unmount_union "$mnt"
tap_ok $? "unmounted"
tap_done
