#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (issue 9): two `materialize --into` at once on the same TARGET.
# The journal is read BEFORE TARGET is locked, and not read again after:
# B reads "no commit", waits for the lock (held 3 s here by strace's delay
# injection on B's first flock) while A commits; B then acts on its stale
# "no commit": it overwrites A's committed journal, merges the merged
# TARGET a second time and fails half-swapped (exit 2). A rollback then
# says "it holds its previous layout again" while TARGET is not the
# original (cache/ and snapshots/ left over, root mtime lost).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"
require_cmd strace

work=$SCRATCH/set
vols=() refs=()
for n in 0 1 2 3; do
	copy_volume "$DATA_DIR/v1.79.5/node$n" "$work/node$n" || tap_bail "cannot copy node$n"
	copy_volume "$DATA_DIR/v1.79.5/node$n" "$work/ref/node$n" || tap_bail "cannot copy node$n"
	vols+=("$work/node$n")
	refs+=("$work/ref/node$n")
done
target=$work/node1
snapshot_volumes "$work/node0" "$work/node2" "$work/node3"
tree_checksum --mtime "$target" >"$SCRATCH/original" || tap_bail "cannot checksum"

strace -f -o /dev/null -e trace=flock -e inject=flock:delay_enter=3000000:when=1 \
	"$VMUNION" materialize --into "$target" "${vols[@]}" >"$SCRATCH/b.out" 2>&1 &
b_pid=$!
on_exit "kill $b_pid 2>/dev/null"
sleep 0.5
tap_run "A: materialize --into while B waits for the lock" \
	"$VMUNION" materialize --into "$target" -q "${vols[@]}"
wait_for 30 eval "! kill -0 $b_pid 2>/dev/null"
wait "$b_pid"
b_rc=$?
[ "$b_rc" = 0 ] || [ "$b_rc" = 1 ]
tap_ok $? "B: says done or refuses (exit 0 or 1, got $b_rc)" || tap_diag "$(cat "$SCRATCH/b.out")"
grep -q '"committed"' "$target/.vmunion-commit/journal.json" && [ ! -e "$target/restore-in-progress" ]
tap_ok $? "A's commit stands: the journal says committed, no restore-in-progress"
tap_run "TARGET equals the merged view" "$VMUNION" verify "${refs[@]}" "$target"
tap_run "rollback" "$VMUNION" rollback "$target"
tree_checksum --mtime "$target" >"$SCRATCH/now"
cmp -s "$SCRATCH/original" "$SCRATCH/now"
tap_ok $? "rollback restores the original byte for byte" ||
	diff "$SCRATCH/original" "$SCRATCH/now" | head -n 6 | tap_diag
assert_volumes_unchanged "the other volumes are byte-identical"
tap_done
