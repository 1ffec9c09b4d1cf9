#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A partition directory that is a symlink (vmstorage follows them) is merged
# as if it were a directory: plan shows its parts, check does not call it
# foreign, materialize writes real directories holding the same bytes as for
# a copy without symlinks, and the read-only mount reads files below it. The
# volumes and the link targets stay byte-identical.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd "$PYTHON3"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

_run_seq=0
run_rc() {
	_run_seq=$((_run_seq + 1))
	OUT="$SCRATCH/out.$_run_seq"
	"$@" >"$OUT" 2>"$OUT.err" </dev/null
	RC=$?
}

# v1.150.0-cluster: data/small/P and data/indexdb/P; data/big/P is made empty.
set_dir=$DATA_DIR/v1.150.0-cluster
plain=() linked=()
for n in 0 1 2 3; do
	copy_volume "$set_dir/node$n" "$SCRATCH/plain/node$n" || tap_bail "cannot copy node$n"
	mkdir -p "$SCRATCH/plain/node$n/data/big/2024_02"
	copy_volume "$SCRATCH/plain/node$n" "$SCRATCH/linked/node$n" || tap_bail "cannot copy node$n"
	for level in small big indexdb; do
		p=$SCRATCH/linked/node$n/data/$level/2024_02
		t=$SCRATCH/elsewhere/node$n-$level-2024_02
		mkdir -p "$SCRATCH/elsewhere" && mv "$p" "$t" && ln -s "$t" "$p" ||
			tap_bail "cannot make $p a symlink"
	done
	plain+=("$SCRATCH/plain/node$n")
	linked+=("$SCRATCH/linked/node$n")
done
[ -n "$(ls "$SCRATCH/elsewhere/node0-small-2024_02")" ] || tap_bail "the sample has no 2024_02 parts"
snapshot_volumes "${linked[@]}" "$SCRATCH/elsewhere"

# plan: the same merged tree, the partition is not hidden.
run_rc "$VMUNION" plan --no-check --json "${plain[@]}"
cp "$OUT" "$SCRATCH/plain.json"
run_rc "$VMUNION" plan --no-check --json "${linked[@]}"
tap_is "$RC" 0 "plan merges volumes with symlinked partitions"
sed "s#$SCRATCH/linked/#$SCRATCH/plain/#g" "$OUT" >"$SCRATCH/linked.json"
cmp -s "$SCRATCH/plain.json" "$SCRATCH/linked.json"
tap_ok $? "plan --json is the same as without symlinks" ||
	tap_diag "$(diff "$SCRATCH/plain.json" "$SCRATCH/linked.json" | head -n 20)"
run_rc "$VMUNION" plan --no-check "${linked[@]}"
grep -q "^  2024_02: \[0\]=1 \[1\]=1 \[2\]=1 \[3\]=1 " "$OUT" && ! grep -q "YYYY_MM" "$OUT"
tap_ok $? "plan shows 2024_02 with a part of every volume, and no foreign partition" ||
	tap_diag "$(cat "$OUT")"

# check: clean, nothing called "not a YYYY_MM partition".
run_rc "$VMUNION" check "${linked[@]}"
tap_is "$RC" 0 "check of the linked volumes exits 0"
! grep -q "YYYY_MM" "$OUT" "$OUT.err"
tap_ok $? "check does not call a symlinked partition foreign" || tap_diag "$(cat "$OUT")"

# materialize: real directories, the same bytes as from the plain copy.
for mode in copy link; do
	run_rc "$VMUNION" materialize --mode "$mode" --quiet "${plain[@]}" "$SCRATCH/out-plain-$mode"
	tap_is "$RC" 0 "materialize --mode $mode of the plain copy"
	run_rc "$VMUNION" materialize --mode "$mode" --quiet "${linked[@]}" "$SCRATCH/out-linked-$mode"
	tap_is "$RC" 0 "materialize --mode $mode of the linked volumes" || tap_diag "$(cat "$OUT.err")"
	d=$SCRATCH/out-linked-$mode/data
	[ -d "$d/small/2024_02" ] && [ ! -L "$d/small/2024_02" ] && [ ! -L "$d/big/2024_02" ] &&
		[ ! -L "$d/indexdb/2024_02" ] && [ -z "$(find "$SCRATCH/out-linked-$mode" -type l)" ]
	tap_ok $? "$mode: the partitions are real directories, no symlink written"
	tree_checksum "$SCRATCH/out-plain-$mode" >"$SCRATCH/sum-plain-$mode"
	tree_checksum "$SCRATCH/out-linked-$mode" >"$SCRATCH/sum-linked-$mode"
	cmp -s "$SCRATCH/sum-plain-$mode" "$SCRATCH/sum-linked-$mode"
	tap_ok $? "$mode: the same tree and bytes as from the plain copy" ||
		tap_diag "$(diff "$SCRATCH/sum-plain-$mode" "$SCRATCH/sum-linked-$mode" | head -n 20)"
	run_rc "$VMUNION" verify "${linked[@]}" "$SCRATCH/out-linked-$mode"
	tap_is "$RC" 0 "$mode: verify passes" || tap_diag "$(cat "$OUT" "$OUT.err" | head -n 20)"
done

# The read-only mount reads a file below a symlinked partition.
part=$(cd "$SCRATCH/elsewhere/node1-small-2024_02" && ls -d 18* | head -n 1)
if [ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] && command -v fusermount3 >/dev/null &&
	[ -x "$VMUNIONFS" ]; then
	mnt=$(scratch_dir mnt)
	if mount_union "$mnt" "${linked[@]}"; then
		f=data/small/2024_02/$part/values.bin
		cmp -s "$mnt/$f" "$SCRATCH/elsewhere/node1-small-2024_02/$part/values.bin"
		tap_ok $? "the mount reads $f from the link target"
		[ -d "$mnt/data/indexdb/2024_02" ] && [ ! -L "$mnt/data/indexdb/2024_02" ]
		tap_ok $? "the mount shows the partition as a directory"
		unmount_union "$mnt"
		tap_ok $? "unmounted"
	else
		tap_ok 1 "mounted the linked volumes"
	fi
else
	tap_skip "needs root and /dev/fuse" "the mount reads a file below a symlinked partition"
fi

assert_volumes_unchanged "volume and link targets unchanged"
tap_done
