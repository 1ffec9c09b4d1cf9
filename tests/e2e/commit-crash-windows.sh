#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (issue 9): a kill -9 window the crash points do not reach,
# reproduced by leaving exactly the state such a kill leaves.
# (a) begin_swap creates restore-in-progress, THEN writes the journal's
#     "swapping": killed between the two, the journal says staging and
#     TARGET has restore-in-progress. rollback of a "staging" journal never
#     removes the mark: TARGET is left with restore-in-progress (vmstorage
#     refuses to start on it) and is not byte-identical; a rerun of the
#     commit is refused: "restore-in-progress exists: vmrestore did not finish".
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ -x "$VMUNION" ] && [ -x "$VMUNION_TEST" ] || tap_bail "$VMUNION or $VMUNION_TEST not built"

work=$SCRATCH/set
vols=()
for n in 0 1 2 3; do
	copy_volume "$DATA_DIR/v1.79.5/node$n" "$work/node$n" || tap_bail "cannot copy node$n"
	vols+=("$work/node$n")
done
target=$work/node2
snapshot_volumes "$work/node0" "$work/node1" "$work/node3"
tree_checksum --mtime "$target" >"$SCRATCH/original" || tap_bail "cannot checksum"
commit=(materialize --into "$target" -q "${vols[@]}")

same_as_original() {
	tree_checksum --mtime "$target" >"$SCRATCH/now"
	cmp -s "$SCRATCH/original" "$SCRATCH/now" ||
		{ diff "$SCRATCH/original" "$SCRATCH/now" | head -n 6 | tap_diag; false; }
}

# (a)
(VMUNION_COMMIT_CRASH_AT=staged "$VMUNION_TEST" "${commit[@]}" >/dev/null 2>&1) 2>/dev/null
grep -q '"staging"' "$target/.vmunion-commit/journal.json" 2>/dev/null ||
	tap_bail "the crash point 'staged' did not leave a staging journal"
: >"$target/restore-in-progress" # what begin_swap's mark_restore did before the kill
tap_run "(a) rollback after a kill between restore-in-progress and the swap journal" \
	"$VMUNION" rollback "$target"
[ ! -e "$target/restore-in-progress" ]
tap_ok $? "(a) rollback removes restore-in-progress (else vmstorage never starts on TARGET)"
same_as_original
tap_ok $? "(a) TARGET is byte-identical to the original"
rm -f "$target/restore-in-progress"
(VMUNION_COMMIT_CRASH_AT=staged "$VMUNION_TEST" "${commit[@]}" >/dev/null 2>&1) 2>/dev/null
: >"$target/restore-in-progress"
tap_run "(a) a rerun of the commit in the same state completes it" "$VMUNION" "${commit[@]}"
tap_run "(a) rollback of it" "$VMUNION" rollback "$target"
same_as_original
tap_ok $? "(a) TARGET is byte-identical to the original again"

assert_volumes_unchanged "the other volumes are byte-identical"
tap_done
