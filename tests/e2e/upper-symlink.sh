#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# -o upper=DIR must not lie inside a volume (check_upper_location), but the
# check resolves only DIR's parent: DIR itself a symlink to an empty
# directory inside a volume passes, and the daemon writes vmunionfs.json and
# the whole tree into the volume. The upper must be checked where it really is.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse

copy_two_volumes
mkdir "$vols/node0/preview"
ln -s "$vols/node0/preview" "$SCRATCH/upper"
snapshot_volumes "$vols/node0" "$vols/node1"

mnt=$(scratch_dir mnt)
MOUNT_TIMEOUT=5 mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$SCRATCH/upper" 2>/dev/null
rc=$?
tap_ok $((rc == 0)) "an upper that is a symlink into a volume is refused"
[ "$rc" -ne 0 ] || unmount_union "$mnt"
[ -z "$(ls -A "$vols/node0/preview")" ]
tap_ok $? "nothing was written into the volume" || tap_diag "$(ls -A "$vols/node0/preview")"

# A dangling symlink: its target (in a volume) must not be created.
ln -s "$vols/node0/newdir" "$SCRATCH/dangling"
MOUNT_TIMEOUT=5 mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$SCRATCH/dangling" \
	2>/dev/null
rc=$?
tap_ok $((rc == 0)) "an upper that is a dangling symlink is refused"
[ "$rc" -ne 0 ] || unmount_union "$mnt"
[ ! -e "$vols/node0/newdir" ]
tap_ok $? "its target was not created"
grep -q "upper $SCRATCH/dangling is a symlink to nothing" "$MOUNT_LOG"
tap_ok $? "... the message names it" || _log_tail "$MOUNT_LOG"
assert_volumes_unchanged
tap_done
