#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Mount conventions, as mount(8), fstab and findmnt see them: the user's
# fsname and subtype win; every option is checked before a volume is
# touched; an fstab line mounts through mount.fuse3 (fuse.vmunionfs) and
# through contrib/mount.vmunionfs (`mount -t vmunionfs`).
#
# mount(8) looks for helpers in /sbin and runs mount.fuse3's command with
# its own PATH, so those parts run in a private mount namespace where the
# built helper is bind-mounted into /usr/sbin and the built vmunionfs into
# /usr/local/bin; nothing outside the namespace changes.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd unshare findmnt flock timeout

v=("$DATA_DIR"/v1.79.5/node0 "$DATA_DIR"/v1.79.5/node1)
snapshot_volumes "${v[@]}"
helper="$top_builddir/contrib/mount.vmunionfs"

# --- fsname and subtype
mnt=$(scratch_dir mnt)
mount_union "$mnt" "${v[@]}"
tap_ok $? "mounted with the default names" || tap_done
tap_is "$(findmnt -n -o SOURCE "$mnt")" "${v[0]}:${v[1]}" "fsname defaults to the volumes"
tap_is "$(findmnt -n -o FSTYPE "$mnt")" "fuse.vmunionfs" "subtype defaults to vmunionfs"
unmount_union "$mnt"
mount_union "$mnt" "${v[@]}" -- -o fsname=merged-01,subtype=vmpreview
tap_ok $? "mounted with -o fsname=merged-01,subtype=vmpreview" || tap_done
tap_is "$(findmnt -n -o SOURCE "$mnt")" "merged-01" "the user's fsname wins"
tap_is "$(findmnt -n -o FSTYPE "$mnt")" "fuse.vmpreview" "the user's subtype wins"
unmount_union "$mnt"

# --- options are checked before the volumes
locked=$(scratch_dir locked)
copy_volume "${v[0]}" "$locked/node0"
# One process holds the lock, as vmstorage does (flock(1) would pass it to
# a child that outlives a kill).
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1])
fcntl.flock(f, fcntl.LOCK_EX)
time.sleep(60)' "$locked/node0/flock.lock" &
holder=$!
on_exit "kill $holder 2>/dev/null; wait $holder 2>/dev/null"
wait_for 30 sh -c "! flock -n -s '$locked/node0/flock.lock' true"
tap_ok $? "a vmstorage stand-in holds the volume's lock"
"$VMUNIONFS" "$locked/node0" "$mnt" >"$SCRATCH/locked.log" 2>&1
tap_is $? 1 "a locked volume is refused (exit 1)"
"$VMUNIONFS" -o upper_dir=x "$locked/node0" "$mnt" >"$SCRATCH/typo.log" 2>&1
tap_is $? 64 "a typo in an option is a usage error even with a locked volume"
grep -q "upper_dir" "$SCRATCH/typo.log" && ! grep -q "refused" "$SCRATCH/typo.log"
tap_ok $? "... naming the option, not the lock" || tap_diag <"$SCRATCH/typo.log"
"$VMUNIONFS" -o bogus "$SCRATCH/missing" "$mnt" >/dev/null 2>&1
tap_is $? 64 "an unknown option is reported before a missing volume"
"$VMUNIONFS" -o timeout=-1 "$SCRATCH/missing" "$mnt" >/dev/null 2>&1
tap_is $? 64 "a negative timeout is a usage error"
kill $holder 2>/dev/null

# --- the mount helper's argument convention
"$helper" "${v[0]}:${v[1]}" "$mnt" -f -o defaults,nofail >/dev/null 2>&1
tap_is $? 0 "mount.vmunionfs -f (fake) exits 0"
! mountpoint -q "$mnt"
tap_ok $? "... without mounting"
VMUNIONFS="$VMUNIONFS" "$helper" "${v[0]}" "$mnt" -o bogus >/dev/null 2>&1
tap_is $? 64 "mount.vmunionfs passes filesystem options on (an unknown one fails)"
"$helper" "${v[0]}" >/dev/null 2>&1
tap_is $? 64 "mount.vmunionfs without a mountpoint is a usage error"

# --- fstab lines and mount -t, in a private mount namespace
ns=$(scratch_dir ns)
upper=$(scratch_dir upper)
mkdir -p "$ns/bin" "$ns/sbin" "$ns/orig-sbin" "$ns/m1" "$ns/m2" "$ns/m3"
ln -s "$VMUNIONFS" "$ns/bin/vmunionfs"
cat >"$ns/fstab" <<EOT
# the lines of vmunionfs(1), FSTAB, on the test's volumes
${v[0]}:${v[1]}  $ns/m1  vmunionfs       defaults,nofail,fsname=merged-23  0 0
${v[0]}:${v[1]}  $ns/m2  vmunionfs       upper=$upper,nofail  0 0
${v[0]}:${v[1]}  $ns/m3  fuse.vmunionfs  defaults,nofail,_netdev,x-systemd.after=network.target  0 0
EOT
cat >"$ns/inside.sh" <<'EOT'
# Runs in the namespace: prints "name rc" lines for the outer test.
ns=$1 helper=$2 vol0=$3 vol1=$4
trap 'for m in m1 m2 m3; do umount -l "$ns/$m" 2>/dev/null; done' EXIT
mount --bind /usr/sbin "$ns/orig-sbin" || exit 1
for f in "$ns"/orig-sbin/*; do ln -s "$f" "$ns/sbin/"; done
cp "$helper" "$ns/sbin/mount.vmunionfs"
mount --bind "$ns/sbin" /usr/sbin && mount --bind "$ns/bin" /usr/local/bin || exit 1
export VMUNIONFS=$ns/bin/vmunionfs
check() { echo "$1 $2"; }
mount -T "$ns/fstab" "$ns/m1"; check fstab-ro $?
check fstab-ro-source "$(findmnt -n -o SOURCE "$ns/m1")"
check fstab-ro-options "$(findmnt -n -o OPTIONS "$ns/m1" | cut -d, -f1)"
test -d "$ns/m1/data/small"; check fstab-ro-tree $?
mount -T "$ns/fstab" "$ns/m2"; check fstab-upper $?
touch "$ns/m2/written"; check fstab-upper-write $?
mount -T "$ns/fstab" "$ns/m3"; check fstab-fuse $?
check fstab-fuse-type "$(findmnt -n -o FSTYPE "$ns/m3")"
umount "$ns/m1" && umount "$ns/m2" && umount "$ns/m3"; check umount $?
mount -t vmunionfs "$vol0:$vol1" "$ns/m1" -o fsname=direct; check mount-t $?
check mount-t-source "$(findmnt -n -o SOURCE "$ns/m1")"
umount "$ns/m1"; check mount-t-umount $?
mount -t fuse.vmunionfs "$vol0" "$ns/m1"; check mount-t-fuse $?
umount "$ns/m1"; check mount-t-fuse-umount $?
EOT
timeout -k 5 60 unshare -m --propagation private bash "$ns/inside.sh" "$ns" "$helper" \
	"${v[0]}" "${v[1]}" >"$ns/results" 2>"$ns/stderr"
tap_is $? 0 "the namespace script ran" || tap_diag <"$ns/stderr"
result() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "$ns/results"; }
tap_is "$(result fstab-ro)" 0 "fstab line: mount -T FSTAB MOUNTPOINT (type vmunionfs)"
tap_is "$(result fstab-ro-source)" merged-23 "... with the fstab's fsname"
tap_is "$(result fstab-ro-options)" ro "... read-only without upper"
tap_is "$(result fstab-ro-tree)" 0 "... serving the merged tree"
tap_is "$(result fstab-upper)" 0 "fstab line with upper= mounts"
tap_is "$(result fstab-upper-write)" 0 "... writable"
test -e "$upper/tree/written"
tap_ok $? "... the write landed in the upper"
tap_is "$(result fstab-fuse)" 0 "fstab line of type fuse.vmunionfs mounts (mount.fuse3)"
tap_is "$(result fstab-fuse-type)" fuse.vmunionfs "... as fuse.vmunionfs"
tap_is "$(result umount)" 0 "umount(8) unmounts them"
tap_is "$(result mount-t)" 0 "mount -t vmunionfs VOL:VOL DIR -o fsname=direct"
tap_is "$(result mount-t-source)" direct "... with that fsname"
tap_is "$(result mount-t-umount)" 0 "... and unmounts"
tap_is "$(result mount-t-fuse)" 0 "mount -t fuse.vmunionfs VOL DIR"
tap_is "$(result mount-t-fuse-umount)" 0 "... and unmounts"
# ns_daemons : daemons serving a mountpoint of the namespace.
ns_daemons() {
	local pid
	for pid in $(pgrep -x vmunionfs); do
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$ns/" && echo "$pid"
	done
}
wait_for 10 test -z "$(ns_daemons)"
tap_ok $? "no daemon is left behind"

assert_volumes_unchanged
tap_done
