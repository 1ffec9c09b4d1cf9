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

preview_of_many_lazy_parts 600

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
