#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Faults of a volume under a mount: one file unreadable (EIO from the disk)
# fails that file alone, with a log line naming it; a file that became
# shorter than the plan says fails, it is never padded with zeros; a volume
# removed or unmounted while mounted fails its files cleanly and the daemon
# keeps serving the rest. The faults come from tests/fault/faultfs, a FUSE
# passthrough that fails chosen files. The mounts are -o nopassthrough: these
# are the daemon's reads (passthrough.sh has the kernel's own).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

FAULTFS="$top_builddir/tests/fault/faultfs"
[ -x "$FAULTFS" ] || tap_bail "$FAULTFS not built"

set_dir="$DATA_DIR/v1.96.0-cluster"
snapshot_volumes "$set_dir/node0" "$set_dir/node1"
copy_volume "$set_dir/node0" "$SCRATCH/src0"
copy_volume "$set_dir/node1" "$SCRATCH/src1"
part0=$(cd "$SCRATCH/src0" && ls -d data/small/2024_01/18EB*)
part1=$(cd "$SCRATCH/src0" && ls -d data/small/2024_02/18EB*)
eio="$part0/values.bin"
short="$part1/index.bin"

# faultfs_mount SOURCE MOUNTPOINT [VAR=VALUE...] : a faultfs in the
# foreground (killed at exit), its log in MOUNTPOINT.log.
faultfs_mount() {
	local src=$1 mnt=$2 pid
	shift 2
	mkdir -p "$mnt"
	env "$@" "$FAULTFS" "$src" "$mnt" -f >"$mnt.log" 2>&1 </dev/null &
	pid=$!
	on_exit "fusermount3 -uz '$mnt' 2>/dev/null; kill $pid 2>/dev/null; wait $pid 2>/dev/null"
	FAULTFS_PID=$pid
	wait_for 10 mountpoint -q "$mnt"
}

# read_ok PATH SOURCE : PATH reads and equals SOURCE byte for byte.
read_ok() {
	cmp -s "$1" "$2"
}

# read_fails PATH : reading PATH fails (no bytes made up instead).
read_fails() {
	! cat "$1" >/dev/null 2>"$SCRATCH/read.err"
}

# --- one file unreadable, one short --------------------------------------
faultfs_mount "$SCRATCH/src0" "$SCRATCH/ff0" FAULTFS_EIO="$eio" FAULTFS_SHORT="$short"
tap_ok $? "faultfs over a copy of node0 (EIO: $eio, short: $short)" || tap_done
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$SCRATCH/ff0" "$SCRATCH/src1" -- -f -o nopassthrough
tap_ok $? "mounted over the faulty volume" || tap_done
log=$MOUNT_LOG

read_fails "$mnt/$eio" && grep -q "Input/output error" "$SCRATCH/read.err"
tap_ok $? "the unreadable file fails with EIO" || tap_diag "$(cat "$SCRATCH/read.err")"
grep -q "EIO for $eio" "$SCRATCH/ff0.log"
tap_ok $? "... and the read did reach the faulty disk"
bad=0 n=0
while IFS= read -r f; do
	[ "$f" = "$eio" ] || [ "$f" = "$short" ] && continue
	src="$SCRATCH/src0/$f"
	[ -f "$src" ] || src="$SCRATCH/src1/$f"
	n=$((n + 1))
	read_ok "$mnt/$f" "$src" || { bad=$((bad + 1)); tap_diag "differs: $f"; }
done < <(cd "$mnt" && find data -type f -path '*/18EB*/*' | sort)
[ "$n" -gt 20 ] && [ "$bad" -eq 0 ]
tap_ok $? "every other data part file of both volumes reads right ($n files, $bad bad)"
# indexdb tables are merged across volumes (parts move between tables):
# read them whole, which fails on any error.
find "$mnt/indexdb" -type f -exec cat {} + >/dev/null
tap_ok $? "every indexdb file reads"
read_fails "$mnt/$eio"
tap_ok $? "the unreadable file still fails on a second read (nothing cached)"
mountpoint -q "$mnt" && ls "$mnt/data/small" >/dev/null
tap_ok $? "the daemon keeps serving"
grep -q "$(basename "$part0")/values.bin.*Input/output error" "$log"
tap_ok $? "a log line names the unreadable file" || _log_tail "$log"
# A volume file that reads shorter than it says fails, never reads as zeros.
read_fails "$mnt/$short"
tap_ok $? "a file shorter than the plan says fails to read"
grep -q "$short.*changed underneath the mount" "$log"
tap_ok $? "... and a log line names it" || _log_tail "$log"
unmount_union "$mnt"
tap_ok $? "unmounted cleanly"

# --- a volume removed while mounted --------------------------------------
copy_volume "$set_dir/node1" "$SCRATCH/gone"
mount_union "$mnt" "$SCRATCH/src0" "$SCRATCH/gone" -- -o nopassthrough
tap_ok $? "mounted over a volume about to be removed" || tap_done
first=$(cd "$SCRATCH/gone" && find data -type f -path '*/18EB*/index.bin' | sort | head -n 1)
second=$(cd "$SCRATCH/gone" && find data -type f -path '*/18EB*/values.bin' | sort | head -n 1)
exec 7<"$mnt/$first"
tap_ok $? "a file of it open before the removal"
rm -rf "$SCRATCH/gone"
read_fails "$mnt/$second"
tap_ok $? "a file of the removed volume fails to read" || tap_diag "read $(wc -c <"$mnt/$second") bytes"
# Opens do not reach the daemon (it answers them ENOSYS): an open file
# pins no volume file, and its first read finds the file gone too.
cat <&7 >/dev/null 2>"$SCRATCH/held.err"
rc=$?
[ "$rc" -ne 0 ] && grep -q "Input/output error" "$SCRATCH/held.err"
tap_ok $? "the file opened before the removal fails to read with EIO, never zeros" ||
	tap_diag "rc=$rc $(cat "$SCRATCH/held.err")"
exec 7<&-
read_ok "$mnt/$part0/index.bin" "$SCRATCH/src0/$part0/index.bin"
tap_ok $? "the other volume keeps serving"
find "$mnt" >/dev/null 2>&1 && mountpoint -q "$mnt"
tap_ok $? "the tree walks, the daemon is alive"
unmount_union "$mnt"
tap_ok $? "unmounted cleanly"

# --- a volume unmounted while mounted ------------------------------------
faultfs_mount "$SCRATCH/src1" "$SCRATCH/ff1"
mount_union "$mnt" "$SCRATCH/src0" "$SCRATCH/ff1" -- -o nopassthrough
tap_ok $? "mounted over a volume that is itself a mount" || tap_done
fusermount3 -uz "$SCRATCH/ff1" && kill "$FAULTFS_PID" && wait "$FAULTFS_PID" 2>/dev/null
! mountpoint -q "$SCRATCH/ff1"
tap_ok $? "the volume's filesystem is gone (lazy unmount, its server killed)"
f1=$(cd "$SCRATCH/src1" && find data -type f -path '*/18EB*/index.bin' | sort | head -n 1)
read_fails "$mnt/$f1"
tap_ok $? "its files fail to read" || tap_diag "read $(wc -c <"$mnt/$f1") bytes"
read_ok "$mnt/$part0/index.bin" "$SCRATCH/src0/$part0/index.bin"
tap_ok $? "the other volume keeps serving"
mountpoint -q "$mnt" && ls -R "$mnt" >/dev/null 2>&1
tap_ok $? "the daemon is alive and the tree lists"
unmount_union "$mnt"
tap_ok $? "unmounted cleanly"

assert_volumes_unchanged "sample volumes untouched"
tap_done
