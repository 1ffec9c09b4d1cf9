#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The read-only mount serves each volume file as the plan saw it: stat says
# the plan's size, and a read ends there. The kernel would read a volume
# file passed through to its own end, so one that grew after the mount (a
# volume still being written, a careless snapshot) is read through the
# daemon, which stops at the plan's size (review14).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
copy_two_volumes
f=$(cd "$vols/node0" && find data -name values.bin | sort | head -1)
cp "$vols/node0/$f" "$SCRATCH/orig"
ro=$(scratch_dir ro)
for opt in nopassthrough ""; do
	cp "$SCRATCH/orig" "$vols/node0/$f"
	mount_union "$ro" "$vols/node0" "$vols/node1" -- ${opt:+-o $opt}
	tap_ok $? "read-only mount ${opt:+(-o $opt)}" || tap_bail "no mount"
	size=$(stat -c %s "$ro/$f")
	echo GROWN >>"$vols/node0/$f"
	tap_is "$(cat "$ro/$f" | wc -c)" "$size" \
		"a volume file grown after the mount reads as many bytes as stat says ${opt:+(-o $opt)}"
	unmount_union "$ro"
	tap_ok $? "unmounted"
done
tap_done
