#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review10: the files unlinked from lazy dirs reach the upper at unmount in
# op_destroy, after the kernel unmounted: fusermount3 -u returns at once,
# and the daemon goes on populating every pending dir (here 1600, for
# seconds), holding the volumes' flock.lock and the upper's lock. The next
# step of docs/scale-down.md (5: "fusermount3 -u", 6: "vmunion materialize
# --into") then fails with exit status 1 and "flock.lock is locked: a
# vmstorage is running on it", and materialize --upper says "a vmunionfs
# preview serves it: unmount it first", of a preview unmounted already.
# Before 026c3e7 the daemon had nothing left to do and exited at once.
# Expected: within 2 s of fusermount3 -u returning, the runbook's
# next command runs.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_many_lazy_parts 200
unlink_in_every_part min_dedup_interval
tap_ok $? "vmstorage-like: a file unlinked from each lazy part dir"
fusermount3 -u "$mnt"
tap_ok $? "unmounted (fusermount3 -u)"
start=$SECONDS
# runbook step 6, with --dry-run (nothing written), tried for 2 s
try_commit() {
	"$VMUNION" materialize --into "$vols/node0" "$vols/node0" "$vols/node1" --dry-run \
		>/dev/null 2>"$SCRATCH/commit.err"
}
wait_for 2 try_commit
tap_ok $? "vmunion materialize --into runs within 2 s of the unmount" ||
	tap_diag "$(cat "$SCRATCH/commit.err")"
unmount_union "$mnt"
tap_ok $? "the daemon exited (after $((SECONDS - start)) s)"
assert_volumes_unchanged
tap_done
