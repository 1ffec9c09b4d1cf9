#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The FUSE connection aborted (`umount -f`, as /sys/fs/fuse/connections/N/abort
# and a stuck-mount recovery do) while the daemon is answering an open: its
# reply then fails, and the kernel never sends the RELEASE (the close) of that
# open. The daemon must give back what the open took (its file, its node's
# lookup, a passthrough backing id (the kernel's handle on a file it reads
# itself): through the session, as the request is freed with the failed
# reply) and exit. Under .ci/run's sanitizer phase a leak or a
# read of the freed request is a report, which fails the run; here, the
# daemon exits by itself, in time, with its usual status (a crash or a
# sanitizer's exit code is not), says nothing went wrong on the way, and
# holds nothing of the volume (it unmounts while the aborted mount is still
# there: a backing id left registered would keep its file busy).
# The open is held in the daemon by a volume on tests/fault/faultfs whose
# open of one file takes FAULTFS_SLOW_SECONDS, one faultfs per case.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse

FAULTFS="$top_builddir/tests/fault/faultfs"
[ -x "$FAULTFS" ] || tap_bail "$FAULTFS not built"

set_dir="$DATA_DIR/v1.96.0-cluster"
snapshot_volumes "$set_dir/node0" "$set_dir/node1"
copy_volume "$set_dir/node0" "$SCRATCH/src0"
slow=$(cd "$SCRATCH/src0" && ls -d data/small/2024_01/18EB*)/values.bin

faultfs_mount() {
	local mnt=$1 pid
	mkdir -p "$mnt"
	FAULTFS_SLOW="$slow" FAULTFS_SLOW_SECONDS=3 "$FAULTFS" "$SCRATCH/src0" "$mnt" -f \
		>"$mnt.log" 2>&1 </dev/null &
	pid=$!
	on_exit "fusermount3 -uz '$mnt' 2>/dev/null; kill $pid 2>/dev/null; wait $pid 2>/dev/null"
	wait_for 10 mountpoint -q "$mnt"
}

# abort_during_open WHAT [vmunionfs options]: mounts over the slow volume,
# opens the slow file, aborts the connection while the daemon waits on it.
abort_during_open() {
	local what=$1 mnt pid volume=$SCRATCH/ff-$1
	shift
	faultfs_mount "$volume"
	tap_ok $? "$what: faultfs over a copy of node0 (slow open: $slow)" || return
	mnt=$(scratch_dir "mnt-$what")
	mount_union "$mnt" "$volume" "$set_dir/node1" -- "$@"
	tap_ok $? "$what: mounted over the slow volume" || return
	pid=$(union_pid "$mnt")
	cat "$mnt/$slow" >/dev/null 2>"$SCRATCH/cat.err" &
	local reader=$!
	wait_for 10 grep -q "slow open of $slow" "$volume.log"
	tap_ok $? "$what: the daemon is in the open of the slow file"
	# FUSE's umount_begin aborts the connection; the unmount itself may
	# find the mount busy until the reader has gone.
	umount -f "$mnt" 2>/dev/null
	wait "$reader"
	local read_status=$? err
	# The error alone (the path is long): e.g. "Software caused connection abort".
	err=$(sed 's/^.*: //' "$SCRATCH/cat.err" | head -1)
	tap_ok $((read_status == 0)) "$what: the open fails (${err:-it did not: the file was read})"
	# The slow open returns after 3 s; the daemon replies, fails, exits.
	[ -n "$pid" ] && wait_for 20 eval "! _pid_alive $pid"
	tap_ok $? "$what: the daemon exits after the abort (pid $pid)"
	# -f: the daemon is this shell's child, its status ours to see: 0, as
	# for any unmount from under it (a crash is 128 + its signal; a sanitizer
	# that found something exits 1 or 23).
	wait "$pid"
	tap_is "$?" 0 "$what: ... with status 0, as unmounted"
	! grep -E "cannot give backing id|AddressSanitizer|runtime error" "${_MNT_LOG[$mnt]}"
	tap_ok $? "$what: its log reports no failure" || _log_tail "${_MNT_LOG[$mnt]}"
	fusermount3 -u "$volume" 2>"$SCRATCH/umount.err"
	tap_ok $? "$what: nothing holds the volume (its faultfs unmounts)" ||
		tap_diag "$(cat "$SCRATCH/umount.err")"
	fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
	! mountpoint -q "$mnt"
	tap_ok $? "$what: unmounted"
}

abort_during_open preview -f -o "upper=$(scratch_dir upper)"
# The read-only mount opens a volume file at an open only with passthrough
# (else the kernel opens files by itself): the abort is then the same case.
if "$VMUNIONFS" -V 2>&1 | grep -q 'passthrough built'; then
	abort_during_open read-only -f
else
	tap_skip "passthrough not built: the read-only daemon answers no open" "read-only"
fi

assert_volumes_unchanged "the volumes are untouched"
tap_done
