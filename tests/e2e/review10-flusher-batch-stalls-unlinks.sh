#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review10: pending_flush holds fs->populating while it populates every
# ripe pending dir, one after another, each with its stubs and its fsync.
# unlink_lazy takes the same mutex, so an unlink from a lazy dir, which
# populates nothing, waits for the flusher's whole batch; so does every
# population (the first create, rename, write... in any lazy dir). After
# vmstorage dropped parts in a few thousand lazy dirs (a merge, a retention
# pass), each of its unlinks and first writes stalls for the batch: seconds
# here (a fast ext4), N fsyncs on slow storage. Before 026c3e7 each unlink
# paid its own dir's population and nothing else.
# Expected: an unlink from a lazy dir takes well under a second while the
# flusher populates 4000 dirs.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3 getfattr

copy_two_volumes
# 600 parts a partition in each volume (copies of its first part): 4800
# lazy part dirs.
for n in node0 node1; do
	python3 - "$vols/$n/data/small" "$n" <<'PY' || tap_bail "cannot copy the parts"
import os, shutil, sys
base = 0x18EB73DEA55F0800 + (100000 if sys.argv[2] == "node1" else 0)
for m in sorted(os.listdir(sys.argv[1])):
    month = os.path.join(sys.argv[1], m)
    part = sorted(x for x in os.listdir(month) if "_" in x)[0]
    for i in range(1, 600):
        shutil.copytree(os.path.join(month, part),
                        os.path.join(month, "%s_%016X" % (part.rsplit("_", 1)[0], base + i)))
PY
done
snapshot_volumes "$vols/node0" "$vols/node1"
upper=$SCRATCH/upper
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "preview mounted" || tap_bail "no mount"
for m in 2024_01 2024_02 2024_03 2024_04; do
	mkdir "$mnt/data/small/$m/probe" && rmdir "$mnt/data/small/$m/probe" || break
done
tap_ok $? "the partitions are populated: 4800 lazy part dirs"

python3 - "$mnt" "$upper/tree" >"$SCRATCH/probe.out" 2>&1 <<'PY'
import os, sys, time
mnt, tree = sys.argv[1], sys.argv[2]
batch, reserve = [], []
for m in sorted(os.listdir(mnt + "/data/small")):
    d = os.path.join("data/small", m)
    parts = sorted(p for p in os.listdir(os.path.join(mnt, d)) if "_" in p)
    batch += [os.path.join(d, p) for p in parts[:-50]]
    reserve += [os.path.join(d, p) for p in parts[-50:]]
for p in batch:  # what vmstorage's deletions leave pending
    os.unlink(os.path.join(mnt, p, "min_dedup_interval"))
def lazy(p):
    try:
        os.getxattr(os.path.join(tree, p), "user.vmunionfs.plan")
        return True
    except OSError:
        return False
deadline = time.time() + 30
while lazy(batch[0]) and time.time() < deadline:
    time.sleep(0.01)
# The flusher has begun its batch: one more unlink, from a lazy dir.
t = time.time()
os.unlink(os.path.join(mnt, reserve[0], "index.bin"))
took = time.time() - t
left = sum(lazy(p) for p in batch[::100])
print("%d pending dirs; an unlink from a lazy dir took %.2f s (%d of %d sampled dirs still lazy after)" %
      (len(batch), took, left, len(batch[::100])))
sys.exit(0 if took < 1.0 else 1)
PY
tap_ok $? "an unlink from a lazy dir while the flusher populates the others is quick"
tap_diag "$(cat "$SCRATCH/probe.out")"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
