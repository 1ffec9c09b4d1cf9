#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A tree far larger than the daemon's fd limit: every entry can be looked up
# and stat'ed (the daemon keeps file handles, not an fd per inode), read-only
# and with an upper.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3 prlimit
export MOUNT_TIMEOUT=60

vols="$SCRATCH/vols"
python3 - "$vols" <<'PY'
import json, os, sys
root = sys.argv[1]
meta = b'{"RowsCount":2,"BlocksCount":1,"MinTimestamp":1,"MaxTimestamp":2,"MinDedupInterval":0}'
for v in range(2):
    base = 0x18EB000000000000 + v * 0x100000
    for month in ("2024_01", "2024_02"):
        pdir = os.path.join(root, "node%d" % v, "data/small", month)
        os.makedirs(pdir)
        os.makedirs(os.path.join(root, "node%d" % v, "data/big", month))
        names = []
        for i in range(300):
            name = "%016X" % (base + i + (0 if month == "2024_01" else 5000))
            names.append(name)
            os.mkdir(os.path.join(pdir, name))
            for f in ("metaindex.bin", "index.bin", "timestamps.bin", "values.bin"):
                open(os.path.join(pdir, name, f), "wb").write(f.encode())
            open(os.path.join(pdir, name, "metadata.json"), "wb").write(meta)
        json.dump({"Small": names, "Big": []}, open(os.path.join(pdir, "parts.json"), "w"))
    for t in range(3):
        tdir = os.path.join(root, "node%d" % v, "indexdb", "%016X" % (base + t))
        os.makedirs(tdir)
        open(os.path.join(tdir, "parts.json"), "w").write("[]")
PY
tap_ok $? "generated two volumes with 1200 parts, 6000 files"
snapshot_volumes "$vols/node0" "$vols/node1"

for mode in ro upper; do
	mnt=$(scratch_dir "mnt-$mode")
	extra=()
	[ "$mode" = upper ] && extra=(-- -o upper="$SCRATCH/upper" -o nocheck)
	[ "$mode" = ro ] && extra=(-- -o nocheck)
	mount_union "$mnt" "$vols/node0" "$vols/node1" "${extra[@]}"
	tap_ok $? "$mode: mounted" || continue
	pid=$(union_pids "$mnt")
	prlimit --pid "${pid%% *}" --nofile=200:200
	tap_ok $? "$mode: daemon limited to 200 open files"
	count=$(find "$mnt/data" -type f -name '*.bin' 2>"$SCRATCH/find.err" | wc -l)
	tap_is "$count" 4800 "$mode: find sees every part file" || tap_diag "$(head -3 "$SCRATCH/find.err")"
	find "$mnt/data" -type f -print0 | xargs -0 stat -c %s >/dev/null 2>"$SCRATCH/stat.err"
	tap_ok $? "$mode: stat of every file succeeds" || tap_diag "$(head -3 "$SCRATCH/stat.err")"
	find "$mnt/data" -type f -name metadata.json -print0 | xargs -0 cat | grep -o RowsCount | wc -l >"$SCRATCH/cat.out"
	tap_is "$(cat "$SCRATCH/cat.out")" 1200 "$mode: every metadata.json readable"
	unmount_union "$mnt"
	tap_ok $? "$mode: unmounted"
done
assert_volumes_unchanged "volume untouched by the large walk"
tap_done
