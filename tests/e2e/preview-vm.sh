#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The zero-copy preview: a real victoria-metrics (Debian's 1.79.x) runs on
# the merged mount of the four v1.79.5 sample volumes with an upper, serves
# every series of every volume, ingests, flushes, merges and snapshots
# through the union, survives a restart and a remount, and the volumes stay
# byte-identical.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_vm

set_dir="$DATA_DIR/v1.79.5"
vols=("$set_dir"/node0 "$set_dir"/node1 "$set_dir"/node2 "$set_dir"/node3)
manifest="$set_dir/manifest.json"
snapshot_volumes "${vols[@]}"
mnt=$(scratch_dir mnt)
upper="$SCRATCH/upper"
port=$(free_port)

mount_union "$mnt" "${vols[@]}" -- -o upper="$upper"
tap_ok $? "mounted with an upper" || tap_done

vm_start "$mnt" "$port"
tap_ok $? "victoria-metrics starts on the merged mount" || tap_done
vm_compare "$VM_URL" "$manifest" >"$SCRATCH/compare1.out" 2>&1
tap_ok $? "every series of the four volumes: count and sum exact" ||
	tap_diag "$(cat "$SCRATCH/compare1.out")"
head -n 1 "$SCRATCH/compare1.out" | tap_diag

# New samples: a series of its own, now, so it lands in a fresh partition.
now=$(date +%s)
for i in 1 2 3; do
	printf 'vmunionfs_preview_new{job="preview",n="%s"} %s %s000\n' "$i" "$((i * 10))" "$((now - i))"
done >"$SCRATCH/new.prom"
curl -fsS --max-time 10 --data-binary @"$SCRATCH/new.prom" "$VM_URL/api/v1/import/prometheus"
tap_ok $? "ingest new samples"
vm_flush
tap_ok $? "force_flush: vmstorage writes new parts into the union"
http_get "$VM_URL/internal/force_merge" 60 >/dev/null
tap_ok $? "force_merge: vmstorage merges parts and deletes the sources"
# force_merge returns before the merge ends: wait (bounded) until every
# 2024 partition holds one part.
merged_parts() {
	local n=0 p
	for p in 2024_01 2024_02 2024_03 2024_04; do
		n=$((n + $(find "$mnt/data/small/$p" -mindepth 1 -maxdepth 1 -type d ! -name txn ! -name tmp | wc -l)))
	done
	[ "$n" -eq 4 ]
}
wait_for 60 merged_parts
tap_ok $? "each old partition merged into one part through the union"
snap=$(http_get "$VM_URL/snapshot/create" 30 | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshot"])')
[ -n "$snap" ] && [ -d "$mnt/snapshots/$snap" ]
tap_ok $? "snapshot created through the union (hard links): $snap"
vm_compare "$VM_URL" "$manifest" >"$SCRATCH/compare2.out" 2>&1
tap_ok $? "after merges: every old series still exact" || tap_diag "$(cat "$SCRATCH/compare2.out")"
count_new() {
	http_get "$VM_URL/api/v1/export?match%5B%5D=vmunionfs_preview_new&start=$((now - 3600))" 10 | wc -l
}
tap_is "$(count_new)" 3 "the new series are there"

vm_stop
tap_ok $? "victoria-metrics stops cleanly"
vm_start "$mnt" "$port"
tap_ok $? "victoria-metrics restarts on the same mount" || tap_done
vm_compare "$VM_URL" "$manifest" >"$SCRATCH/compare3.out" 2>&1
tap_ok $? "after restart: every old series exact" || tap_diag "$(cat "$SCRATCH/compare3.out")"
tap_is "$(count_new)" 3 "after restart: the new series are there"
vm_stop
tap_ok $? "victoria-metrics stops cleanly again"

unmount_union "$mnt"
tap_ok $? "unmounted"
mount_union "$mnt" "${vols[@]}" -- -o upper="$upper"
tap_ok $? "remounted with the same upper"
vm_start "$mnt" "$port"
tap_ok $? "victoria-metrics starts on the remount" || tap_done
vm_compare "$VM_URL" "$manifest" >"$SCRATCH/compare4.out" 2>&1
tap_ok $? "after remount: every old series exact" || tap_diag "$(cat "$SCRATCH/compare4.out")"
tap_is "$(count_new)" 3 "after remount: the new series are there"
[ -d "$mnt/snapshots/$snap" ]
tap_ok $? "after remount: the snapshot is there"
vm_stop
unmount_union "$mnt"

"$VMUNIONFS" -o upper="$upper" "${vols[0]}" "${vols[1]}" "$mnt" >"$SCRATCH/wrong.out" 2>&1
rc=$?
[ "$rc" -ne 0 ] && grep -q "belongs to other volumes" "$SCRATCH/wrong.out"
tap_ok $? "the upper refuses a different volume list" || tap_diag "$(cat "$SCRATCH/wrong.out")"
! mountpoint -q "$mnt"
tap_ok $? "... and nothing was mounted"

assert_volumes_unchanged "volume byte-identical after the preview"
tap_done
