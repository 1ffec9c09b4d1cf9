#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The read-only mount of each sample set: every live part of every volume is
# there byte for byte, parts.json is the exact union, tables are merged by
# role, writes fail with EROFS, and the volumes are untouched afterwards.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

# expected_check SET MOUNT PLANJSON : compares the mount with what each node
# holds, independently of the daemon's code (python reads the volumes).
expected_check() {
	python3 - "$DATA_DIR/$1" "$2" "$3" <<'PY'
import json, os, sys, filecmp
set_dir, mnt, plan_path = sys.argv[1:4]
plan = json.load(open(plan_path))
problems = []
nodes = sorted(d for d in os.listdir(set_dir) if d.startswith("node"))
# Table role mapping from the plan: node table -> merged table.
table_of = {}
for t in plan["tables"]:
    for s in t["sources"]:
        table_of[(s["volume"], s["name"])] = t["name"]
expected_files = 0
for vi, node in enumerate(nodes):
    root = os.path.join(set_dir, node)
    for level in ("data/small", "data/big", "data/indexdb"):
        ldir = os.path.join(root, level)
        if not os.path.isdir(ldir):
            continue
        for part_dir in sorted(os.listdir(ldir)):
            if part_dir == "snapshots":
                continue
            pdir = os.path.join(ldir, part_dir)
            listed = None
            pj = os.path.join(root, "data/small" if level != "data/indexdb" else level, part_dir, "parts.json")
            if os.path.exists(pj):
                j = json.load(open(pj))
                listed = j if isinstance(j, list) else j["Small" if level == "data/small" else "Big"]
            for part in sorted(os.listdir(pdir)):
                src = os.path.join(pdir, part)
                if not os.path.isdir(src) or part in ("txn", "tmp") or not os.listdir(src):
                    continue
                if listed is not None and part not in listed:
                    continue
                for f in os.listdir(src):
                    expected_files += 1
                    dst = os.path.join(mnt, level, part_dir, part, f)
                    if not os.path.exists(dst):
                        problems.append("missing " + dst)
                    elif not filecmp.cmp(os.path.join(src, f), dst, shallow=False):
                        problems.append("differs " + dst)
    idx = os.path.join(root, "indexdb")
    if os.path.isdir(idx):
        for table in os.listdir(idx):
            merged = table_of.get((vi, table))
            if merged is None:
                continue
            tdir = os.path.join(idx, table)
            listed = json.load(open(os.path.join(tdir, "parts.json"))) if os.path.exists(os.path.join(tdir, "parts.json")) else None
            for part in os.listdir(tdir):
                src = os.path.join(tdir, part)
                if not os.path.isdir(src) or part in ("txn", "tmp") or (listed is not None and part not in listed):
                    continue
                for f in os.listdir(src):
                    expected_files += 1
                    dst = os.path.join(mnt, "indexdb", merged, part, f)
                    if not os.path.exists(dst) or not filecmp.cmp(os.path.join(src, f), dst, shallow=False):
                        problems.append("missing or different " + dst)
# Merged parts.json: the sorted union of the nodes' lists.
for level, key in (("data/small", None), ("data/indexdb", None)):
    mdir = os.path.join(mnt, level)
    if not os.path.isdir(mdir):
        continue
    for p in os.listdir(mdir):
        pj = os.path.join(mdir, p, "parts.json")
        if not os.path.exists(pj):
            continue
        want_small, want_big, want_list = [], [], []
        for node in nodes:
            f = os.path.join(set_dir, node, level, p, "parts.json")
            if os.path.exists(f):
                j = json.load(open(f))
                if isinstance(j, list):
                    want_list += j
                else:
                    want_small += j.get("Small") or []
                    want_big += j.get("Big") or []
        got = open(pj).read()
        if level == "data/small":
            want = json.dumps({"Small": sorted(want_small), "Big": sorted(want_big)}, separators=(",", ":"))
        else:
            want = json.dumps(sorted(want_list), separators=(",", ":"))
        if got != want:
            problems.append("parts.json %s: got %s want %s" % (pj, got, want))
# Nothing else but what the merge shows: count the part files in the mount.
shown = 0
for dirpath, dirs, files in os.walk(mnt):
    rel = os.path.relpath(dirpath, mnt).split(os.sep)
    if len(rel) >= 4 and rel[0] == "data" or len(rel) >= 3 and rel[0] == "indexdb":
        shown += len([f for f in files if f not in ("parts.json", "flock.lock", "converted-to-v1.28.0")])
if shown != expected_files:
    problems.append("mount shows %d part files, volumes hold %d live ones" % (shown, expected_files))
for p in problems[:20]:
    print("# " + p)
print("# %d part files compared" % expected_files)
sys.exit(1 if problems or expected_files == 0 else 0)
PY
}

for set in v1.79.5 v1.96.0-cluster v1.150.0-cluster; do
	vols=("$DATA_DIR/$set"/node0 "$DATA_DIR/$set"/node1 "$DATA_DIR/$set"/node2 "$DATA_DIR/$set"/node3)
	snapshot_volumes "${vols[@]}"
	mnt=$(scratch_dir "mnt-$set")
	"$VMUNION" plan --json "${vols[@]}" >"$SCRATCH/plan-$set.json"
	tap_ok $? "$set: vmunion plan --json"
	mount_union "$mnt" "${vols[0]}:${vols[1]}" "${vols[2]}" "${vols[3]}"
	tap_ok $? "$set: mounted (colon list and separate volumes)" || continue
	out=$(expected_check "$set" "$mnt" "$SCRATCH/plan-$set.json")
	tap_ok $? "$set: every live part byte-identical, parts.json exact, tables by role"
	printf '%s\n' "$out"
	[ -f "$mnt/flock.lock" ] && [ ! -s "$mnt/flock.lock" ]
	tap_ok $? "$set: a fresh empty flock.lock at the root"
	tap_is "$(ls -A "$mnt/cache" | wc -l)" 0 "$set: cache/ is empty"
	touch "$mnt/newfile" 2>"$SCRATCH/touch.err"
	rc=$?
	[ "$rc" -ne 0 ] && grep -q "Read-only file system" "$SCRATCH/touch.err"
	tap_ok $? "$set: writes fail with EROFS"
	inode1=$(stat -c %i "$mnt/data/small")
	inode2=$(stat -c %i "$mnt/data/small")
	tap_is "$inode1" "$inode2" "$set: inode numbers are stable"
	unmount_union "$mnt"
	tap_ok $? "$set: unmounted cleanly"
done

# The same number of series as the nodes' indexes, through readdir and stat
# of the mount: the indexdb roles of v1.96 keep all four curr tables' parts.
tap_is "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["tables"]))' "$SCRATCH/plan-v1.96.0-cluster.json")" 3 \
	"v1.96.0: three merged tables (prev, curr, next)"

assert_volumes_unchanged "volume byte-identical after the mounts"
tap_done
