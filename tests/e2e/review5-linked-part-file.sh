#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review5: a part file that is a symlink (index.bin -> elsewhere) is refused,
# rightly (the volumes are read with no symlink followed), but the refusal
# says the file is "missing: every live part needs it", which sends the
# operator looking for a file that is there. The message must say what is
# wrong with it: a symlink.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

vol="$SCRATCH/vols/node1"
copy_volume "$DATA_DIR/v1.79.5/node1" "$vol" || tap_bail "cannot copy the volume"
file=$(cd "$vol" && find data/small -name index.bin | sort | head -n 1)
mv "$vol/$file" "$SCRATCH/index.bin" && ln -s "$SCRATCH/index.bin" "$vol/$file"
tap_ok $? "$file is a symlink to a copy of itself"
snapshot_volumes "$vol"

tap_fails "plan refuses the volume" "$VMUNION" plan "$DATA_DIR/v1.79.5/node0" "$vol"
grep -q "$file" "$TAP_OUT"
tap_ok $? "... naming the file" || tap_diag "$(cat "$TAP_OUT")"
grep "$file" "$TAP_OUT" | sed "s|.*$file||" | grep -q -i 'symlink'
tap_ok $? "... and saying it is a symlink, not that it is missing" ||
	tap_diag "$(grep "$file" "$TAP_OUT" | head -n 2)"
assert_volumes_unchanged
tap_done
