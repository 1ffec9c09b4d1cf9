#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Lazy population of the upper (upper.h): a fresh preview holds only the
# root's entries; reads are served from the plan and populate nothing; the
# changes vmstorage makes (a part made in a tmp dir and renamed into a lazy
# partition, an old part removed, parts.json replaced, a lazy dir renamed
# before its population) give the same tree as on a copy, through the mount,
# after a remount, and through `vmunion materialize --upper`. A population
# interrupted by a crash (its leftovers made by hand, then a real kill -9
# while a 2000-part partition is populated) is completed by the next one, and
# holds back no reader of another dir meanwhile.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3 getfattr
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

preview_of_two
upper=$SCRATCH/upper
ro=$(scratch_dir ro)
mount_union "$ro" "$vols/node0" "$vols/node1"
tap_ok $? "read-only mount of the same volumes" || tap_done

tap_is "$(find "$upper/tree" -mindepth 1 | wc -l)" "$(ls -A "$ro" | wc -l)" \
	"a fresh upper holds only the root's entries"
tree_checksum "$ro" >"$SCRATCH/ro.sum" && tree_checksum "$mnt" >"$SCRATCH/mnt.sum"
tap_ok $? "the whole preview read" || tap_done
cmp -s "$SCRATCH/ro.sum" "$SCRATCH/mnt.sum"
tap_ok $? "... equals the read-only mount: bytes, sizes, modes" ||
	diff "$SCRATCH/ro.sum" "$SCRATCH/mnt.sum" | head -n 6 | tap_diag
tap_is "$(find "$upper/tree" -mindepth 1 | wc -l)" "$(ls -A "$ro" | wc -l)" \
	"... and populated nothing"
getfattr -n user.vmunionfs.plan --only-values "$upper/tree/data" >"$SCRATCH/mark" 2>/dev/null &&
	[ "$(cat "$SCRATCH/mark")" = data ]
tap_ok $? "a lazy dir names its plan path" || tap_diag "$(cat "$SCRATCH/mark")"

# The reference: the same volumes materialized, changed the same way.
ref=$SCRATCH/ref
"$VMUNION" materialize -q --mode copy "$vols/node0" "$vols/node1" "$ref"
tap_ok $? "materialized a reference copy" || tap_done

partition=data/small/2024_01
parts=($(cd "$ro/$partition" && find . -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort))
[ "${#parts[@]}" -ge 2 ]
tap_ok $? "the partition has ${#parts[@]} parts" || tap_done
old=${parts[0]}
kept=${parts[1]}
exec 7<"$mnt/$partition/$kept/timestamps.bin" # open while lazy
ino_before=$(stat -c %i "$mnt/$partition/$kept/timestamps.bin")

# vmstorage_changes ROOT: what a merge does to the partition, then a rename
# of a partition dir that is still lazy on the preview.
head -c 5000 /dev/urandom >"$SCRATCH/newbytes.fixed"
vmstorage_changes() {
	local root=$1 p=$1/$partition
	mkdir "$p/tmp.new" &&
		cp "$SCRATCH/newbytes.fixed" "$p/tmp.new/values.bin" &&
		echo '{"RowsCount":1}' >"$p/tmp.new/metadata.json" &&
		mv "$p/tmp.new" "$p/999_1_NEWPART" &&
		rm -r "$p/$old" &&
		echo '{"Small":["999_1_NEWPART"],"Big":[]}' >"$p/parts.json.tmp" &&
		mv "$p/parts.json.tmp" "$p/parts.json" &&
		mv "$root/data/small/2024_02" "$root/data/small/2024_02.renamed"
}
vmstorage_changes "$mnt"
tap_ok $? "vmstorage-like changes through the preview"
vmstorage_changes "$ref"
tap_ok $? "... and on the reference copy"

tree_checksum "$ref" >"$SCRATCH/ref.sum"
tree_checksum "$mnt" >"$SCRATCH/mnt.sum"
cmp -s "$SCRATCH/ref.sum" "$SCRATCH/mnt.sum"
tap_ok $? "the preview shows the reference's tree" ||
	diff "$SCRATCH/ref.sum" "$SCRATCH/mnt.sum" | head -n 6 | tap_diag
getfattr -n user.vmunionfs.plan --only-values "$upper/tree/data/small/2024_02.renamed" \
	>"$SCRATCH/mark" 2>/dev/null && [ "$(cat "$SCRATCH/mark")" = data/small/2024_02 ] &&
	[ -z "$(ls -A "$upper/tree/data/small/2024_02.renamed")" ]
tap_ok $? "a lazy dir renamed before its population keeps its plan path, and no entries" ||
	tap_diag "$(cat "$SCRATCH/mark")"
[ -n "$(ls -A "$upper/tree/$partition/$kept")" ] ||
	! getfattr -n user.vmunionfs.plan "$upper/tree/$partition" >/dev/null 2>&1
tap_ok $? "the changed partition is populated"
tap_is "$(stat -c %i "$mnt/$partition/$kept/timestamps.bin")" "$ino_before" \
	"a file looked up while lazy keeps its inode number once its dir is populated"
cmp -s <(cat <&7) "$vols/node0/$partition/$kept/timestamps.bin" ||
	cmp -s "$mnt/$partition/$kept/timestamps.bin" "$vols/node1/$partition/$kept/timestamps.bin"
tap_ok $? "an fd opened while lazy still reads the volume file's bytes"
printf 'NEW' | dd of="$mnt/$partition/$kept/timestamps.bin" conv=notrunc status=none
tap_is "$(python3 -c 'import os; print(os.pread(7, 3, 0).decode("latin1"))')" NEW \
	"... and after a write through another fd (copy-up), reads the new bytes"
exec 7<&-
printf 'NEW' | dd of="$ref/$partition/$kept/timestamps.bin" conv=notrunc status=none
tap_fails "rmdir of a non-empty lazy dir fails" rmdir "$mnt/data/small/2024_02.renamed"
grep -q "not empty" "$TAP_OUT"
tap_ok $? "... with ENOTEMPTY" || tap_diag "$(cat "$TAP_OUT")"
tree_checksum "$ref" >"$SCRATCH/ref.sum"
unmount_union "$mnt"
tap_ok $? "unmounted"

dest=$SCRATCH/dest
tap_run "materialize --upper" "$VMUNION" materialize -q --mode copy --upper "$upper" \
	"$vols/node0" "$vols/node1" "$dest"
tree_checksum "$dest" >"$SCRATCH/dest.sum"
cmp -s "$SCRATCH/ref.sum" "$SCRATCH/dest.sum"
tap_ok $? "... gives the reference's tree" ||
	diff "$SCRATCH/ref.sum" "$SCRATCH/dest.sum" | head -n 6 | tap_diag
tap_run "verify --upper passes" "$VMUNION" verify -q --upper "$upper" "$vols/node0" \
	"$vols/node1" "$dest"

mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "remounted"
tree_checksum "$mnt" >"$SCRATCH/mnt.sum"
cmp -s "$SCRATCH/ref.sum" "$SCRATCH/mnt.sum"
tap_ok $? "... the same tree" || diff "$SCRATCH/ref.sum" "$SCRATCH/mnt.sum" | head -n 6 | tap_diag
unmount_union "$mnt"

# --- a population interrupted by a crash: what it leaves, made by hand in a
# lazy dir (a child dir made but not yet marked lazy, which would pass for an
# empty populated dir, with a half-made stub in it), is made again.
lazy=data/small/2024_03
child=$(ls "$ro/$lazy" | head -n 1)
mkdir "$upper/tree/$lazy/$child" && : >"$upper/tree/$lazy/$child/values.bin"
tap_ok $? "leftovers of an interrupted population in $lazy"
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "remounted"
diff <(tree_checksum "$ro/$lazy") <(tree_checksum "$mnt/$lazy") >"$SCRATCH/diff"
tap_ok $? "the lazy dir shows the plan's children, not the leftovers" ||
	head -n 6 "$SCRATCH/diff" | tap_diag
touch "$mnt/$lazy/added" && rm "$mnt/$lazy/added"
diff <(tree_checksum "$ro/$lazy") <(tree_checksum "$mnt/$lazy") >"$SCRATCH/diff" &&
	getfattr -n user.vmunionfs.plan "$upper/tree/$lazy/$child" >/dev/null 2>&1 &&
	! getfattr -n user.vmunionfs.plan "$upper/tree/$lazy" >/dev/null 2>&1
tap_ok $? "... and its population makes them again" || head -n 6 "$SCRATCH/diff" | tap_diag
unmount_union "$mnt"

# --- an upper of format 2 (filled whole by an older vmunionfs) whose first
# fill was cut short: no tree. The lazy tree made now must relabel it format 3,
# or the older version would read its lazy dirs as empty.
rm -rf "$upper/tree" && sed -i 's|vmunionfs-upper/3|vmunionfs-upper/2|' "$upper/vmunionfs.json" &&
	grep -q 'vmunionfs-upper/2' "$upper/vmunionfs.json"
tap_ok $? "a format 2 upper with no tree"
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "mounted"
grep -q 'vmunionfs-upper/3' "$upper/vmunionfs.json"
tap_ok $? "... its identity now says format 3" || tap_diag "$(cat "$upper/vmunionfs.json")"
diff <(tree_checksum "$ro") <(tree_checksum "$mnt") >"$SCRATCH/diff"
tap_ok $? "... and it serves the merged view" || head -n 6 "$SCRATCH/diff" | tap_diag
unmount_union "$mnt"
unmount_union "$ro"

# --- kill -9 while a 1000-part partition is populated (3 times, at random
# moments), then a remount and a population that completes it.
big=$SCRATCH/big
python3 "$top_srcdir/tests/bench/read_gen.py" many "$big" --volumes 1 --parts 4000 \
	>/dev/null 2>&1
sync # a new upper is synced (syncfs): not with 20000 new files still to write
bigvol=$big/v0
bigpart=data/small/2024_01
[ "$(ls "$bigvol/$bigpart" | wc -l)" -ge 1000 ]
tap_ok $? "a volume with a 1000-part partition" || tap_done
ro2=$(scratch_dir ro2)
mount_union "$ro2" "$bigvol" && tree_checksum "$ro2" >"$SCRATCH/big.sum"
tap_ok $? "its read-only view"
unmount_union "$ro2"
bigupper=$SCRATCH/bigupper
export MOUNT_TIMEOUT=60 # a new upper is synced: slow on a busy machine

# A population holds back no reader: a file of another lazy dir is read while
# the 1000-part partition is being populated (its upper dir has children and
# is still marked lazy before and after the read).
other=$(cd "$bigvol" && find . -type f -name '*.bin' ! -path "./$bigpart/*" | head -n 1)
mount_union "$mnt" "$bigvol" -- -o "upper=$bigupper"
tap_ok $? "mounted the 1000-part volume with a fresh upper" || tap_done
python3 - "$mnt" "$bigupper/tree" "$bigpart" "$other" "$bigvol" <<'PY' >"$SCRATCH/reader.out" 2>&1
import os, sys, threading
mnt, tree, part, other, volume = sys.argv[1:]
upper_dir = os.path.join(tree, part)
def lazy():
    try:
        os.getxattr(upper_dir, "user.vmunionfs.plan")
        return True
    except OSError:
        return False
def filling():
    try:
        with os.scandir(upper_dir) as entries:  # made once its parents are
            return next(entries, None) is not None and lazy()
    except FileNotFoundError:
        return False
maker = threading.Thread(target=os.mkdir, args=(os.path.join(mnt, part, "new"),))
maker.start()
while not filling():
    if not maker.is_alive():
        sys.exit("the population ended before it was seen under way")
with open(os.path.join(mnt, other), "rb") as f:
    data = f.read()
during = lazy()
maker.join()
with open(os.path.join(volume, other), "rb") as f:
    same = data == f.read()
print("read during the population:", during, "same bytes:", same, "lazy after:", lazy())
sys.exit(0 if during and same and not lazy() else 1)
PY
tap_ok $? "a file of another lazy dir is read while a population is under way" ||
	tap_diag "$(cat "$SCRATCH/reader.out")"
unmount_union "$mnt"
rm -rf "$bigupper"
landed=0
for i in 1 2 3; do
	mount_union "$mnt" "$bigvol" -- -o "upper=$bigupper"
	tap_ok $? "mount $i of the 1000-part volume" || break
	pids=$(union_pids "$mnt")
	mkdir "$mnt/$bigpart/new" 2>/dev/null &
	mkdir_pid=$!
	sleep "0.0$((RANDOM % 4))$((RANDOM % 10))"
	kill -KILL $pids
	wait_for 10 eval "! _pid_alive ${pids%% *}"
	fusermount3 -uz "$mnt" 2>/dev/null
	wait "$mkdir_pid"
	getfattr -n user.vmunionfs.plan "$bigupper/tree/$bigpart" >/dev/null 2>&1 &&
		[ -n "$(ls -A "$bigupper/tree/$bigpart")" ] && landed=$((landed + 1))
	mount_union "$mnt" "$bigvol" -- -o "upper=$bigupper" &&
		{ rmdir "$mnt/$bigpart/new" 2>/dev/null; mkdir "$mnt/$bigpart/new" &&
			rmdir "$mnt/$bigpart/new"; } # a change: populates
	tree_checksum "$mnt" >"$SCRATCH/mnt.sum" && unmount_union "$mnt" &&
		cmp -s "$SCRATCH/big.sum" "$SCRATCH/mnt.sum" &&
		! getfattr -n user.vmunionfs.plan "$bigupper/tree/$bigpart" >/dev/null 2>&1
	tap_ok $? "kill -9 $i during a population: after a remount and a change there, the volume's tree" ||
		{ diff "$SCRATCH/big.sum" "$SCRATCH/mnt.sum" | head -n 6 | tap_diag; break; }
	rm -rf "$bigupper"
done
tap_diag "$landed of 3 kills landed inside the population"

assert_volumes_unchanged "volumes byte-identical after the lazy preview"
tap_done
