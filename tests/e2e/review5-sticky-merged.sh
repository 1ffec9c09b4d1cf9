#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review5: a dir several volumes hold grants only what every volume's dir
# grants (plan.c merged_dir_attr), and granted_mode ANDs the sticky bit
# with the rwx bits. But the sticky bit is a restriction, not a grant: a
# dir sticky on one volume and not on another comes out without it, and on
# the preview nobody deletes root's files in a world-writable dir where the
# volume that made it sticky keeps them safe. A merged dir must be sticky
# when any volume's dir at its path is.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv

copy_two_volumes
chmod -R go+rX "$vols"
# node0's metadata dir is sticky (as /tmp is), node1's is not.
chmod 1777 "$vols/node0/metadata"
chmod 0777 "$vols/node1/metadata"
snapshot_volumes "$vols/node0" "$vols/node1"
chmod 0755 "$SCRATCH"

mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o allow_other -o "upper=$SCRATCH/upper"
tap_ok $? "preview mounted with allow_other" || tap_bail "no mount"
tap_is "$(stat -c %a "$mnt/metadata")" 1777 "the merged metadata dir is sticky"
echo root >"$mnt/metadata/rootfile"
tap_ok $? "root makes a file there"
as_nobody rm -f "$mnt/metadata/rootfile" 2>/dev/null
[ -f "$mnt/metadata/rootfile" ]
tap_ok $? "nobody cannot delete root's new file"
as_nobody rm -f "$mnt/metadata/minTimestampForCompositeIndex" 2>/dev/null
[ -f "$mnt/metadata/minTimestampForCompositeIndex" ]
tap_ok $? "nobody cannot delete the merged minTimestampForCompositeIndex"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
