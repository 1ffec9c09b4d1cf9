#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A passthrough open's backing id (the kernel's handle on the file it reads
# and writes itself, with no request to the daemon) is given back at the
# file's last close (passthrough_unregister, through the session): the kernel
# then holds the backing file no more, so a file removed meanwhile frees its
# space. A leaked id would hold the file, and its space, until the unmount.
# Seen on a tmpfs, for a volume file of the read-only mount (removed from the
# volume while open) and for a file of the preview's upper (unlinked through
# the mount).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3
"$VMUNIONFS" -V | grep -q "passthrough built" || tap_skip_all "no passthrough built"

volfs=$(scratch_dir volfs)
mount -t tmpfs -o size=64m tmpfs "$volfs" || tap_bail "cannot mount a tmpfs"
on_exit "umount -l '$volfs' 2>/dev/null"
copy_volume "$DATA_DIR/v1.79.5/node0" "$volfs/node0" &&
	copy_volume "$DATA_DIR/v1.79.5/node1" "$volfs/node1"
tap_ok $? "two volumes copied onto a tmpfs" || tap_done

# used_kib : what the tmpfs holds, in KiB.
used_kib() {
	df -k --output=used "$volfs" | tail -1 | tr -d ' '
}

# holding PATH SECONDS: opens PATH, reads it whole, holds it open SECONDS.
holding() {
	python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
while os.read(fd, 1 << 20):
    pass
print("open", flush=True)
time.sleep(float(sys.argv[2]))
os.close(fd)' "$1" "$2"
}

# freed BEFORE KIB: the tmpfs holds at least KIB less than BEFORE (both in KiB).
freed() {
	local now
	now=$(used_kib)
	[ $(($1 - now)) -ge "$2" ]
}

# --- read-only mount: a volume file ----------------------------------------
rel=$(cd "$volfs/node0" && find data -type f -size +64k -printf '%s %p\n' |
	sort -n | tail -1 | cut -d' ' -f2)
[ -n "$rel" ] || tap_bail "no part file over 64 KiB in node0"
size_kib=$(($(stat -c %s "$volfs/node0/$rel") / 1024))
mnt=$(scratch_dir mnt-ro)
mount_union "$mnt" "$volfs/node0" "$volfs/node1" -- -f
tap_ok $? "read-only mount" || tap_done
grep -q "passthrough: on" "$MOUNT_LOG"
tap_ok $? "passthrough is on" || tap_done

holding "$mnt/$rel" 3 >"$SCRATCH/held" &
holder=$!
wait_for 10 grep -q open "$SCRATCH/held"
tap_ok $? "$rel ($size_kib KiB) open through the mount"
before=$(used_kib)
rm "$volfs/node0/$rel"
sleep 0.5
! freed "$before" "$size_kib"
tap_ok $? "removed from the volume while open: its space is still held"
wait "$holder"
wait_for 5 freed "$before" "$size_kib"
tap_ok $? "closed: the backing file is let go, its $size_kib KiB freed" ||
	tap_diag "used $(used_kib) KiB, $before before"
unmount_union "$mnt"
tap_ok $? "unmounted"

# --- preview: a file of the upper -------------------------------------------
cp -a "$DATA_DIR/v1.79.5/node0/$rel" "$volfs/node0/$rel" || tap_bail "cannot put $rel back"
mnt=$(scratch_dir mnt-preview)
mount_union "$mnt" "$volfs/node0" "$volfs/node1" -- -f -o "upper=$volfs/upper"
tap_ok $? "preview, its upper on the tmpfs" || tap_done
before=$(used_kib)
head -c 4194304 /dev/urandom >"$mnt/new.bin"
holding "$mnt/new.bin" 0 >/dev/null
tap_ok $? "4 MiB written to a new file, read back"
wait_for 5 eval "[ \$((\$(used_kib) - before)) -ge 4096 ]"
tap_ok $? "the upper holds it"
before=$(used_kib)
rm "$mnt/new.bin"
wait_for 5 freed "$before" 4096
tap_ok $? "unlinked once closed: its 4 MiB freed" ||
	tap_diag "used $(used_kib) KiB, $before before"
unmount_union "$mnt"
tap_ok $? "unmounted"
! grep -q "cannot give backing id" "$SCRATCH"/vmunionfs.*.log
tap_ok $? "no backing id failed to go back"
tap_done
