#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The upper fills up while victoria-metrics runs on the preview: ENOSPC
# reaches vmstorage (it fails its flush, it does not see zeros or a hang),
# the union keeps serving, nothing is written to a volume, and once space
# is freed vmstorage (restarted if it stopped) ingests again and serves
# every old and new sample. The upper is a small tmpfs.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_vm

set_dir="$DATA_DIR/v1.79.5"
vols=("$set_dir"/node0 "$set_dir"/node1 "$set_dir"/node2 "$set_dir"/node3)
manifest="$set_dir/manifest.json"
snapshot_volumes "${vols[@]}"
upperfs=$(scratch_dir upperfs)
mount -t tmpfs -o size=48m vmunionfs-test "$upperfs"
tap_ok $? "a 48 MiB tmpfs for the upper" || tap_done
# Registered before the mount: cleanup runs in reverse, the union goes first.
on_exit "umount -l '$upperfs' 2>/dev/null"
mnt=$(scratch_dir mnt)
port=$(free_port)
mount_union "$mnt" "${vols[@]}" -- -o upper="$upperfs/upper"
tap_ok $? "mounted with the upper on the tmpfs" || tap_done
# minFreeDiskSpaceBytes=0: write until the disk says ENOSPC, instead of
# turning read-only when statfs looks low (which the next check covers).
vm_start "$mnt" "$port" -storage.minFreeDiskSpaceBytes=0
tap_ok $? "victoria-metrics on the preview" || tap_done

# import_batch NAME N : N samples of series NAME, timestamps now-N..now s.
import_batch() {
	local name=$1 n=$2 now i
	now=$(date +%s)
	for ((i = 0; i < n; i++)); do
		printf '%s{job="enospc",i="%d"} %d %d000\n' "$name" $((i % 50)) "$i" $((now - n + i))
	done >"$SCRATCH/$name.prom"
	curl -fsS --max-time 20 --data-binary @"$SCRATCH/$name.prom" \
		"$VM_URL/api/v1/import/prometheus"
}
count_series() {
	http_get "$VM_URL/api/v1/export?match%5B%5D=$1&start=$(($(date +%s) - 86400))" 20 |
		python3 -c 'import json,sys; print(sum(len(json.loads(l)["values"]) for l in sys.stdin if l.strip()))'
}

# Fill the upper's filesystem to the last block.
dd if=/dev/zero of="$upperfs/filler" bs=1M status=none 2>/dev/null
avail=$(df --output=avail -B1 "$upperfs" | tail -n 1 | tr -d ' ')
[ "$avail" -lt 65536 ]
tap_ok $? "the upper's filesystem is full ($avail bytes free)"
avail_mnt=$(df --output=avail -B1 "$mnt" | tail -n 1 | tr -d ' ')
[ "$avail_mnt" -lt 65536 ]
tap_ok $? "statfs of the mount says so too ($avail_mnt bytes free)"

import_batch enospc_before 3000
http_get "$VM_URL/internal/force_flush" 30 >/dev/null 2>&1
# vmstorage either logs the write error and goes on, or stops (1.79 panics
# on a failed part write): wait for either, bounded.
enospc_seen() {
	grep -qi "no space left on device" "$VM_LOG"
}
wait_for 60 enospc_seen
tap_ok $? "ENOSPC reached vmstorage (its log says 'no space left on device')" ||
	tail -n 20 "$VM_LOG" | tap_diag
grep -i "no space left" "$VM_LOG" | head -n 2 | cut -c1-300 | tap_diag
mountpoint -q "$mnt" && ls -R "$mnt/data" >/dev/null
tap_ok $? "the union keeps serving while the upper is full"

# Free the space; vmstorage goes on, or is restarted on the same mount.
rm -f "$upperfs/filler"
if _pid_alive "$VM_PID" && [ "$(http_get "$VM_URL/health" 5 2>/dev/null)" = OK ]; then
	tap_diag "victoria-metrics survived the full disk"
	tap_ok 0 "victoria-metrics is still up"
else
	vm_stop >/dev/null 2>&1
	tap_diag "victoria-metrics stopped on the full disk: restarting it"
	vm_start "$mnt" "$port" -storage.minFreeDiskSpaceBytes=0
	tap_ok $? "victoria-metrics restarts on the preview once space is free" || tap_done
fi
import_batch enospc_after 3000
tap_ok $? "ingest after space is freed"
vm_flush
tap_ok $? "force_flush writes parts again"
tap_is "$(count_series enospc_after)" 3000 "every sample ingested after recovery is served"
vm_compare "$VM_URL" "$manifest" --extra-series-ok >"$SCRATCH/compare.out" 2>&1
tap_ok $? "every series of the four volumes: count and sum exact" ||
	tap_diag "$(cat "$SCRATCH/compare.out")"
vm_stop
tap_ok $? "victoria-metrics stops cleanly"
unmount_union "$mnt"
tap_ok $? "unmounted"
mount_union "$mnt" "${vols[@]}" -- -o upper="$upperfs/upper"
tap_ok $? "the upper that was full mounts again (consistent)"
vm_start "$mnt" "$port"
tap_ok $? "victoria-metrics starts on it" || tap_done
tap_is "$(count_series enospc_after)" 3000 "the samples ingested after recovery are still there"
vm_stop
unmount_union "$mnt"
assert_volumes_unchanged "volume byte-identical after the full upper"
tap_done
