#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# materialize --upper: victoria-metrics runs on a writable preview of the
# v1.79.5 volumes (new samples, flush, merges that delete parts, a snapshot);
# then the upper is materialized: verify --upper passes, verify without it
# does not (the preview's changes are there), victoria-metrics serves every
# old series and the new ones from DEST, and hard-linked stubs stay links to
# the volumes. An upper of other volumes is refused. The volumes stay
# byte-identical.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_vm
require_cmd curl
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

set_dir=$DATA_DIR/v1.79.5
vols=("$set_dir"/node0 "$set_dir"/node1 "$set_dir"/node2 "$set_dir"/node3)
manifest=$set_dir/manifest.json
snapshot_volumes "${vols[@]}"
mnt=$(scratch_dir mnt)
upper=$SCRATCH/upper
port=$(free_port)

mount_union "$mnt" "${vols[@]}" -- -o upper="$upper"
tap_ok $? "mounted with an upper" || tap_done
vm_start "$mnt" "$port"
tap_ok $? "victoria-metrics starts on the preview" || tap_done
now=$(date +%s)
for i in 1 2 3; do
	printf 'vmunion_materialize_new{job="mat",n="%s"} %s %s000\n' "$i" "$((i * 10))" "$((now - i))"
done >"$SCRATCH/new.prom"
curl -fsS --max-time 10 --data-binary @"$SCRATCH/new.prom" "$VM_URL/api/v1/import/prometheus"
tap_ok $? "ingest new samples"
vm_flush
http_get "$VM_URL/internal/force_merge" 60 >/dev/null
merged() {
	local n=0 p
	for p in 2024_01 2024_02 2024_03 2024_04; do
		n=$((n + $(find "$mnt/data/small/$p" -mindepth 1 -maxdepth 1 -type d ! -name txn ! -name tmp | wc -l)))
	done
	[ "$n" -eq 4 ]
}
wait_for 60 merged
tap_ok $? "the preview merged each old partition into one part (sources deleted)"
http_get "$VM_URL/snapshot/create" 30 >/dev/null
tap_ok $? "a snapshot (hard links) on the preview"
vm_stop
tap_ok $? "victoria-metrics stops cleanly"
unmount_union "$mnt"
tap_ok $? "unmounted"

dest=$SCRATCH/dest
tap_run "materialize --upper" "$VMUNION" materialize -q --json --upper "$upper" "${vols[@]}" "$dest"
tap_run "verify --upper passes" "$VMUNION" verify --upper "$upper" "${vols[@]}" "$dest"
tap_fails "verify without --upper: DEST is not the volumes' plain merge" "$VMUNION" verify "${vols[@]}" "$dest"
grep -q "^extra    data/small/2024_01/" "$TAP_OUT" && grep -q "^missing  data/small/2024_01/" "$TAP_OUT"
tap_ok $? "... the merged part is extra, its sources missing" || tap_diag "$(head -n 20 "$TAP_OUT")"

# Link mode: stubs become links to the volume files; what vmstorage wrote is
# copied, never linked.
tap_run "materialize --upper --mode link" "$VMUNION" materialize -q --mode link --upper "$upper" "${vols[@]}" "$SCRATCH/linked"
tap_run "verify --upper passes on it" "$VMUNION" verify -q --upper "$upper" "${vols[@]}" "$SCRATCH/linked"
upper_files=$(find "$upper/tree" -type f -newer "$upper/vmunionfs.json" -size +0 | wc -l)
linked_upper=0
while IFS= read -r f; do
	rel=${f#"$upper/tree/"}
	[ "$(stat -c %i "$f")" = "$(stat -c %i "$SCRATCH/linked/$rel")" ] && linked_upper=$((linked_upper + 1))
done < <(find "$upper/tree" -type f)
tap_is "$linked_upper" 0 "no file of the upper is linked ($upper_files written by vmstorage)"
stubs=$(cd "$SCRATCH/linked" && find . -type f -links +1 | wc -l)
[ "$stubs" -gt 0 ]
tap_ok $? "stubs became hard links to volume files ($stubs)"

port=$(free_port)
vm_start "$dest" "$port"
tap_ok $? "victoria-metrics starts on the materialized preview" || tap_done
vm_compare "$VM_URL" "$manifest" >"$SCRATCH/compare.out" 2>&1
tap_ok $? "every old series, count and sum exact" || tap_diag "$(cat "$SCRATCH/compare.out")"
head -n 1 "$SCRATCH/compare.out" | tap_diag
n=$(http_get "$VM_URL/api/v1/export?match%5B%5D=vmunion_materialize_new&start=$((now - 3600))" 10 | wc -l)
tap_is "$n" 3 "the preview's new series are there"
vm_stop
tap_ok $? "victoria-metrics stops cleanly"

tap_fails "an upper of other volumes is refused" "$VMUNION" materialize -q --upper "$upper" "${vols[@]:0:2}" "$SCRATCH/wrong"
grep -q "refused" "$TAP_OUT" && [ ! -e "$SCRATCH/wrong" ]
tap_ok $? "... saying so, nothing created" || tap_diag "$(cat "$TAP_OUT")"
tap_fails "a directory that is no upper is refused" "$VMUNION" materialize -q --upper "$SCRATCH" "${vols[@]}" "$SCRATCH/wrong"
grep -q "not a vmunionfs upper" "$TAP_OUT"
tap_ok $? "... saying so" || tap_diag "$(cat "$TAP_OUT")"
tap_fails "DEST inside the upper is refused" "$VMUNION" materialize -q --upper "$upper" "${vols[@]}" "$upper/dest"
grep -q "must not be inside" "$TAP_OUT" && [ ! -e "$upper/dest" ]
tap_ok $? "... saying so, nothing created" || tap_diag "$(cat "$TAP_OUT")"

assert_volumes_unchanged "volume byte-identical after materialize --upper"
tap_done
