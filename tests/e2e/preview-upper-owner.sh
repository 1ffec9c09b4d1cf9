#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The upper is the preview's private state: one daemon at a time, owned by
# the daemon's user. A second preview on the same upper (two vmstorage
# processes writing one tree, each daemon with its own idea of which files
# are still stubs) must be refused while the first runs, and an existing
# upper directory that another user owns (made in advance in /tmp by that
# user) must be refused: its owner could rename, replace or read anything in
# it, and plant symlinks where the daemon writes vmunionfs.json.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv

copy_two_volumes
snapshot_volumes "$vols/node0" "$vols/node1"

# --- a second preview on the same upper
upper="$SCRATCH/upper"
mnt1=$(scratch_dir mnt1)
mnt2=$(scratch_dir mnt2)
mount_union "$mnt1" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "first preview mounted" || tap_bail "no mount"
MOUNT_TIMEOUT=5 mount_union "$mnt2" "$vols/node0" "$vols/node1" -- -o "upper=$upper" 2>/dev/null
rc=$?
tap_ok $((rc == 0)) "a second preview on the same upper is refused while the first runs"
[ "$rc" -ne 0 ] || unmount_union "$mnt2"
unmount_union "$mnt1"
tap_ok $? "first preview unmounted"
mount_union "$mnt1" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "the upper mounts again once the first preview is gone"
unmount_union "$mnt1"

# --- an upper directory owned by another user
chmod 0755 "$SCRATCH"
tmp=$(scratch_dir tmp) && chmod 1777 "$tmp" # like /tmp
theirs="$tmp/preview"
setpriv --reuid=65534 --regid=65534 --clear-groups mkdir "$theirs"
tap_ok $? "nobody made an empty directory"
mnt3=$(scratch_dir mnt3)
MOUNT_TIMEOUT=5 mount_union "$mnt3" "$vols/node0" "$vols/node1" -- -o "upper=$theirs" 2>/dev/null
rc=$?
tap_ok $((rc == 0)) "an upper owned by another user (nobody) is refused"
if [ "$rc" -eq 0 ]; then
	tap_diag "$(stat -c '%U %a %n' "$theirs")"
	unmount_union "$mnt3"
else
	grep -q "$theirs" "$MOUNT_LOG"
	tap_ok $? "the refusal names the upper" || _log_tail "$MOUNT_LOG"
fi
assert_volumes_unchanged
tap_done
