#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# vmunion verify: passes on a materialized DEST (copied or hard-linked) and
# finds every kind of difference: a changed byte, a changed size, a missing
# file, a missing directory, a file where a directory belongs, an extra
# entry; it passes over a top-level lost+found and says so. Exit status 0
# equal, 1 different, 2 I/O error. The volumes stay byte-identical.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

vols=("$DATA_DIR/v1.150.0-cluster"/node*)
snapshot_volumes "${vols[@]}"
copy=$SCRATCH/copy
link=$SCRATCH/link

"$VMUNION" materialize -q --mode copy "${vols[@]}" "$copy" &&
	"$VMUNION" materialize -q --mode link "${vols[@]}" "$link"
tap_ok $? "materialized twice (copy, link)" || tap_done
tap_run "verify: the copy equals the merged view" "$VMUNION" verify "${vols[@]}" "$copy"
grep -q "equals the merged view" "$TAP_OUT"
tap_ok $? "... and says so"
tap_run "verify: the hard-linked tree too" "$VMUNION" verify --jobs 1 "${vols[@]}" "$link"

# Hard links share the volumes' inodes (part files), nothing else does.
part=$(cd "${vols[0]}" && find data/small -name values.bin | head -n 1)
tap_is "$(stat -c %i "$link/$part")" "$(stat -c %i "${vols[0]}/$part")" "link: $part shares the volume's inode"
shared=$(find "$link" -type f -links +1 | wc -l)
parts=$(find "$link" -type f -path '*/data/*/*/*/*' | wc -l)
tap_diag "$shared of the DEST's files share an inode; $parts files in part dirs"
pj=$(cd "$link" && find data/small -name parts.json | head -n 1)
tap_is "$(stat -c %h "$link/$pj")" 1 "link: the merged $pj is a file of its own"

# expect_diff DESC PATTERN : verify of $copy exits 1 and prints PATTERN.
expect_diff() {
	local desc=$1 pattern=$2
	"$VMUNION" verify "${vols[@]}" "$copy" >"$SCRATCH/verify.out" 2>&1
	local rc=$?
	[ "$rc" -eq 1 ] && grep -qE "$pattern" "$SCRATCH/verify.out"
	tap_ok $? "verify finds $desc (status $rc)" || tap_diag "$(cat "$SCRATCH/verify.out")"
}

# One changed byte in the middle of a part file (the copy, not the link:
# that would write into the volume).
f="$copy/$part"
size=$(stat -c %s "$f")
off=$((size / 2))
orig=$(od -An -tx1 -j "$off" -N1 "$f" | tr -d ' ')
printf "\\x$(printf %02x $(((0x$orig + 1) % 256)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
expect_diff "a changed byte" "^differs  $part: bytes differ from offset $off\$"
printf "\\x$orig" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
tap_run "verify passes again once the byte is back" "$VMUNION" verify -q "${vols[@]}" "$copy"

echo '{"Small":[],"Big":[]}' >"$copy/$pj.new"
cp "$copy/$pj" "$SCRATCH/pj.saved"
mv "$copy/$pj.new" "$copy/$pj"
expect_diff "a rewritten parts.json" "^differs  $pj: [0-9]+ bytes, expected [0-9]+\$"
cp "$SCRATCH/pj.saved" "$copy/$pj"

mv "$f" "$SCRATCH/saved.bin"
expect_diff "a missing file" "^missing  $part\$"
mv "$SCRATCH/saved.bin" "$f"

rm "$link/$part"
"$VMUNION" verify "${vols[@]}" "$link" >"$SCRATCH/verify.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] && grep -q "^missing  $part\$" "$SCRATCH/verify.out"
tap_ok $? "verify finds a file missing from the hard-linked tree (status $rc)" ||
	tap_diag "$(cat "$SCRATCH/verify.out")"

dir=$(dirname "$part")
mv "$copy/$dir" "$SCRATCH/saved.dir"
expect_diff "a missing part directory, in one line per dir" "^missing  $dir/\$"
grep -q "^missing  \.\.\. and [0-9]* entries below $dir/\$" "$SCRATCH/verify.out"
tap_ok $? "... and counts what is below it" || tap_diag "$(cat "$SCRATCH/verify.out")"
touch "$copy/$dir"
expect_diff "a file where a directory belongs" "^differs  $dir: a file, expected a directory\$"
rm "$copy/$dir"
mv "$SCRATCH/saved.dir" "$copy/$dir"

echo junk >"$copy/data/small/junk"
mkdir "$copy/extra-dir" && touch "$copy/extra-dir/inside"
expect_diff "extra entries" "^extra    data/small/junk\$"
grep -q "^extra    extra-dir/\$" "$SCRATCH/verify.out" && ! grep -q inside "$SCRATCH/verify.out"
tap_ok $? "... an extra directory in one line" || tap_diag "$(cat "$SCRATCH/verify.out")"
rm -r "$copy/data/small/junk" "$copy/extra-dir"

mkdir "$copy/lost+found"
tap_run "a top-level lost+found is passed over" "$VMUNION" verify "${vols[@]}" "$copy"
grep -q "^ignored  lost+found/" "$TAP_OUT"
tap_ok $? "... and reported as ignored" || tap_diag "$(cat "$TAP_OUT")"
rmdir "$copy/lost+found"

"$VMUNION" verify -q "${vols[@]}" "$SCRATCH/nowhere" >/dev/null 2>&1
tap_is "$?" 2 "a missing DEST: exit status 2"
"$VMUNION" verify -q "${vols[0]}" >/dev/null 2>&1
tap_is "$?" 64 "a VOLUME but no DEST: exit status 64"
"$VMUNION" verify -q "${vols[@]:0:2}" "$copy" >"$SCRATCH/verify.out" 2>&1
tap_is "$?" 1 "other volumes: differs"

assert_volumes_unchanged "volume byte-identical after verify"
tap_done
