#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The writable preview for the layout generations Debian has no binary for
# (v1.96 cluster: B2, v1.150: C): replay vmstorage's startup, a merge and a
# snapshot on the mount (replay_vmstorage.py), remount, and check the state
# survived and the volumes did not change.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3
replay() { python3 "$E2E_DIR/replay_vmstorage.py" "$@"; }

for entry in v1.96.0-cluster:B2 v1.150.0-cluster:C; do
	set=${entry%%:*} gen=${entry#*:}
	vols=("$DATA_DIR/$set"/node0 "$DATA_DIR/$set"/node1 "$DATA_DIR/$set"/node2 "$DATA_DIR/$set"/node3)
	snapshot_volumes "${vols[@]}"
	mnt=$(scratch_dir "mnt-$set")
	upper="$SCRATCH/upper-$set"
	mount_union "$mnt" "${vols[@]}" -- -o upper="$upper"
	tap_ok $? "$set: mounted with an upper" || continue

	replay startup "$mnt" "$gen" >"$SCRATCH/startup-$set.json" 2>"$SCRATCH/err"
	tap_ok $? "$set: vmstorage startup replayed (lock, metadata, tables, listed parts, mmap)" ||
		tap_diag "$(cat "$SCRATCH/err")"
	parts=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(len(v) for k,v in s["parts"].items() if k.startswith("data/small")))' "$SCRATCH/startup-$set.json")
	tap_is "$parts" 16 "$set: 16 data parts listed (4 partitions x 4 volumes)"

	replay merge "$mnt" "$gen" >"$SCRATCH/merge-$set.json" 2>"$SCRATCH/err"
	tap_ok $? "$set: merge replayed (new part, atomic parts.json, .delete-this-dir removal, hard-link snapshot, dir renames)" ||
		tap_diag "$(cat "$SCRATCH/err")"
	replay verify "$mnt" "$gen" "$SCRATCH/merge-$set.json" >/dev/null 2>"$SCRATCH/err"
	tap_ok $? "$set: the merge is visible on the mount" || tap_diag "$(cat "$SCRATCH/err")"

	# statfs reports the upper's real free space (vmstorage goes read-only
	# when it looks low).
	m_free=$(stat -f -c '%a*%S' "$mnt") u_free=$(stat -f -c '%a*%S' "$upper")
	python3 -c "import sys; a,b=$m_free,$u_free; sys.exit(0 if abs(a-b) <= max(a,b)//100 + (64<<20) else 1)"
	tap_ok $? "$set: statfs shows the upper's free space"

	unmount_union "$mnt"
	tap_ok $? "$set: unmounted"
	mount_union "$mnt" "${vols[@]}" -- -o upper="$upper"
	tap_ok $? "$set: remounted with the same upper"
	replay verify "$mnt" "$gen" "$SCRATCH/merge-$set.json" >/dev/null 2>"$SCRATCH/err"
	tap_ok $? "$set: after remount the merge and the snapshot are still there" ||
		tap_diag "$(cat "$SCRATCH/err")"
	unmount_union "$mnt"
done

# Copy-up: writing into a file that comes from a volume changes the merged
# view only.
vols=("$DATA_DIR"/v1.96.0-cluster/node0 "$DATA_DIR"/v1.96.0-cluster/node1)
mnt=$(scratch_dir mnt-cow)
mount_union "$mnt" "${vols[@]}" -- -o upper="$SCRATCH/upper-cow"
tap_ok $? "mounted for the copy-up checks"
part=$(ls -d "$mnt"/data/small/2024_01/18* | head -n 1)
orig=$(sha256sum <"$part/values.bin")
size=$(stat -c %s "$part/values.bin")
printf 'XYZ' | dd of="$part/values.bin" bs=1 seek=10 conv=notrunc status=none
tap_ok $? "write into a volume file through the mount"
python3 - "$part/values.bin" "$size" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
sys.exit(0 if len(data) == int(sys.argv[2]) and data[10:13] == b"XYZ" else 1)
PY
tap_ok $? "the merged view has the new bytes and the old size"
[ "$(sha256sum <"$part/values.bin")" != "$orig" ]
tap_ok $? "the content changed in the view"
ln "$part/index.bin" "$mnt/hardlink" && [ "$(stat -c %h "$mnt/hardlink")" = 2 ]
tap_ok $? "hard link of a volume file"
rm "$part/index.bin" && [ -f "$mnt/hardlink" ] && cmp -s "$mnt/hardlink" "${vols[0]}/data/small/2024_01/$(basename "$part")/index.bin"
tap_ok $? "unlink of one name keeps the other, with the volume's bytes"
mv "$mnt/data/small/2024_01" "$mnt/moved" && [ -f "$mnt/moved/parts.json" ]
tap_ok $? "rename of a directory that comes from the volumes (no EXDEV)"
unmount_union "$mnt"

assert_volumes_unchanged "volume byte-identical after the replays"
tap_done
