#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 at random moments, as a Kubernetes node failure would: 10 times
# for `materialize` and 10 times for `materialize --into`. After each kill,
# a rerun of the same command ends with the merged view (verify passes),
# or a rollback restores TARGET byte for byte (mtimes included); never a
# tree that mixes both. The other volumes stay byte-identical throughout.
# The moments are drawn from KILL_SEED (printed), so a failure can be
# replayed.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

seed=${KILL_SEED:-$(date +%s)}
RANDOM=$seed
tap_diag "KILL_SEED=$seed"

# Four v1.79.5 volumes padded by 8 MB per values.bin: big enough for a kill
# to land in the middle of the work.
padded_set 8000000
refs=()
# Untouched copies: the merged view that verify compares TARGET with.
for n in 0 1 2 3; do
	copy_volume "$SCRATCH/set/node$n" "$SCRATCH/ref/node$n" || tap_bail "cannot copy node$n"
	refs+=("$SCRATCH/ref/node$n")
done
target=${vols[1]}
snapshot_volumes "${vols[0]}" "${vols[2]}" "${vols[3]}"
tree_checksum --mtime "$target" >"$SCRATCH/target.orig" || tap_bail "cannot checksum TARGET"

# kill_after COMMAND... : runs COMMAND in the background and kills it with
# SIGKILL after a random 0-700 ms; prints "killed" or "finished".
kill_after() {
	local ms=$((RANDOM % 700)) pid
	"$VMUNION" "$@" -q >"$SCRATCH/bg.log" 2>&1 &
	pid=$!
	on_exit "kill -KILL $pid 2>/dev/null"
	sleep "$(printf '0.%03d' "$ms")"
	if _pid_alive "$pid"; then
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
		echo "killed after ${ms} ms"
	else
		wait "$pid" 2>/dev/null
		echo "finished within ${ms} ms"
	fi
}

target_is_original() {
	tree_checksum --mtime "$target" >"$SCRATCH/target.now" &&
		cmp -s "$SCRATCH/target.orig" "$SCRATCH/target.now" ||
		{ diff "$SCRATCH/target.orig" "$SCRATCH/target.now" | head -n 6 | tap_diag; false; }
}

# --- materialize: kill, rerun, verify ---
dest=$SCRATCH/dest
for i in 1 2 3 4 5 6 7 8 9 10; do
	rm -rf "$dest"
	what=$(kill_after materialize --mode copy --jobs 1 "${vols[@]}" "$dest")
	"$VMUNION" materialize -q --mode copy "${vols[@]}" "$dest" >"$SCRATCH/rerun.log" 2>&1 &&
		"$VMUNION" verify -q "${vols[@]}" "$dest" >"$SCRATCH/verify.log" 2>&1
	tap_ok $? "materialize $i ($what): the rerun ends with the merged view" ||
		tap_diag "$(cat "$SCRATCH/rerun.log" "$SCRATCH/verify.log" | head -n 6)"
done
rm -rf "$dest"

# --- materialize --into: kill, then rerun (odd) or rollback (even) ---
for i in 1 2 3 4 5 6 7 8 9 10; do
	what=$(kill_after materialize --into "$target" --jobs 1 "${vols[@]}")
	if [ $((i % 2)) = 1 ]; then
		# verify: the untouched reference volumes, then TARGET as DEST.
		"$VMUNION" materialize --into "$target" -q "${vols[@]}" >"$SCRATCH/rerun.log" 2>&1 &&
			"$VMUNION" verify -q "${refs[@]}" "$target" >"$SCRATCH/verify.log" 2>&1
		tap_ok $? "--into $i ($what): the rerun completes the commit, TARGET is the merged view" ||
			tap_diag "$(cat "$SCRATCH/rerun.log" "$SCRATCH/verify.log" | head -n 6)"
	fi
	"$VMUNION" rollback -q "$target" >"$SCRATCH/rollback.log" 2>&1 && target_is_original
	tap_ok $? "--into $i ($what): rollback restores TARGET byte for byte" ||
		tap_diag "$(head -n 6 "$SCRATCH/rollback.log")"
	# The next round must start from TARGET as it was.
	target_is_original || tap_bail "TARGET is not back to its original state"
done

assert_volumes_unchanged "the other volumes are byte-identical"
tap_done
