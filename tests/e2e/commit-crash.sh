#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 of vmunion materialize --into at several points of the staging and
# of the swap (crash points of the test build tests/vmunion-test): TARGET is
# either untouched (staging) or guarded by restore-in-progress (swap), never
# a mixed tree vmstorage would start on; a rerun of the same command
# completes the commit (verify passes), and rollback restores TARGET byte for
# byte from any of those points. The same for kills inside rollback and
# finalize. The installed vmunion has no crash points. The other volumes
# stay byte-identical.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd "$PYTHON3"
[ -x "$VMUNION" ] && [ -x "$VMUNION_TEST" ] ||
	tap_bail "$VMUNION or $VMUNION_TEST not built (make check builds both)"

set_dir=$DATA_DIR/v1.79.5
work=$SCRATCH/set
vols=() refs=()
for n in 0 1 2 3; do
	copy_volume "$set_dir/node$n" "$work/node$n" || tap_bail "cannot copy node$n"
	copy_volume "$set_dir/node$n" "$work/ref/node$n" || tap_bail "cannot copy node$n"
	vols+=("$work/node$n")
	refs+=("$work/ref/node$n")
done
target=$work/node2
snapshot_volumes "$work/node0" "$work/node1" "$work/node3" "$set_dir"/node*
tree_checksum --mtime "$target" >"$SCRATCH/original" || tap_bail "cannot checksum TARGET"

# crash POINT CMD... : runs the test build with the crash point; its status.
crash() {
	local point=$1
	shift
	# (a subshell, so that bash's "Killed" goes to /dev/null)
	(VMUNION_COMMIT_CRASH_AT=$point "$VMUNION_TEST" "$@" >"$SCRATCH/crash.out" 2>&1
		echo $? >"$SCRATCH/crash.rc") 2>/dev/null
	cat "$SCRATCH/crash.rc"
}

# original [--outside] : TARGET is byte-identical to what it was; with
# --outside, not counting the commit's own dir and the root's mtime.
original() {
	tree_checksum --mtime "$target" >"$SCRATCH/now"
	if [ "${1:-}" = --outside ]; then
		grep -v -e '^\.vmunion-commit' -e '^\.	' "$SCRATCH/now" >"$SCRATCH/now.a"
		grep -v -e '^\.	' "$SCRATCH/original" >"$SCRATCH/now.b"
		cmp -s "$SCRATCH/now.a" "$SCRATCH/now.b"
	else
		cmp -s "$SCRATCH/now" "$SCRATCH/original" ||
			{ diff "$SCRATCH/original" "$SCRATCH/now" | head -n 10 | tap_diag; false; }
	fi
}

commit=(materialize --into "$target" -q --jobs 1 "${vols[@]}")

# file:N is in the staging (with --jobs 1, the Nth file staged), the rest
# in the swap: after the stage is synced, after restore-in-progress and the
# swap journal, after N renames (4 originals move out, then 6 entries in),
# after the journal says committed.
for point in file:3 file:60 staged swapping swap:2 swap:6 committed; do
	tap_is "$(crash "$point" "${commit[@]}")" 137 "killed at $point"
	case $point in
	file:* | staged)
		[ ! -e "$target/restore-in-progress" ] && original --outside
		tap_ok $? "$point: TARGET's tree is untouched (only the commit's dir is new)"
		;;
	*)
		[ -f "$target/restore-in-progress" ]
		tap_ok $? "$point: restore-in-progress keeps vmstorage off the half-swapped TARGET" ||
			tap_diag "$(ls -A "$target")"
		;;
	esac
	if [ "$point" = swap:6 ] && command -v "$VICTORIA_METRICS" >/dev/null 2>&1; then
		cp -a "$target" "$SCRATCH/halfswapped"
		timeout 60 "$VICTORIA_METRICS" -storageDataPath="$SCRATCH/halfswapped" -retentionPeriod=100y \
			-httpListenAddr="127.0.0.1:$(free_port)" >"$SCRATCH/vm-refuse.log" 2>&1 </dev/null
		rc=$?
		[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q restore-in-progress "$SCRATCH/vm-refuse.log"
		tap_ok $? "victoria-metrics refuses to start on a half-swapped TARGET (status $rc)" ||
			tap_diag "$(tail -n 5 "$SCRATCH/vm-refuse.log")"
		rm -rf "$SCRATCH/halfswapped"
	fi
	tap_run "$point: rollback" "$VMUNION" rollback "$target"
	original
	tap_ok $? "$point: rollback restored TARGET byte for byte"

	tap_is "$(crash "$point" "${commit[@]}")" 137 "killed at $point again"
	tap_run "$point: a rerun of the same command" "$VMUNION" "${commit[@]}"
	[ ! -e "$target/restore-in-progress" ] && [ ! -e "$target/.vmunion-commit/stage" ]
	tap_ok $? "$point: the rerun completed the commit" || tap_diag "$(ls -A "$target")"
	tap_run "$point: TARGET equals the merged view" "$VMUNION" verify "${refs[@]}" "$target"
	tap_run "$point: rollback of the completed commit" "$VMUNION" rollback "$target"
	original
	tap_ok $? "$point: TARGET byte-identical again"
done

# Kills inside rollback: a rerun of rollback finishes it.
tap_run "commit for the rollback kills" "$VMUNION" "${commit[@]}"
for point in rollback:3 rollback:8 rolled-back; do
	tap_is "$(crash "$point" rollback "$target")" 137 "rollback killed at $point"
	[ -f "$target/restore-in-progress" ]
	tap_ok $? "$point: restore-in-progress still there"
	if [ "$point" != rolled-back ]; then
		"$VMUNION" "${commit[@]}" >"$SCRATCH/out" 2>&1
		tap_is $? 1 "$point: materialize --into refuses to go on with a rollback unfinished"
		"$VMUNION" finalize "$target" >"$SCRATCH/out" 2>&1
		tap_is $? 1 "$point: finalize refuses too"
	fi
	tap_run "$point: rollback rerun" "$VMUNION" rollback "$target"
	original
	tap_ok $? "$point: rollback completed, TARGET byte-identical"
	tap_run "$point: commit again" "$VMUNION" "${commit[@]}"
done

# A kill inside finalize: the rerun finishes it; rollback is no longer
# possible, the commit stays done.
tap_is "$(crash finalizing finalize "$target")" 137 "finalize killed"
"$VMUNION" rollback "$target" >"$SCRATCH/out" 2>&1
tap_is $? 1 "rollback refuses a half-finalized commit"
tap_run "finalize rerun" "$VMUNION" finalize "$target"
[ ! -e "$target/.vmunion-commit/previous" ]
tap_ok $? "the previous layout is gone"
tap_run "materialize --into after finalize" "$VMUNION" materialize --into "$target" "${vols[@]}"
grep -q "done already" "$TAP_OUT"
tap_ok $? "... says it is done"
tap_run "TARGET equals the merged view after finalize" "$VMUNION" verify "${refs[@]}" "$target"

# The installed binary has no crash points.
grep -q -a CRASH_AT "$VMUNION"
tap_ok $((! $?)) "the installed vmunion holds no crash point variable"
grep -q -a VMUNION_COMMIT_CRASH_AT "$VMUNION_TEST"
tap_ok $? "... the test build does"

assert_volumes_unchanged "volume byte-identical after the kills"
tap_done
