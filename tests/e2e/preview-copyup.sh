#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The preview never serves zeros nor stale bytes, and a copy-up costs only
# what it keeps (issue 8, items 4, 6, 7, 10, 11, 14): every open fd sees a
# copy-up, a volume file truncated underneath fails with EIO, an upper that
# lost its xattrs is refused, a copy-up that fills the upper gives its blocks
# back, a truncation copies only what it keeps, and readers racing a copy-up
# never miss the file.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3 getfattr

vols=("$DATA_DIR"/v1.150.0-cluster/node0 "$DATA_DIR"/v1.150.0-cluster/node1)
snapshot_volumes "${vols[@]}"
mnt=$(scratch_dir mnt)
upper="$SCRATCH/upper"
# Volume files by size, largest last: path below the volume, size.
files=$(cd "${vols[0]}" && find data -name '*.bin' -size +8k -printf '%s %p\n' | sort -n)
big=$(tail -n 1 <<<"$files" | cut -d' ' -f2)
big_size=$(tail -n 1 <<<"$files" | cut -d' ' -f1)

mount_union "$mnt" "${vols[@]}" -- -f -o upper="$upper"
tap_ok $? "preview mounted" || tap_done

# --- item 7: a reader opened before the copy-up sees the new bytes
f=$(sed -n 1p <<<"$files" | cut -d' ' -f2)
"$PYTHON3" - "$mnt/$f" <<'PY' >"$SCRATCH/out" 2>&1
import os, sys
r = os.open(sys.argv[1], os.O_RDONLY)
first = os.pread(r, 16, 0)
w = os.open(sys.argv[1], os.O_RDWR)
os.pwrite(w, b"NEWBYTES", 5000)
os.close(w)
got = os.pread(r, 8, 5000)
os.close(r)
sys.exit(0 if got == b"NEWBYTES" else "reader got %r" % got)
PY
tap_ok $? "an fd opened before another fd's copy-up reads the new bytes" ||
	tap_diag "$(cat "$SCRATCH/out")"

# --- item 14: readers racing copy-ups always find the file, with its bytes
"$PYTHON3" - "$mnt" "${vols[0]}" $(sed -n '2,13p' <<<"$files" | cut -d' ' -f2) \
	<<'PY' >"$SCRATCH/out" 2>&1
import os, sys, threading
mnt, vol, names = sys.argv[1], sys.argv[2], sys.argv[3:]
errors = []
for name in names:
    want = open(os.path.join(vol, name), "rb").read(4096)
    stop = threading.Event()
    def reader():
        while not stop.is_set():
            try:
                with open(os.path.join(mnt, name), "rb") as f:
                    if f.read(4096) != want:
                        errors.append("%s: other bytes" % name)
            except OSError as e:
                errors.append("%s: %s" % (name, e))
    threads = [threading.Thread(target=reader) for _ in range(6)]
    for t in threads:
        t.start()
    with open(os.path.join(mnt, name), "r+b") as f:
        f.seek(0, 2)
        f.write(b"appended")
    stop.set()
    for t in threads:
        t.join()
print("\n".join(errors[:5]))
sys.exit(1 if errors else 0)
PY
tap_ok $? "6 readers racing a copy-up of 12 files never fail" || tap_diag "$(cat "$SCRATCH/out")"

# Two names of one stub (a snapshot's hard link) are two nodes: a copy-up
# through one must show through the other, and not be copied over again.
f=$(sed -n 14p <<<"$files" | cut -d' ' -f2)
ln "$mnt/$f" "$mnt/$f.link" &&
	printf LINKED | dd of="$mnt/$f.link" bs=1 seek=100 conv=notrunc status=none &&
	[ "$(dd if="$mnt/$f" bs=1 skip=100 count=6 status=none)" = LINKED ]
tap_ok $? "a write through a hard link of a stub shows through its other name"
printf OTHER | dd of="$mnt/$f" bs=1 seek=200 conv=notrunc status=none &&
	[ "$(dd if="$mnt/$f.link" bs=1 skip=100 count=6 status=none)" = LINKED ] &&
	[ "$(dd if="$mnt/$f.link" bs=1 skip=200 count=5 status=none)" = OTHER ]
tap_ok $? "... and a write through the other name keeps it (no second copy-up)"
unmount_union "$mnt"

# --- item 4: an upper copied without its xattrs is refused
cp -r "$upper" "$SCRATCH/copied"
"$VMUNIONFS" -o upper="$SCRATCH/copied" "${vols[@]}" "$mnt" >"$SCRATCH/out" 2>&1
rc=$?
[ $rc -ne 0 ] && ! mountpoint -q "$mnt" &&
	grep -q "copied/tree: its extended attributes are lost" "$SCRATCH/out"
tap_ok $? "mounting an upper copied by cp -r is refused, naming it" || tap_diag "$(cat "$SCRATCH/out")"
"$VMUNION" materialize -q --upper "$SCRATCH/copied" "${vols[@]}" "$SCRATCH/dest" >"$SCRATCH/out" 2>&1
rc=$?
[ $rc -ne 0 ] && [ ! -e "$SCRATCH/dest/data" ] &&
	grep -q "copied/tree: its extended attributes are lost" "$SCRATCH/out"
tap_ok $? "materialize --upper of it is refused too" || tap_diag "$(cat "$SCRATCH/out")"
cp -a "$upper" "$SCRATCH/kept"
mount_union "$mnt" "${vols[@]}" -- -o upper="$SCRATCH/kept"
tap_ok $? "an upper copied with its xattrs (cp -a) mounts"
unmount_union "$mnt"

# --- item 6: a volume file truncated underneath fails with EIO, named
vol0="$SCRATCH/vol0"
copy_volume "${vols[0]}" "$vol0"
mount_union "$mnt" "$vol0" "${vols[1]}" -- -f -o upper="$SCRATCH/upper6"
tap_ok $? "preview of a copied volume mounted"
truncate -s -100 "$vol0/$big"
tap_fails "reading a volume file truncated underneath fails" sh -c "cat '$mnt/$big' >/dev/null"
grep -q "Input/output error" "$TAP_OUT"
tap_ok $? "... with EIO" || tap_diag "$(cat "$TAP_OUT")"
grep -q "vol0/$big: $((big_size - 100)) bytes, but the plan says $big_size" "$MOUNT_LOG"
tap_ok $? "... and a log line naming the volume file" || _log_tail "$MOUNT_LOG"
unmount_union "$mnt"

# --- items 10, 11: a copy-up that does not fit, and truncations, on a
# small tmpfs upper (smaller than the largest volume file)
small="$SCRATCH/small"
mkdir -p "$small"
if mount -t tmpfs -o size=$((big_size / 1024 - 16))k tmpfs "$small"; then
	on_exit "umount '$small'"
	mount_union "$mnt" "${vols[@]}" -- -f -o upper="$small/upper"
	tap_ok $? "preview with an upper on a $((big_size / 1024 - 16)) KiB tmpfs" || tap_done
	# Its lazy dirs are populated first (a chmod to its own mode), so that
	# what the copy-up takes is all that is measured.
	chmod "$(stat -c %a "$mnt/$big")" "$mnt/$big"
	used=$(df --output=used "$small" | tail -n 1)
	tap_fails "writing into a volume file larger than the upper fails" \
		dd if=/dev/zero of="$mnt/$big" bs=1 count=1 conv=notrunc
	grep -q "No space left" "$TAP_OUT"
	tap_ok $? "... with ENOSPC" || tap_diag "$(cat "$TAP_OUT")"
	grep -q "copy-up of .*$big into the upper failed: No space left" "$MOUNT_LOG"
	tap_ok $? "... and a log line naming the file" || _log_tail "$MOUNT_LOG"
	tap_is "$(df --output=used "$small" | tail -n 1)" "$used" "... its blocks are given back"
	cmp -s "$mnt/$big" "${vols[0]}/$big" && getfattr -n user.vmunionfs.lower \
		"$small/upper/tree/$big" >/dev/null 2>&1
	tap_ok $? "... and it is still the stub of its volume file"
	truncate -s 1000 "$mnt/$big"
	tap_ok $? "truncating it to 1000 bytes fits (only the kept bytes are copied)"
	cmp -s "$mnt/$big" <(head -c 1000 "${vols[0]}/$big") && [ "$(stat -c %s "$mnt/$big")" = 1000 ]
	tap_ok $? "... and keeps the first 1000 bytes"
	f=$(tail -n 2 <<<"$files" | head -n 1 | cut -d' ' -f2)
	truncate -s 0 "$mnt/$f"
	tap_ok $? "truncate -s 0 of another large volume file fits"
	tap_is "$(stat -c %s "$mnt/$f")" 0 "... and empties it"
	unmount_union "$mnt"
else
	tap_skip "cannot mount a tmpfs" "copy-up into a full upper"
fi

# --- item 11: copy-ups of different files run in parallel: a 1-byte write
# does not wait behind the copy-up of a 400 MB file.
vol2="$SCRATCH/vol2"
copy_volume "${vols[0]}" "$vol2"
large=$(cd "$vol2" && find data/small -name values.bin | sort | head -n 1)
small=$(cd "$vol2" && find data/small -name index.bin | sort | head -n 1)
truncate -s +400M "$vol2/$large"
mount_union "$mnt" "$vol2" -- -o nocheck -o upper="$SCRATCH/upper11"
tap_ok $? "preview of a volume with a 400 MB file"
t0=$EPOCHREALTIME
printf x | dd of="$mnt/$large" bs=1 count=1 conv=notrunc status=none &
big_pid=$!
sleep 0.3
t1=$EPOCHREALTIME
printf x | dd of="$mnt/$small" bs=1 count=1 conv=notrunc status=none
t2=$EPOCHREALTIME
wait $big_pid
t3=$EPOCHREALTIME
us() { echo $(( (${2/./} - ${1/./}) )); }
small_us=$(us "$t1" "$t2")
big_us=$(us "$t0" "$t3")
[ "$small_us" -lt $((big_us / 3)) ]
tap_ok $? "a small copy-up took ${small_us} us beside a large one of ${big_us} us"
unmount_union "$mnt"

assert_volumes_unchanged "volume byte-identical after the copy-ups"
tap_done
