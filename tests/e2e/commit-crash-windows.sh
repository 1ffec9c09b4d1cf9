#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 windows the crash points do not reach, reproduced by leaving
# exactly the state such a kill leaves.
# (a) begin_swap creates restore-in-progress, THEN writes the journal's
#     "swapping": killed between the two, the journal says staging and TARGET
#     has restore-in-progress. A rollback must remove the mark (vmstorage
#     refuses to start on it) and restore TARGET byte for byte; a rerun of
#     the commit must complete it.
# (b) the commit makes .vmunion-commit, THEN writes its first journal (with
#     TARGET's root mtime from before the mkdir). Killed between the two, the
#     root's mtime is the mkdir's: the rerun must take the original from the
#     xattr user.vmunion.root-mtime the commit set on the root before the
#     mkdir, or the rollback restores the wrong mtime. The same kill followed
#     by a rollback (no rerun): the rollback must put that mtime back.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd setfattr getfattr
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

# (b)
touch -d '2020-01-01 00:00:00' "$target"
tree_checksum --mtime "$target" >"$SCRATCH/original"
# what make_commit_dir did before the kill
setfattr -n user.vmunion.root-mtime -v "$(stat -c %Y "$target").000000000" "$target" &&
	mkdir "$target/.vmunion-commit"
tap_run "(b) rerun of the commit after a kill before the first journal" "$VMUNION" "${commit[@]}"
tap_run "(b) rollback" "$VMUNION" rollback "$target"
same_as_original
tap_ok $? "(b) rollback restores TARGET's root mtime too"
getfattr -n user.vmunion.root-mtime "$target" >/dev/null 2>&1
tap_ok $((!$?)) "... and removes the xattr that kept it"

setfattr -n user.vmunion.root-mtime -v "$(stat -c %Y "$target").000000000" "$target" &&
	mkdir "$target/.vmunion-commit"
tap_run "(b) rollback right after a kill before the first journal" "$VMUNION" rollback "$target"
[ ! -e "$target/.vmunion-commit" ] && same_as_original
tap_ok $? "(b) the commit's dir is gone, TARGET's root has its mtime back"
getfattr -n user.vmunion.root-mtime "$target" >/dev/null 2>&1
tap_ok $((!$?)) "... and the xattr is removed"

# (c) a journal write killed between its temp file and its rename leaves
# journal.json.tmp.PID: rollback removes it with the commit's dir.
tap_run "(c) a commit" "$VMUNION" "${commit[@]}"
: >"$target/.vmunion-commit/journal.json.tmp.12345"
tap_run "(c) rollback with a killed journal write's temp file left" "$VMUNION" rollback "$target"
[ ! -e "$target/.vmunion-commit" ] && same_as_original
tap_ok $? "(c) the commit's dir is gone and TARGET is the original again"

assert_volumes_unchanged "the other volumes are byte-identical"
tap_done
