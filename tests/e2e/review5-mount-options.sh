#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review5: -o upper=FILE failed with "FILE: Not a directory", without saying
# that FILE is the upper; and -o suid or -o dev, which the man page does not
# list, made libfuse drop nosuid or nodev on a mount whose files, other
# users' included, the daemon serves as root. Now the message names the
# upper, and suid and dev are ignored (not refused: mount.fuse3 passes them
# for an fstab line's "defaults", mount-conventions.sh): the mount stays
# nosuid,nodev.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse

vols=("$DATA_DIR/v1.79.5/node0" "$DATA_DIR/v1.79.5/node1")
snapshot_volumes "${vols[@]}"
mnt=$(scratch_dir mnt)
on_exit "_unmount_quiet '$mnt'"

# run_daemon ARGS... : vmunionfs in the background as usual; its status in
# $rc, its messages in $SCRATCH/err.
run_daemon() {
	"$VMUNIONFS" "$@" "${vols[@]}" "$mnt" >"$SCRATCH/err" 2>&1 </dev/null
	rc=$?
}

touch "$SCRATCH/file"
run_daemon -o "upper=$SCRATCH/file"
tap_is "$rc" 2 "-o upper=FILE: an I/O error (exit 2)"
grep -q "upper $SCRATCH/file: Not a directory" "$SCRATCH/err"
tap_ok $? "... the message names the upper and the reason" || tap_diag "$(cat "$SCRATCH/err")"
"$VMUNION" materialize --upper "$SCRATCH/file" "${vols[@]}" "$SCRATCH/dest" >"$SCRATCH/err" 2>&1
tap_is "$?" 2 "vmunion materialize --upper FILE: exit 2"
grep -q "upper $SCRATCH/file: Not a directory" "$SCRATCH/err"
tap_ok $? "... the message names the upper and the reason" || tap_diag "$(cat "$SCRATCH/err")"

for options in suid dev nosuid,dev ro,suid,nodev; do
	mount_union "$mnt" "${vols[@]}" -- -o "$options"
	tap_ok $? "-o $options mounts"
	mount_options=$(awk -v m="$mnt" '$2 == m { print $4 }' /proc/mounts)
	[[ ",$mount_options," == *,nosuid,* && ",$mount_options," == *,nodev,* ]]
	tap_ok $? "... still nosuid,nodev ($mount_options)"
	unmount_union "$mnt"
	tap_ok $? "... unmounted"
done

# The ones that stay: nosuid and nodev are the default, and say so.
mount_union "$mnt" "${vols[@]}" -- -o nosuid,nodev,noexec
tap_ok $? "-o nosuid,nodev,noexec mounts"
options=$(awk -v m="$mnt" '$2 == m { print $4 }' /proc/mounts)
[[ ",$options," == *,nosuid,* && ",$options," == *,nodev,* ]]
tap_ok $? "the mount is nosuid,nodev ($options)"
unmount_union "$mnt"
tap_ok $? "unmounted"
mount_union "$mnt" "${vols[@]}"
options=$(awk -v m="$mnt" '$2 == m { print $4 }' /proc/mounts)
[[ ",$options," == *,nosuid,* && ",$options," == *,nodev,* ]]
tap_ok $? "without options too ($options)"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
