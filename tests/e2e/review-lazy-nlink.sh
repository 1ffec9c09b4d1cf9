#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A volume file with a second link in its volume (a snapshot's) is one stub
# per name in the preview: one link once its dir is populated. While the dir
# is lazy, stat must show the same, not the volume's count: a population
# changes no file's attributes.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse

vols="$SCRATCH/vols"
copy_volume "$DATA_DIR/v1.79.5/node0" "$vols/node0" &&
	copy_volume "$DATA_DIR/v1.79.5/node1" "$vols/node1" ||
	tap_bail "cannot copy the sample volumes"
file=$(cd "$vols/node0" && find data/small -name index.bin | sort | head -n 1)
mkdir -p "$vols/node0/snapshots/s1" && ln "$vols/node0/$file" "$vols/node0/snapshots/s1/index.bin"
tap_is "$(stat -c %h "$vols/node0/$file")" 2 "the volume file has two links"
snapshot_volumes "$vols/node0" "$vols/node1"
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$SCRATCH/upper" -o timeout=0
tap_ok $? "preview mounted" || tap_done
lazy=$(stat -c %h "$mnt/$file")
touch "$mnt/$(dirname "$file")/populates" && rm "$mnt/$(dirname "$file")/populates"
tap_ok $? "a change in its dir populates it"
tap_is "$(stat -c %h "$SCRATCH/upper/tree/$file")" 1 "its stub has one link"
tap_is "$lazy" "$(stat -c %h "$mnt/$file")" "stat shows the same link count before and after"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
