#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# shellcheck source-path=SCRIPTDIR
# tests/e2e/check.sh - `vmunion check` on the sample volumes, and a metricID
# collision (written by tests/unit/make-collision) that `vmunion check`,
# `vmunion plan`, the mount (vmunionfs) and `vmunion materialize` must all
# refuse; `plan --targets` must keep the colliding volumes apart.
set -u
# shellcheck source=lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"

MAKE_COLLISION=${MAKE_COLLISION:-$top_builddir/tests/unit/make-collision}
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"
[ -x "$MAKE_COLLISION" ] || tap_bail "$MAKE_COLLISION not built (make check builds it)"
require_cmd "$PYTHON3"

# The first colliding metricID of make-collision (0x18EB000000000000).
ID=1795528876437274624

# json_get FILE EXPR : print the python expression EXPR over the JSON
# document j read from FILE.
json_get() {
	"$PYTHON3" -c 'import json, sys
j = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2"
}

# run_rc CMD... : run CMD (output in $SCRATCH/out.N), set RC and OUT.
_run_seq=0
run_rc() {
	_run_seq=$((_run_seq + 1))
	OUT="$SCRATCH/out.$_run_seq"
	"$@" >"$OUT" 2>"$OUT.err" </dev/null
	RC=$?
}

# ---------------------------------------------------------------------------
# The real sample volumes check clean, with the series of their manifests.

for set in v1.79.5 v1.96.0-cluster v1.150.0-cluster; do
	nodes=("$DATA_DIR/$set"/node0 "$DATA_DIR/$set"/node1 "$DATA_DIR/$set"/node2 \
		"$DATA_DIR/$set"/node3)
	snapshot_volumes "${nodes[@]}"
	run_rc "$VMUNION" check --deep "${nodes[@]}"
	tap_is "$RC" 0 "$set: vmunion check --deep exits 0"
	want=$(json_get "$DATA_DIR/$set/manifest.json" 'j["generated"]["series_count"]')
	grep -q "^Summary: 4 volumes, 16 data parts, .* $want series (0 on more than one volume), 0 colliding" "$OUT"
	tap_ok $? "$set: the summary counts 16 data parts and $want series" ||
		tap_diag "$(tail -n 4 "$OUT")"
	run_rc "$VMUNION" check --json "${nodes[@]}"
	got=$(json_get "$OUT" 'sum(v["series"] for v in j["volumes"]), j["exit_status"], len(j["findings"])')
	tap_is "$got" "($want, 0, 0)" "$set: --json: $want series, exit_status 0, no finding"
done
assert_volumes_unchanged "check does not write"

# ---------------------------------------------------------------------------
# A crafted collision: vol0 and vol1 share two metricIDs for different
# series; vol2 replicates vol0's series under its own metricIDs.

set_dir="$SCRATCH/collision"
tap_run "make-collision writes three volumes" "$MAKE_COLLISION" --series 20 --collide 2 "$set_dir"
v0=$set_dir/vol0 v1=$set_dir/vol1 v2=$set_dir/vol2
snapshot_volumes "$v0" "$v1" "$v2"

run_rc "$VMUNION" check "$v0" "$v1" "$v2"
tap_is "$RC" 2 "check on the colliding volumes exits 2"
grep -q "metricID $ID names 2 different series: \[0\] $v0/data/indexdb/2024_01/.*crafted_metric{i=\"0\",vol=\"vol0\"}; \[1\] $v1/.*crafted_metric{i=\"0\",vol=\"vol1\"}" "$OUT"
tap_ok $? "check names metricID $ID, both volumes, their parts and series" ||
	tap_diag "$(cat "$OUT")"
run_rc "$VMUNION" check --json --deep "$v0" "$v1" "$v2"
got=$(json_get "$OUT" 'j["exit_status"], j["collisions_total"], j["collisions"][0]["metric_id"], j["shared_series"]')
tap_is "$got" "(2, 2, '$ID', 20)" "check --json --deep: exit 2, 2 collisions, metricID as a string, 20 replicated series"
run_rc "$VMUNION" check --cheap "$v0" "$v1" "$v2"
tap_is "$RC" 0 "check --cheap (no collision scan) does not see it"
run_rc "$VMUNION" check "$v0" "$v2"
tap_is "$RC" 0 "check of vol0 + vol2 (replicas) exits 0"
grep -q "20 series are on more than one volume" "$OUT"
tap_ok $? "replication is reported as information"

run_rc "$VMUNION" plan "$v0" "$v1"
tap_is "$RC" 1 "plan refuses the colliding volumes (exit 1)"
grep -q "refused: .*metricID $ID" "$OUT.err"
tap_ok $? "plan says why, naming the metricID" || tap_diag "$(cat "$OUT.err")"
run_rc "$VMUNION" plan --json "$v0" "$v1"
got=$(json_get "$OUT" 'any("metricID '$ID'" in r for r in j["refusals"])')
tap_is "$got" True "plan --json lists the collision among the refusals"
run_rc "$VMUNION" plan --no-check "$v0" "$v1"
tap_is "$RC" 0 "plan --no-check skips the collision scan"

run_rc "$VMUNION" plan --targets 2 --json "$v0" "$v1" "$v2"
tap_is "$RC" 0 "plan --targets 2 proposes a scale-down"
got=$(json_get "$OUT" 'sorted(sorted(v["volume"] for v in t["volumes"]) for t in j["targets"])')
case $got in
"[[0, 2], [1]]" | "[[0], [1, 2]]") tap_ok 0 "the colliding vol0 and vol1 go to different targets: $got" ;;
*) tap_ok 1 "the colliding vol0 and vol1 go to different targets: $got" ;;
esac
run_rc "$VMUNION" plan --targets 2 "$v0" "$v1" "$v2"
grep -q "^  target .*bytes .*series" "$OUT" && grep -q "largest/smallest target: bytes" "$OUT"
tap_ok $? "plan --targets prints a table" || tap_diag "$(cat "$OUT")"
run_rc "$VMUNION" plan --targets 1 "$v0" "$v1" "$v2"
tap_is "$RC" 1 "plan --targets 1 refuses: the collision cannot be kept apart"

# ---------------------------------------------------------------------------
# The mount refuses too (before mounting), unless -o nocheck.

fuse_ok=1
{ [ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] && command -v fusermount3 >/dev/null &&
	[ -x "$VMUNIONFS" ]; } || fuse_ok=0

if [ "$fuse_ok" = 1 ]; then
	mnt=$(scratch_dir mnt-refused)
	on_exit "_unmount_quiet '$(_canon_mnt "$mnt")'"
	run_rc timeout 120 "$VMUNIONFS" "$v0" "$v1" "$mnt"
	tap_is "$RC" 1 "vmunionfs refuses the colliding volumes (exit 1)"
	grep -q "refused: .*metricID $ID" "$OUT.err"
	tap_ok $? "vmunionfs says why, naming the metricID" || tap_diag "$(cat "$OUT.err")"
	_mnt_is_mounted "$(_canon_mnt "$mnt")"
	tap_ok $((!$?)) "nothing is mounted"

	mnt=$(scratch_dir mnt-nocheck)
	mount_union "$mnt" "$v0" "$v1" -- -o nocheck
	tap_ok $? "vmunionfs -o nocheck mounts them anyway"
	n=$(find "$mnt/data/indexdb/2024_01" -mindepth 1 -maxdepth 1 -type d | wc -l)
	tap_is "$n" 2 "the mount shows both volumes' indexdb parts"
	unmount_union "$mnt"
	tap_ok $? "unmounted"

	mnt=$(scratch_dir mnt-replicas)
	mount_union "$mnt" "$v0" "$v2"
	tap_ok $? "vmunionfs mounts vol0 + vol2 (no collision)"
	unmount_union "$mnt"

	# A cheap-check error (a live part without values.bin) refuses too.
	bad=$SCRATCH/bad-node0
	copy_volume "$DATA_DIR/v1.150.0-cluster/node0" "$bad"
	rm -f "$bad/data/small/2024_01/18EB741E3E871676/values.bin"
	mnt=$(scratch_dir mnt-bad)
	on_exit "_unmount_quiet '$(_canon_mnt "$mnt")'"
	run_rc timeout 120 "$VMUNIONFS" "$bad" "$DATA_DIR/v1.150.0-cluster/node1" "$mnt"
	tap_is "$RC" 1 "vmunionfs refuses a volume whose live part lacks values.bin"
	grep -q "refused: .*18EB741E3E871676/values.bin: missing" "$OUT.err"
	tap_ok $? "the refusal names the file" || tap_diag "$(cat "$OUT.err")"
else
	for d in "vmunionfs refuses the collision" "-o nocheck mounts" "a missing file refuses"; do
		tap_skip "needs root, /dev/fuse, fusermount3 and a built vmunionfs" "$d"
	done
fi

# ---------------------------------------------------------------------------
# materialize refuses before it writes anything.

if "$VMUNION" materialize --help >/dev/null 2>&1; then
	dest=$SCRATCH/dest
	run_rc "$VMUNION" materialize "$v0" "$v1" "$dest"
	tap_is "$RC" 1 "materialize refuses the colliding volumes (exit 1)"
	grep -q "metricID $ID" "$OUT.err"
	tap_ok $? "materialize says why, naming the metricID" || tap_diag "$(cat "$OUT.err")"
	[ ! -e "$dest" ] || [ -z "$(ls -A "$dest")" ]
	tap_ok $? "materialize wrote nothing"
else
	tap_skip "vmunion has no materialize command yet" "materialize refuses the collision"
fi

assert_volumes_unchanged "crafted volumes unchanged"
tap_done
