#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# vmunion materialize --into TARGET on each sample set (copies in the
# scratch dir): a dry run writes nothing; TARGET then equals the merged view
# (verify against untouched copies of the volumes), its own part files kept
# their inodes, the other volumes are byte-identical; Debian's
# victoria-metrics on the committed v1.79.5 TARGET serves every series with
# exact counts while the previous layout is kept; rollback restores TARGET
# byte for byte (contents, modes, mtimes), even after victoria-metrics ran on
# it; finalize drops the kept layout; every command is safe to rerun; a
# TARGET a vmstorage holds is refused untouched; bad input is refused.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd "$PYTHON3"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

sets=(v1.79.5 v1.96.0-cluster v1.150.0-cluster)
for s in "${sets[@]}"; do
	snapshot_volumes "$DATA_DIR/$s"/node*
done

json_get() {
	"$PYTHON3" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# same_tree A B : tree_checksum --mtime of A and B agree (contents, modes,
# mtimes, the root's included).
same_tree() {
	tree_checksum --mtime "$1" >"$SCRATCH/tree.a" && tree_checksum --mtime "$2" >"$SCRATCH/tree.b" &&
		cmp -s "$SCRATCH/tree.a" "$SCRATCH/tree.b"
}

# part_inodes DIR : "inode path" of every part file under data/ and indexdb/.
part_inodes() {
	(cd "$1" && find data indexdb -type f -name '*.bin' -printf '%i %p\n' 2>/dev/null | sort -k2)
}

for s in "${sets[@]}"; do
	work=$SCRATCH/$s
	vols=() refs=()
	for n in 0 1 2 3; do
		copy_volume "$DATA_DIR/$s/node$n" "$work/node$n" || tap_bail "cannot copy $s node$n"
		copy_volume "$DATA_DIR/$s/node$n" "$work/ref/node$n" || tap_bail "cannot copy $s node$n"
		vols+=("$work/node$n")
		refs+=("$work/ref/node$n")
	done
	# node1 is TARGET: in the middle, so the merge order matters.
	target=$work/node1
	snapshot_volumes "$work/node0" "$work/node2" "$work/node3"
	cp -a "$target" "$work/target-before"
	part_inodes "$target" >"$work/inodes.before"

	tap_run "$s: dry run" "$VMUNION" materialize --into "$target" --dry-run --json -q "${vols[@]}"
	tap_is "$(json_get "$TAP_OUT" 'j["modes"]["link"] > 0 and j["modes"]["copy_file_range"] + j["modes"]["reflink"] > 0 and j["space_needed"] < j["bytes"]')" True \
		"$s: the dry run links TARGET's files, copies the others', counts only the copies"
	same_tree "$target" "$work/target-before"
	tap_ok $? "$s: the dry run wrote nothing"

	tap_run "$s: materialize --into node1" "$VMUNION" materialize --into "$target" --json -q --jobs 2 "${vols[@]}"
	tap_is "$(json_get "$TAP_OUT" 'j["phase"] == "committed" and j["modes"]["link"] > 0 and j["modes"]["write"] > 0')" True \
		"$s: --json says committed, with links and written files"
	[ ! -e "$target/restore-in-progress" ] && [ -f "$target/.vmunion-commit/journal.json" ] &&
		[ -d "$target/.vmunion-commit/previous/data" ] && [ ! -e "$target/.vmunion-commit/stage" ]
	tap_ok $? "$s: no restore-in-progress, the previous layout kept, no stage left" ||
		tap_diag "$(ls -A "$target" "$target/.vmunion-commit")"
	tap_run "$s: TARGET equals the merged view of the original volumes" \
		"$VMUNION" verify "${refs[@]}" "$target"

	# TARGET's own part files: same inodes (hard links, no copy).
	kept=0 moved=0
	while read -r ino path; do
		now=$(stat -c %i "$target/$path" 2>/dev/null) || continue
		if [ "$now" = "$ino" ]; then kept=$((kept + 1)); else moved=$((moved + 1)); fi
	done <"$work/inodes.before"
	[ "$kept" -gt 0 ] && [ "$moved" = 0 ]
	tap_ok $? "$s: TARGET's part files kept their inodes ($kept kept, $moved copied)"
	# Another volume's part files are new inodes in TARGET.
	other=$(cd "$work/node2" && find data -name index.bin -printf '%p\n' | head -n 1)
	[ -f "$target/$other" ] && [ "$(stat -c %i "$target/$other")" != "$(stat -c %i "$work/node2/$other")" ] &&
		cmp -s "$target/$other" "$work/node2/$other"
	tap_ok $? "$s: node2's $other was copied into TARGET"

	tap_run "$s: a rerun after success" "$VMUNION" materialize --into "$target" "${vols[@]}"
	grep -q "done already" "$TAP_OUT"
	tap_ok $? "$s: ... says it is done" || tap_diag "$(cat "$TAP_OUT")"
	tap_run "$s: verify after the rerun" "$VMUNION" verify "${refs[@]}" "$target"

	if [ "$s" = v1.79.5 ] && command -v "$VICTORIA_METRICS" >/dev/null 2>&1; then
		vm_start "$target" "$(free_port)"
		tap_ok $? "$s: victoria-metrics starts on TARGET with the previous layout kept" || tap_done
		vm_compare "$VM_URL" "$DATA_DIR/$s/manifest.json" >"$SCRATCH/compare.out" 2>&1
		tap_ok $? "$s: every series of the four volumes, count and sum exact" ||
			tap_diag "$(cat "$SCRATCH/compare.out")"
		head -n 1 "$SCRATCH/compare.out" | tap_diag
		vm_stop
		tap_ok $? "$s: victoria-metrics stops cleanly"
	elif [ "$s" = v1.79.5 ]; then
		tap_skip "$VICTORIA_METRICS not found" "$s: victoria-metrics serves TARGET"
	fi

	tap_run "$s: rollback" "$VMUNION" rollback "$target"
	same_tree "$target" "$work/target-before"
	tap_ok $? "$s: rollback restores TARGET byte for byte, modes and mtimes" ||
		diff "$SCRATCH/tree.a" "$SCRATCH/tree.b" | head -n 10 | tap_diag
	tap_run "$s: rollback rerun" "$VMUNION" rollback "$target"
	grep -q "nothing to roll back" "$TAP_OUT"
	tap_ok $? "$s: ... says there is nothing to roll back"
	assert_volumes_unchanged "$s: the other volumes are byte-identical"

	# Commit again, then finalize.
	tap_run "$s: commit again" "$VMUNION" materialize --into "$target" -q "${vols[@]}"
	tap_run "$s: finalize" "$VMUNION" finalize "$target"
	[ ! -e "$target/.vmunion-commit/previous" ] && [ -f "$target/.vmunion-commit/journal.json" ]
	tap_ok $? "$s: finalize dropped the previous layout, kept the journal" ||
		tap_diag "$(ls -A "$target/.vmunion-commit")"
	tap_run "$s: finalize rerun" "$VMUNION" finalize "$target"
	tap_run "$s: materialize --into rerun after finalize" "$VMUNION" materialize --into "$target" "${vols[@]}"
	grep -q "done already" "$TAP_OUT"
	tap_ok $? "$s: ... says it is done, and merges nothing a second time"
	tap_run "$s: verify after finalize" "$VMUNION" verify "${refs[@]}" "$target"
	tap_fails "$s: rollback after finalize is refused" "$VMUNION" rollback "$target"
	grep -q "finalized" "$TAP_OUT"
	tap_ok $? "$s: ... saying it was finalized"
done

# On a filesystem that clones extents (a loop XFS), auto mode reflinks the
# other volumes' files: the commit takes almost no space.
if command -v mkfs.xfs >/dev/null 2>&1 && command -v losetup >/dev/null 2>&1 &&
	truncate -s 512M "$SCRATCH/xfs.img" && mkfs.xfs -q "$SCRATCH/xfs.img" 2>/dev/null; then
	xfs=$(scratch_dir xfs)
	if mount -o loop "$SCRATCH/xfs.img" "$xfs" 2>"$SCRATCH/xfs-mount.log"; then
		on_exit "umount '$xfs' 2>/dev/null || umount -l '$xfs'"
		cp -a "$DATA_DIR/v1.79.5" "$xfs/set" && cp -a "$DATA_DIR/v1.79.5" "$xfs/ref"
		snapshot_volumes "$xfs/set/node0" "$xfs/set/node2" "$xfs/set/node3"
		tree_checksum --mtime "$xfs/set/node1" >"$SCRATCH/xfs.before"
		sync
		used=$(df -B1 --output=used "$xfs" | tail -n 1)
		tap_run "xfs: materialize --into" "$VMUNION" materialize --into "$xfs/set/node1" -q --json "$xfs/set"/node*
		tap_is "$(json_get "$TAP_OUT" 'j["modes"]["reflink"] > 0 and j["modes"]["copy_file_range"] + j["modes"]["read_write"] == 0 and j["modes"]["link"] > 0')" True \
			"xfs: the other volumes' files were reflinked, TARGET's linked"
		sync
		grown=$(($(df -B1 --output=used "$xfs" | tail -n 1) - used))
		[ "$grown" -lt 1000000 ]
		tap_ok $? "xfs: the commit of a 4.4 MB view took $grown bytes of disk"
		tap_run "xfs: verify" "$VMUNION" verify -q "$xfs/ref"/node* "$xfs/set/node1"
		tap_run "xfs: rollback" "$VMUNION" rollback -q "$xfs/set/node1"
		tree_checksum --mtime "$xfs/set/node1" >"$SCRATCH/xfs.after"
		cmp -s "$SCRATCH/xfs.before" "$SCRATCH/xfs.after"
		tap_ok $? "xfs: rollback restored TARGET byte for byte"
	else
		tap_skip "cannot mount a loop XFS: $(head -c 200 "$SCRATCH/xfs-mount.log")" "reflink on XFS"
	fi
else
	tap_skip "mkfs.xfs or a loop device missing (apt-get install xfsprogs)" "reflink on XFS"
fi

# A TARGET a vmstorage runs on (flock.lock held exclusively) is refused and
# left untouched; so are rollback and finalize.
work=$SCRATCH/busy
vols=()
for n in 0 1; do
	copy_volume "$DATA_DIR/v1.96.0-cluster/node$n" "$work/node$n" || tap_bail "cannot copy"
	vols+=("$work/node$n")
done
snapshot_volumes "$work/node1"
"$PYTHON3" -c 'import fcntl, sys, time
f = open(sys.argv[1])
fcntl.flock(f, fcntl.LOCK_EX)
time.sleep(60)' "$work/node0/flock.lock" >/dev/null 2>&1 &
locker=$!
on_exit "kill $locker 2>/dev/null"
wait_for 30 eval "! flock -n -s '$work/node0/flock.lock' true" || tap_bail "the lock holder did not take the lock in 30 s"
"$VMUNION" materialize --into "$work/node0" "${vols[@]}" >"$SCRATCH/busy.out" 2>&1
rc=$?
tap_is "$rc" 1 "materialize --into a TARGET a vmstorage holds: refused (exit 1)"
grep -q "a vmstorage is running" "$SCRATCH/busy.out"
tap_ok $? "... saying why" || tap_diag "$(cat "$SCRATCH/busy.out")"
"$VMUNION" rollback "$work/node0" >/dev/null 2>&1
tap_is $? 0 "rollback of a TARGET with no commit: nothing to do, even while held"
kill "$locker" 2>/dev/null
wait "$locker" 2>/dev/null
# The other holder an operator meets: a vmunionfs daemon over TARGET, still
# exiting after fusermount3 -u.
mnt=$(scratch_dir busy-mnt)
mount_union "$mnt" "${vols[@]}"
tap_ok $? "a vmunionfs mount reading TARGET" || tap_bail "no mount"
"$VMUNION" materialize --into "$work/node0" "${vols[@]}" >"$SCRATCH/busy.out" 2>&1
tap_is $? 1 "materialize --into a TARGET a vmunionfs daemon reads: refused (exit 1)"
grep -q "or a vmunionfs daemon reads it" "$SCRATCH/busy.out"
tap_ok $? "... naming the daemon as a possible holder" || tap_diag "$(cat "$SCRATCH/busy.out")"
unmount_union "$mnt"
tap_ok $? "unmounted"
tap_run "materialize --into once the lock is free" "$VMUNION" materialize --into "$work/node0" -q "${vols[@]}"
"$PYTHON3" -c 'import fcntl, sys, time
f = open(sys.argv[1])
fcntl.flock(f, fcntl.LOCK_EX)
time.sleep(60)' "$work/node0/flock.lock" >/dev/null 2>&1 &
locker=$!
on_exit "kill $locker 2>/dev/null"
wait_for 30 eval "! flock -n -s '$work/node0/flock.lock' true" || tap_bail "the lock holder did not take the lock in 30 s"
tree_checksum --mtime "$work/node0" >"$SCRATCH/held.before"
for cmd in rollback finalize; do
	"$VMUNION" "$cmd" "$work/node0" >"$SCRATCH/busy.out" 2>&1
	tap_is $? 1 "$cmd while a vmstorage holds TARGET: refused"
done
"$VMUNION" materialize --into "$work/node0" "${vols[@]}" >"$SCRATCH/busy.out" 2>&1
tap_is $? 0 "materialize --into rerun while a vmstorage runs on the committed TARGET: done (exit 0)"
tree_checksum --mtime "$work/node0" >"$SCRATCH/held.after"
cmp -s "$SCRATCH/held.before" "$SCRATCH/held.after"
tap_ok $? "TARGET untouched while held"
kill "$locker" 2>/dev/null
wait "$locker" 2>/dev/null
tap_run "rollback once the lock is free" "$VMUNION" rollback "$work/node0"

# Help.
"$VMUNION" --help >"$SCRATCH/help.out" 2>&1 && grep -q -- "--into TARGET" "$SCRATCH/help.out" &&
	grep -q "rollback TARGET" "$SCRATCH/help.out" && grep -q "finalize TARGET" "$SCRATCH/help.out"
tap_ok $? "vmunion --help lists materialize --into, rollback and finalize"
"$VMUNION" materialize --help >"$SCRATCH/help.out" 2>&1 && grep -q -- "--into TARGET" "$SCRATCH/help.out"
tap_ok $? "materialize --help documents --into"
for cmd in rollback finalize; do
	"$VMUNION" "$cmd" --help >"$SCRATCH/help.out" 2>&1 && grep -q "Usage: vmunion $cmd" "$SCRATCH/help.out"
	tap_ok $? "$cmd --help exits 0 with its usage"
done

# Bad input.
"$VMUNION" materialize --into "$work/node1" "$work/node0" >"$SCRATCH/bad.out" 2>&1
tap_is $? 64 "--into a TARGET that is not among the VOLUMEs: usage error"
grep -q "one of the VOLUMEs" "$SCRATCH/bad.out"
tap_ok $? "... saying so"
"$VMUNION" materialize --into "$work/node0" >/dev/null 2>&1
tap_is $? 64 "--into without VOLUMEs: usage error"
"$VMUNION" rollback >/dev/null 2>&1
tap_is $? 64 "rollback without TARGET: usage error"
"$VMUNION" finalize "$work/node0" "$work/node1" >/dev/null 2>&1
tap_is $? 64 "finalize with two TARGETs: usage error"
"$VMUNION" rollback "$work/missing" >/dev/null 2>&1
tap_is $? 2 "rollback of a missing TARGET: exit 2"
mkdir -p "$work/node0/.vmunion-commit"
echo '{"format": "something else"}' >"$work/node0/.vmunion-commit/journal.json"
"$VMUNION" materialize --into "$work/node0" "${vols[@]}" >"$SCRATCH/bad.out" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "journal.json: not a journal" "$SCRATCH/bad.out"
tap_ok $? "a foreign journal is refused, naming the file (status $rc)" || tap_diag "$(cat "$SCRATCH/bad.out")"
"$VMUNION" rollback "$work/node0" >/dev/null 2>&1
tap_is $? 1 "rollback refuses it too"
rm -rf "$work/node0/.vmunion-commit"
# A commit of node0+node1 pending on node0 refuses a commit of other volumes.
copy_volume "$DATA_DIR/v1.96.0-cluster/node2" "$work/node2" || tap_bail "cannot copy"
snapshot_volumes "$work/node2"
(VMUNION_COMMIT_CRASH_AT=staged "$VMUNION_TEST" materialize --into "$work/node0" -q \
	"${vols[@]}" >/dev/null 2>&1; true) 2>/dev/null
if [ -f "$work/node0/.vmunion-commit/journal.json" ]; then
	"$VMUNION" materialize --into "$work/node0" "${vols[@]}" "$work/node2" >"$SCRATCH/bad.out" 2>&1
	tap_is $? 1 "an unfinished commit of other volumes in TARGET: refused"
	grep -q "holds a commit of other volumes" "$SCRATCH/bad.out"
	tap_ok $? "... saying so"
	"$VMUNION" finalize "$work/node0" >/dev/null 2>&1
	tap_is $? 1 "finalize of an unfinished commit: refused"
	tap_run "rollback of the unfinished commit" "$VMUNION" rollback "$work/node0"
else
	tap_skip "$VMUNION_TEST not built" "an unfinished commit of other volumes is refused"
fi
assert_volumes_unchanged "volume byte-identical"
tap_done
