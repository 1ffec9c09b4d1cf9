#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (issue 9): files in TARGET that are not vmstorage's (an operator's
# notes file, a lost+found with something in it) must survive
# materialize --into AND finalize. The merged view hides unknown root entries,
# so the commit moves NOTES.txt into .vmunion-commit/previous/ and finalize
# then deletes it without a word: an operator's file is lost.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

work=$SCRATCH/set
vols=()
for n in 0 1 2 3; do
	copy_volume "$DATA_DIR/v1.79.5/node$n" "$work/node$n" || tap_bail "cannot copy node$n"
	vols+=("$work/node$n")
done
target=$work/node1
echo "do not delete: PVC notes" >"$target/NOTES.txt"
mkdir "$target/lost+found" && echo recovered >"$target/lost+found/#1234"
snapshot_volumes "$work/node0" "$work/node2" "$work/node3"

tap_run "materialize --into with a notes file in TARGET" \
	"$VMUNION" materialize --into "$target" "${vols[@]}"
[ -f "$target/lost+found/#1234" ]
tap_ok $? "lost+found survives the commit"
[ -f "$target/NOTES.txt" ] || grep -q "NOTES.txt" "$TAP_OUT"
tap_ok $? "NOTES.txt stays in TARGET after the commit, or the commit names it" ||
	tap_diag "$(ls -A "$target") / $(cat "$TAP_OUT")"
"$VMUNION" finalize "$target" >"$SCRATCH/fin.out" 2>&1
rc=$?
if [ "$rc" = 0 ]; then
	find "$target" -name NOTES.txt | grep -q .
	tap_ok $? "finalize does not delete the operator's NOTES.txt" ||
		tap_diag "finalize said: $(cat "$SCRATCH/fin.out")"
else
	grep -q NOTES.txt "$SCRATCH/fin.out"
	tap_ok $? "finalize refuses, naming NOTES.txt (status $rc)"
fi
[ -f "$target/lost+found/#1234" ]
tap_ok $? "lost+found survives finalize"
assert_volumes_unchanged "the other volumes are byte-identical"
tap_done
