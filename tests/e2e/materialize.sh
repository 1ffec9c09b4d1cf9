#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# vmunion materialize writes the merged view of every sample set in every
# mode; vmunion verify agrees; Debian's victoria-metrics serves every series
# of the v1.79.5 set from a copied and from a hard-linked DEST; a dry run
# writes nothing; unsafe DESTs are refused before the first byte; the volumes
# stay byte-identical throughout.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd "$PYTHON3"
[ -x "$VMUNION" ] && [ -x "$VMUNION_TEST" ] || tap_bail "$VMUNION or $VMUNION_TEST not built (make check builds both)"

sets=(v1.79.5 v1.96.0-cluster v1.150.0-cluster)
for s in "${sets[@]}"; do
	snapshot_volumes "$DATA_DIR/$s"/node*
done

# json_get FILE EXPR : a value of the --json document in FILE (python expr on j).
json_get() {
	"$PYTHON3" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# no_marks DEST : nothing of the materialize machinery is left.
no_marks() {
	[ ! -e "$1/restore-in-progress" ] && [ ! -e "$1/.vmunion-materialize.json" ] &&
		[ ! -e "$1/.vmunion-staging" ]
}

for s in "${sets[@]}"; do
	vols=("$DATA_DIR/$s"/node*)
	for mode in auto copy link; do
		dest="$SCRATCH/$s-$mode"
		tap_run "$s: materialize --mode $mode" \
			"$VMUNION" materialize --mode "$mode" --quiet --json "${vols[@]}" "$dest" || continue
		cp "$TAP_OUT" "$SCRATCH/$s-$mode.json"
		files=$(json_get "$SCRATCH/$s-$mode.json" 'j["files"]')
		case $mode in
		link) want='j["modes"]["link"] > 0 and j["modes"]["copy_file_range"] + j["modes"]["read_write"] + j["modes"]["reflink"] == 0' ;;
		copy) want='j["modes"]["link"] + j["modes"]["reflink"] == 0 and j["modes"]["copy_file_range"] + j["modes"]["read_write"] > 0' ;;
		auto) want='j["modes"]["link"] == 0' ;;
		esac
		tap_is "$(json_get "$SCRATCH/$s-$mode.json" "$want and j['modes']['write'] > 0 and j['files_written'] == j['files']")" True \
			"$s $mode: --json counts every file once, synthesized files written ($files files)"
		no_marks "$dest"
		tap_ok $? "$s $mode: no restore-in-progress, marker or staging dir left"
		tap_run "$s $mode: verify passes" "$VMUNION" verify "${vols[@]}" "$dest"
		[ "$(find "$dest" -type f | wc -l)" = "$files" ]
		tap_ok $? "$s $mode: DEST holds exactly $files files"
	done
done

# Link mode shares the inodes of the part files; synthesized files are fresh.
v=$DATA_DIR/v1.79.5/node0
part=$(cd "$v" && find data/small -name values.bin | head -n 1)
dest=$SCRATCH/v1.79.5-link
tap_is "$(stat -c %i "$dest/$part")" "$(stat -c %i "$v/$part")" "link: $part is the volume's inode"
[ "$(stat -c %h "$dest/flock.lock")" = 1 ] && [ "$(stat -c %h "$dest/indexdb"/*/flock.lock | sort -u)" = 1 ]
tap_ok $? "link: the lock files are fresh files of their own"
[ "$(stat -c %i "$SCRATCH/v1.79.5-copy/$part")" != "$(stat -c %i "$v/$part")" ]
tap_ok $? "copy: $part is a new inode"
tap_is "$(stat -c %Y "$SCRATCH/v1.79.5-copy/$part")" "$(stat -c %Y "$v/$part")" "copy: mtime kept"

# reflink needs a filesystem that clones extents; refused before any write
# where it cannot (the scratch filesystem may be either).
fstype=$(stat -f -c %T "$SCRATCH")
case $fstype in
btrfs | xfs)
	tap_run "reflink on $fstype works" "$VMUNION" materialize --mode reflink -q "$DATA_DIR/v1.79.5"/node* "$SCRATCH/reflink"
	;;
*)
	tap_fails "reflink on $fstype: refused" "$VMUNION" materialize --mode reflink -q "$DATA_DIR/v1.79.5"/node* "$SCRATCH/reflink"
	grep -q "cannot clone extents" "$TAP_OUT" && [ ! -e "$SCRATCH/reflink" ]
	tap_ok $? "... with a clear message, and DEST was not even created" || tap_diag "$(cat "$TAP_OUT")"
	;;
esac

# reflink for real, on a loop-mounted XFS (when mkfs.xfs is there).
if command -v mkfs.xfs >/dev/null 2>&1 && command -v losetup >/dev/null 2>&1 &&
	truncate -s 512M "$SCRATCH/xfs.img" && mkfs.xfs -q "$SCRATCH/xfs.img" 2>/dev/null; then
	xfs=$(scratch_dir xfs)
	if mount -o loop "$SCRATCH/xfs.img" "$xfs" 2>"$SCRATCH/xfs-mount.log"; then
		on_exit "umount '$xfs' 2>/dev/null || umount -l '$xfs'"
		cp -a "$DATA_DIR/v1.79.5" "$xfs/set"
		snapshot_volumes "$xfs/set"/node*
		tap_run "xfs: materialize --mode reflink" "$VMUNION" materialize --mode reflink -q --json "$xfs/set"/node* "$xfs/dest"
		tap_is "$(json_get "$TAP_OUT" 'j["modes"]["reflink"] > 0 and j["modes"]["copy_file_range"] == 0')" True "xfs: part files were reflinked"
		tap_run "xfs: auto mode" "$VMUNION" materialize -q --json "$xfs/set"/node* "$xfs/auto"
		tap_is "$(json_get "$TAP_OUT" 'j["modes"]["reflink"] > 0')" True "xfs: auto chose reflink"
		tap_run "xfs: verify reflinked" "$VMUNION" verify -q "$xfs/set"/node* "$xfs/dest"
		tap_run "xfs: verify auto" "$VMUNION" verify -q "$xfs/set"/node* "$xfs/auto"
	else
		tap_skip "cannot mount a loop XFS: $(head -c 200 "$SCRATCH/xfs-mount.log")" "reflink on XFS"
	fi
else
	tap_skip "mkfs.xfs or a loop device missing (apt-get install xfsprogs)" "reflink on XFS"
fi

# victoria-metrics on materialized trees: copied and hard-linked.
if command -v "$VICTORIA_METRICS" >/dev/null 2>&1; then
	manifest=$DATA_DIR/v1.79.5/manifest.json
	for mode in copy link; do
		port=$(free_port)
		if vm_start "$SCRATCH/v1.79.5-$mode" "$port"; then
			tap_ok 0 "victoria-metrics starts on the $mode DEST"
			vm_compare "$VM_URL" "$manifest" >"$SCRATCH/compare-$mode.out" 2>&1
			tap_ok $? "$mode DEST: every series of the four volumes, count and sum exact" ||
				tap_diag "$(cat "$SCRATCH/compare-$mode.out")"
			head -n 1 "$SCRATCH/compare-$mode.out" | tap_diag
			vm_stop
			tap_ok $? "victoria-metrics stops cleanly"
		else
			tap_ok 1 "victoria-metrics starts on the $mode DEST"
		fi
	done
else
	tap_skip "$VICTORIA_METRICS not found" "victoria-metrics on a materialized DEST"
fi

vols=("$DATA_DIR/v1.79.5"/node*)

# Dry run: every file with its mode, nothing written.
tap_run "dry run" "$VMUNION" materialize --dry-run --mode link "${vols[@]}" "$SCRATCH/dry"
[ ! -e "$SCRATCH/dry" ]
tap_ok $? "dry run: DEST not created"
[ "$(grep -c '^link ' "$TAP_OUT")" -gt 0 ] && [ "$(grep -c '^write ' "$TAP_OUT")" -gt 0 ] &&
	grep -q 'would be written' "$TAP_OUT"
tap_ok $? "dry run: each file with its mode, and a summary" || tap_diag "$(head "$TAP_OUT")"
mkdir "$SCRATCH/dry2"
tap_run "dry run --json on an empty DEST" "$VMUNION" materialize -n --json "${vols[@]}" "$SCRATCH/dry2"
tap_is "$(json_get "$TAP_OUT" 'j["dry_run"] and j["files_to_write"] == j["files"] == len(j["entries"]) and j["bytes_to_write"] == j["bytes"]')" True \
	"dry run --json: every entry listed with its mode and size"
tap_is "$(ls -A "$SCRATCH/dry2")" "" "dry run: the empty DEST stays empty"

# Refusals before the first byte.
mkdir -p "$SCRATCH/full" && echo x >"$SCRATCH/full/something"
tap_fails "a non-empty DEST is refused" "$VMUNION" materialize -q "${vols[@]}" "$SCRATCH/full"
grep -q "not empty" "$TAP_OUT" && [ "$(ls -A "$SCRATCH/full")" = something ]
tap_ok $? "... with a clear message, DEST untouched" || tap_diag "$(cat "$TAP_OUT")"
# A rerun on a finished DEST (one no victoria-metrics ran on) says it is
# done and writes nothing, as a restarted Kubernetes Job would need.
finished=$SCRATCH/v1.96.0-cluster-copy
tree_checksum --mtime "$finished" >"$SCRATCH/finished.before"
tap_run "a rerun on a finished DEST exits 0" "$VMUNION" materialize "$DATA_DIR/v1.96.0-cluster"/node* "$finished"
grep -q "done already" "$TAP_OUT"
tap_ok $? "... saying it is done" || tap_diag "$(cat "$TAP_OUT")"
tree_checksum --mtime "$finished" >"$SCRATCH/finished.after"
cmp -s "$SCRATCH/finished.before" "$SCRATCH/finished.after"
tap_ok $? "... and writing nothing"
tap_run "--json of the rerun" "$VMUNION" materialize -q --json "$DATA_DIR/v1.96.0-cluster"/node* "$finished"
tap_is "$(json_get "$TAP_OUT" 'j["already_done"] and j["files_written"] == 0')" True "... says already_done, 0 files written"
# A DEST whose tree differs from the view (here: one parts.json changed) is
# no finished run: refused, pointing at verify.
changed=$SCRATCH/v1.96.0-cluster-auto
pj=$(cd "$changed" && find data/small -name parts.json | head -n 1)
echo ' ' >>"$changed/$pj"
tap_fails "a DEST that differs from the view is refused" "$VMUNION" materialize -q "$DATA_DIR/v1.96.0-cluster"/node* "$changed"
grep -q "verify" "$TAP_OUT"
tap_ok $? "... pointing at verify" || tap_diag "$(cat "$TAP_OUT")"

copy_volume "$DATA_DIR/v1.79.5/node0" "$SCRATCH/vcopy/node0"
snapshot_volumes "$SCRATCH/vcopy/node0"
tap_fails "DEST inside a volume is refused" "$VMUNION" materialize -q "$SCRATCH/vcopy/node0" "$SCRATCH/vcopy/node0/sub"
grep -q "must not be inside" "$TAP_OUT" && [ ! -e "$SCRATCH/vcopy/node0/sub" ]
tap_ok $? "... with a clear message, nothing created" || tap_diag "$(cat "$TAP_OUT")"
tap_fails "a volume inside DEST is refused" "$VMUNION" materialize -q "$SCRATCH/vcopy/node0" "$SCRATCH/vcopy"
grep -q "must not be inside" "$TAP_OUT"
tap_ok $? "... with a clear message" || tap_diag "$(cat "$TAP_OUT")"

if command -v flock >/dev/null 2>&1; then
	tap_fails "a volume with a running vmstorage (flock.lock held) is refused" \
		flock -x "$SCRATCH/vcopy/node0/flock.lock" "$VMUNION" materialize -q "$SCRATCH/vcopy/node0" "$SCRATCH/locked"
	grep -q "vmstorage is running" "$TAP_OUT" && [ ! -e "$SCRATCH/locked" ]
	tap_ok $? "... with a clear message, nothing created" || tap_diag "$(cat "$TAP_OUT")"
fi

# A partial DEST of another plan is refused: stop a run early, then try
# another volume list on it.
(VMUNION_MATERIALIZE_CRASH_AT=file:3 "$VMUNION_TEST" materialize -q --jobs 1 "${vols[@]}" "$SCRATCH/partial"; true) >/dev/null 2>&1
[ -e "$SCRATCH/partial/restore-in-progress" ] && [ -d "$SCRATCH/partial/.vmunion-staging" ]
tap_ok $? "a run stopped early leaves restore-in-progress and the staging dir"
tap_fails "a partial DEST of another plan is refused" "$VMUNION" materialize -q "${vols[@]:0:2}" "$SCRATCH/partial"
grep -q "unfinished materialize of another plan" "$TAP_OUT"
tap_ok $? "... with a clear message" || tap_diag "$(cat "$TAP_OUT")"
tap_fails "verify fails on the partial DEST" "$VMUNION" verify "${vols[@]}" "$SCRATCH/partial"
grep -q "^extra    restore-in-progress" "$TAP_OUT"
tap_ok $? "... listing restore-in-progress as extra" || tap_diag "$(cat "$TAP_OUT")"
tap_run "the same command resumes it" "$VMUNION" materialize -q "${vols[@]}" "$SCRATCH/partial"
tap_run "verify passes after the resume" "$VMUNION" verify -q "${vols[@]}" "$SCRATCH/partial"

# The checks of `vmunion check` run first: colliding metricIDs (volumes
# crafted by tests/unit/make-collision) refuse the merge.
make_collision=${MAKE_COLLISION:-$top_builddir/tests/unit/make-collision}
if [ -x "$make_collision" ] && "$make_collision" --series 20 --collide 2 "$SCRATCH/coll" >/dev/null 2>&1; then
	tap_fails "volumes with colliding metricIDs are refused" \
		"$VMUNION" materialize -q "$SCRATCH/coll/vol0" "$SCRATCH/coll/vol1" "$SCRATCH/coll-dest"
	grep -q "names 2 different series" "$TAP_OUT" && [ ! -e "$SCRATCH/coll-dest" ]
	tap_ok $? "... naming the metricID and both series, nothing created" || tap_diag "$(cat "$TAP_OUT")"
	tap_run "--no-check skips the collision scan" \
		"$VMUNION" materialize -q --no-check "$SCRATCH/coll/vol0" "$SCRATCH/coll/vol1" "$SCRATCH/coll-dest"
else
	tap_skip "tests/unit/make-collision not built" "colliding metricIDs are refused"
fi

tap_fails "unknown mode: usage error" "$VMUNION" materialize --mode fast "${vols[@]}" "$SCRATCH/x"
"$VMUNION" materialize --mode fast "${vols[@]}" "$SCRATCH/x" >/dev/null 2>&1
tap_is "$?" 64 "... exit status 64"
"$VMUNION" materialize --help | grep -q "Exit status"
tap_ok $? "materialize --help documents the exit status"
"$VMUNION" verify --help | grep -q "Exit status"
tap_ok $? "verify --help documents the exit status"

assert_volumes_unchanged "volume byte-identical after materialize"
tap_done
