#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# materialize --upper copies the preview's upper into a real volume. While
# the preview is mounted (a vmstorage on it writing parts, replacing
# parts.json), the copy is a torn snapshot of a live tree. materialize
# refuses a volume whose flock.lock is held; it must refuse a mounted upper
# the same way (a vmstorage's flock on the mount's flock.lock never reaches
# the upper's file, so only the daemon can say the upper is in use).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd flock

copy_two_volumes
snapshot_volumes "$vols/node0" "$vols/node1"
upper="$SCRATCH/upper"
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "preview mounted" || tap_bail "no mount"
# What vmstorage does first on its data dir.
(exec 9<"$mnt/flock.lock" && flock -x 9 && exec sleep 30) </dev/null >/dev/null 2>&1 &
holder=$!
on_exit "kill $holder 2>/dev/null; wait $holder 2>/dev/null"
sleep 0.5

tap_fails "materialize --upper of a mounted upper is refused" \
	"$VMUNION" materialize -q --upper "$upper" "$vols/node0" "$vols/node1" "$SCRATCH/dest"
grep -q "$upper" "$TAP_OUT"
tap_ok $? "... naming the upper" || tap_diag "$(cat "$TAP_OUT")"

kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
unmount_union "$mnt"
tap_ok $? "unmounted"
tap_run "materialize --upper works once unmounted" \
	"$VMUNION" materialize -q --upper "$upper" "$vols/node0" "$vols/node1" "$SCRATCH/dest2"
assert_volumes_unchanged
tap_done
