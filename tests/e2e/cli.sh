#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The command lines as a user meets them: help, version, exit codes, and bad
# input refused with a message that names the volume and the file.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

v179=("$DATA_DIR"/v1.79.5/node0 "$DATA_DIR"/v1.79.5/node1 "$DATA_DIR"/v1.79.5/node2 "$DATA_DIR"/v1.79.5/node3)
snapshot_volumes "${v179[@]}"

# expect_exit WANT DESC CMD... : CMD exits with WANT; its output in TAP_OUT.
expect_exit() {
	local want=$1 desc=$2 rc
	shift 2
	TAP_OUT="$SCRATCH/out.$RANDOM"
	"$@" >"$TAP_OUT" 2>&1 </dev/null
	rc=$?
	tap_is "$rc" "$want" "$desc" || tail -n 5 "$TAP_OUT" | tap_diag
}

# says PATTERN DESC : the last command's output matches PATTERN.
says() {
	grep -qE -- "$1" "$TAP_OUT"
	tap_ok $? "$2" || tail -n 5 "$TAP_OUT" | tap_diag
}

expect_exit 0 "vmunion --help exits 0" "$VMUNION" --help
says "plan" "vmunion --help lists the plan command"
expect_exit 0 "vmunion --version" "$VMUNION" --version
expect_exit 64 "vmunion without a command is a usage error" "$VMUNION"
expect_exit 64 "vmunion with an unknown command is a usage error" "$VMUNION" frobnicate
expect_exit 0 "vmunionfs --help exits 0" "$VMUNIONFS" --help
says "upper=DIR" "vmunionfs --help documents -o upper"
expect_exit 0 "vmunionfs --version" "$VMUNIONFS" --version
expect_exit 64 "vmunionfs without a mountpoint is a usage error" "$VMUNIONFS" "${v179[0]}"

# plan on good input
expect_exit 0 "plan of the v1.79.5 set" "$VMUNION" plan "${v179[@]}"
says "generation A" "plan names the layout generation"
says "Hidden entries" "plan lists hidden entries"
expect_exit 0 "plan --json" "$VMUNION" plan --json "${v179[@]}"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["format"] == 1 and len(d["volumes"]) == 4 and d["refusals"] == [] and len(d["partitions"]) == 4' "$TAP_OUT"
tap_ok $? "plan --json parses: format 1, 4 volumes, 4 partitions, no refusals"
# format_is_1 DESC CMD... : CMD's stdout is a JSON object with "format": 1.
format_is_1() {
	local desc=$1
	shift
	"$@" 2>/dev/null | python3 -c 'import json, sys; assert json.load(sys.stdin)["format"] == 1'
	tap_ok $? "$desc: \"format\": 1"
}
format_is_1 "check --json" "$VMUNION" check --json --cheap "${v179[@]}"
format_is_1 "plan --targets --json" "$VMUNION" plan --json --targets 2 "${v179[@]}"
format_is_1 "materialize --dry-run --json" "$VMUNION" materialize --dry-run --json "${v179[@]}" \
	"$SCRATCH/dest-dry"

# Bad input: each refused, naming what is wrong.
work=$(scratch_dir work)
expect_exit 2 "plan of a missing volume fails" "$VMUNION" plan "$work/missing"
says "$work/missing" "... naming it"
# --json: the error is a JSON object on stdout too, with the format key.
for cmd in plan check materialize; do
	dest=()
	[ "$cmd" = materialize ] && dest=("$work/dest-json")
	"$VMUNION" "$cmd" --json "$work/missing" "${dest[@]}" >"$work/json.out" 2>/dev/null
	rc=$?
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == 1 and sys.argv[2] in d["error"], d' "$work/json.out" "$work/missing" 2>&1 | tap_diag
	tap_ok "${PIPESTATUS[0]}" "$cmd --json on a missing volume: a JSON error object (exit $rc)"
done
mkdir -p "$work/notvm/etc"
expect_exit 1 "plan of a dir that is not a vmstorage volume is refused" "$VMUNION" plan "$work/notvm"
says "not a vmstorage volume" "... saying why"
expect_exit 1 "the same volume twice is refused" "$VMUNION" plan "${v179[0]}" "${v179[0]}"
says "given twice" "... saying why"

copy_volume "$DATA_DIR/v1.96.0-cluster/node0" "$work/corrupt"
printf '{"Small":["18EB' >"$work/corrupt/data/small/2024_01/parts.json"
expect_exit 1 "a corrupt parts.json is refused" "$VMUNION" plan "$work/corrupt"
says "corrupt: data/small/2024_01/parts.json: not valid JSON" "... naming the volume and the file"

copy_volume "$DATA_DIR/v1.96.0-cluster/node1" "$work/missingpart"
rm -rf "$work/missingpart/data/small/2024_02/"18EB*
expect_exit 1 "a listed part missing on disk is refused" "$VMUNION" plan "$work/missingpart"
says "missing on disk" "... saying which part"

copy_volume "$DATA_DIR/v1.96.0-cluster/node2" "$work/restore"
touch "$work/restore/restore-in-progress"
expect_exit 1 "restore-in-progress is refused" "$VMUNION" plan "$work/restore"

# Names with control bytes are escaped in the text report: a newline in a
# directory name must not forge a report line.
copy_volume "$DATA_DIR/v1.79.5/node0" "$work/names"
mkdir "$work/names/evil"$'\n'"  [0] forged-entry: unknown entry" "$work/names/back\\slash"$'\t'
expect_exit 0 "plan of a volume with a newline in a name" "$VMUNION" plan "$work/names"
! grep -q '^  \[0\] forged-entry' "$TAP_OUT"
tap_ok $? "no forged line from a name holding a newline" || grep -n forged "$TAP_OUT" | tap_diag
grep -qF '  [0] evil\n  [0] forged-entry: unknown entry: unknown entry' "$TAP_OUT"
tap_ok $? "the name is printed on one line, newline escaped" || grep -n forged "$TAP_OUT" | tap_diag
grep -qF '  [0] back\\slash\t: unknown entry' "$TAP_OUT"
tap_ok $? "backslash and tab escaped" || grep -n slash "$TAP_OUT" | tap_diag

# Conflicting names: the same part name with other bytes in two volumes.
copy_volume "$DATA_DIR/v1.96.0-cluster/node0" "$work/a"
copy_volume "$DATA_DIR/v1.96.0-cluster/node1" "$work/b"
part_a=$(ls "$work/a/data/small/2024_01" | grep -v parts.json)
part_b=$(ls "$work/b/data/small/2024_01" | grep -v parts.json)
mv "$work/b/data/small/2024_01/$part_b" "$work/b/data/small/2024_01/$part_a"
sed -i "s/$part_b/$part_a/" "$work/b/data/small/2024_01/parts.json"
expect_exit 0 "colliding part names merge" "$VMUNION" plan --json "$work/a" "$work/b"
renamed=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["renames"]; print(r[0]["new_name"] if len(r)==1 else "")' "$TAP_OUT")
[ -n "$renamed" ] && [[ "$renamed" < "$part_a" ]]
tap_ok $? "one part renamed to a name that sorts below ($renamed < $part_a)"

# A volume a vmstorage runs on (flock.lock held) is refused: it would change
# under the mount. The mount holds the lock shared, so none can start later.
copy_volume "$DATA_DIR/v1.96.0-cluster/node3" "$work/running"
# One process holds the lock, as vmstorage does (flock(1) would pass it on to
# a child that outlives a kill).
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1])
fcntl.flock(f, fcntl.LOCK_EX)
time.sleep(30)' "$work/running/flock.lock" &
locker=$!
on_exit "kill $locker 2>/dev/null"
wait_for 30 eval "! flock -n -s '$work/running/flock.lock' true"
mnt_lock=$(scratch_dir mnt-lock)
expect_exit 1 "vmunionfs refuses a volume a vmstorage runs on" "$VMUNIONFS" "$work/running" "$mnt_lock"
says "a vmstorage is running" "... saying why"
expect_exit 1 "materialize refuses it too (1, as the mount)" "$VMUNION" materialize \
	"$work/running" "$work/dest-locked"
says "a vmstorage is running" "... saying why"
expect_exit 0 "plan still plans it" "$VMUNION" plan --no-check "$work/running"
says "warning: .*running.*a vmstorage is running" "... with a warning naming the volume"
expect_exit 1 "check exits 1 (a warning) on it" "$VMUNION" check --cheap "$work/running"
says "warning: .*a vmstorage is running" "... saying why"
kill "$locker" 2>/dev/null
wait "$locker" 2>/dev/null
mount_union "$mnt_lock" "$work/running"
tap_ok $? "mounted once the lock is free"
flock -n -x "$work/running/flock.lock" true
tap_ok $((! $?)) "while mounted, no vmstorage can lock the volume"
unmount_union "$mnt_lock"

# The mount refuses the same inputs before mounting anything.
mnt=$(scratch_dir mnt)
expect_exit 1 "vmunionfs refuses a corrupt parts.json" "$VMUNIONFS" "$work/corrupt" "$mnt"
says "parts.json" "... naming the file"
expect_exit 2 "vmunionfs refuses a missing volume" "$VMUNIONFS" "$work/missing" "$mnt"
expect_exit 2 "vmunionfs refuses a missing mountpoint" "$VMUNIONFS" "${v179[0]}" "$work/nomnt"
says "nomnt" "... naming it"
mount_union "$mnt" "${v179[0]}"
tap_ok $? "mounted one volume"
mnt2=$(scratch_dir mnt2)
expect_exit 2 "vmunionfs refuses a busy mountpoint" "$VMUNIONFS" "${v179[1]}" "$mnt"
says "busy" "... saying it is busy"
expect_exit 2 "an upper inside a volume is refused" "$VMUNIONFS" -o upper="${v179[1]}/upper" "${v179[1]}" "$mnt2"
[ ! -e "${v179[1]}/upper" ] || rmdir "${v179[1]}/upper"
unmount_union "$mnt"
tap_ok $? "unmounted"
rm -rf "${v179[1]}/upper"

assert_volumes_unchanged "volume untouched by the CLI tests"
tap_done
