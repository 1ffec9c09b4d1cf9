#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# -o timeout=SECS must be a number of seconds >= 0: a negative one or nan is
# accepted today and mounts (libfuse converts nan to an unsigned long: UB, and
# a negative timeout silently means 0). Refuse them with a usage error (2),
# as timeout=abc is, naming the option; mount nothing.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse

copy_two_volumes
mnt=$(scratch_dir mnt)
on_exit "fusermount3 -uz '$mnt' 2>/dev/null"
for t in -5 nan; do
	timeout 20 "$VMUNIONFS" -o "timeout=$t" "$vols/node0" "$vols/node1" "$mnt" \
		>"$SCRATCH/out" 2>&1 </dev/null
	rc=$?
	mounted=0
	mountpoint -q "$mnt" && mounted=1 && fusermount3 -u "$mnt"
	tap_ok $((rc == 0 || mounted)) "timeout=$t is refused (status $rc)"
	grep -q timeout "$SCRATCH/out"
	tap_ok $? "... naming the option" || tap_diag "$(cat "$SCRATCH/out")"
done
tap_done
