#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# -o readahead=KIB (default 1024): the mount's read-ahead, so that a
# sequential read of a part costs one request through the daemon per MiB
# instead of one per 128 KiB (issue 11: first read). Counted in the request
# trace (-d). Also: 0 leaves the kernel's, an umount right after the mount
# is not refused as busy, bad values are refused before
# anything is mounted, and where /sys is read-only (a container) the mount
# still works and its log says why the read-ahead stayed.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd unshare
require_cmd strace

vol="$SCRATCH/vols/node0"
copy_volume "$DATA_DIR/v1.79.5/node0" "$vol" || tap_bail "cannot copy the volume"
part=$(cd "$vol" && find data/small -name values.bin | sort | head -n 1)
head -c $((6 << 20)) /dev/urandom >>"$vol/$part" || tap_bail "cannot pad $part"
size=$(stat -c %s "$vol/$part")
snapshot_volumes "$vol"

# read_through MNT: a cold sequential read of the padded file through MNT
# (1 MiB reads); fails if its bytes differ. READS: the READ requests it took.
read_through() {
	local before rc
	before=$(grep -ac 'opcode: READ' "$MOUNT_LOG")
	dd if="$1/$part" bs=1M status=none | cmp -s - "$vol/$part"
	rc=$?
	READS=$(($(grep -ac 'opcode: READ' "$MOUNT_LOG") - before))
	return "$rc"
}

mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vol" -- -d -o nopassthrough # the READs the daemon gets
tap_ok $? "read-only mount, default read-ahead" || tap_bail "no mount"
wait_for 10 [ "$(read_ahead_kb_of "$mnt")" = 1024 ]
tap_ok $? "the mount reads ahead 1024 KiB (read_ahead_kb $(read_ahead_kb_of "$mnt"))"
read_through "$mnt"
tap_ok $? "the padded file reads back its bytes"
most=$((size / (1 << 20) + 2))
[ "$READS" -le "$most" ]
tap_ok $? "a sequential read of $size bytes took $READS READ requests (at most $most)"
unmount_union "$mnt"
tap_ok $? "unmounted"

mount_union "$mnt" "$vol" -- -d -o readahead=0,nopassthrough
tap_ok $? "mounted with readahead=0" || tap_bail "no mount"
knob=$(read_ahead_kb_of "$mnt")
read_through "$mnt"
tap_ok $? "the padded file reads back its bytes"
[ "$knob" != 1024 ] && [ "$READS" -gt $((size / (256 << 10))) ]
tap_ok $? "readahead=0 leaves the kernel's: read_ahead_kb $knob, $READS READ requests"
unmount_union "$mnt"

mount_union "$mnt" "$vol" -- -o readahead=256,upper="$SCRATCH/upper"
tap_ok $? "preview mounted with readahead=256" || tap_bail "no mount"
wait_for 10 [ "$(read_ahead_kb_of "$mnt")" = 256 ]
tap_ok $? "the preview reads ahead 256 KiB (read_ahead_kb $(read_ahead_kb_of "$mnt"))"
unmount_union "$mnt"

for bad in abc -1 1048577 ''; do
	out=$("$VMUNIONFS" -o "readahead=$bad" "$vol" "$mnt" 2>&1)
	rc=$?
	tap_is "$rc" 64 "readahead=$bad is refused as wrong usage"
	case "$out" in
	*"readahead=$bad: give KiB from 0 to 1048576"*) tap_ok 0 "and the message names it" ;;
	*) tap_ok 1 "and the message names it: $out" ;;
	esac
done
mountpoint -q "$mnt"
tap_ok $((!$?)) "nothing was mounted by a refused option"

# Setting the read-ahead holds nothing open on the mount: an umount right
# after the mount never finds it busy. It did when a thread stat'ed the
# mountpoint, which waits for the daemon to answer; strace holds back each
# new thread of the daemon, its first answer with them (not its reads:
# a sanitizer's start makes hundreds).
log="$SCRATCH/slow.log"
# LeakSanitizer cannot run under ptrace.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -o /dev/null -e trace=clone,clone3 \
	-e inject=clone:delay_exit=2000000 -e inject=clone3:delay_exit=2000000 \
	"$VMUNIONFS" -f "$vol" "$mnt" >"$log" 2>&1 </dev/null &
daemon=$!
on_exit "kill $daemon 2>/dev/null; umount -l '$mnt' 2>/dev/null"
wait_for 20 _mnt_is_mounted "$mnt"
tap_ok $? "a slowed daemon mounted" || tap_bail "no mount: $(cat "$log")"
sleep 0.5 # a thread of the daemon would have the mountpoint open by now
umount "$mnt" 2>"$SCRATCH/umount.log"
tap_ok $? "umount (not lazy) before it answers: not busy" || tap_diag "$(cat "$SCRATCH/umount.log")"
wait_for 20 eval "! kill -0 $daemon 2>/dev/null"
tap_ok $? "the daemon exits" || umount -l "$mnt" 2>/dev/null

# A container's /sys is read-only: the mount works, its log says why.
log="$SCRATCH/ro-sys.log"
unshare -m --propagation private bash -c '
	mount -o bind,remount,ro /sys 2>/dev/null || mount -t sysfs -o ro sysfs /sys || exit 3
	"$1" -f "$2" "$3" >"$4" 2>&1 &
	for i in $(seq 100); do mountpoint -q "$3" && break; sleep 0.1; done
	ls "$3/data" >/dev/null
	for i in $(seq 100); do grep -q "read-ahead" "$4" && break; sleep 0.1; done
	fusermount3 -u "$3"
	wait
' _ "$VMUNIONFS" "$vol" "$mnt" "$log"
tap_is "$?" 0 "with a read-only /sys the mount still works and unmounts cleanly"
grep -q "cannot set the read-ahead to 1024 KiB: /sys/class/bdi/.*/read_ahead_kb: Read-only file system" "$log"
tap_ok $? "its log says why the read-ahead stayed" || tap_diag "$(cat "$log")"
mountpoint -q "$mnt"
tap_ok $((!$?)) "and nothing stays mounted"

assert_volumes_unchanged
tap_done
