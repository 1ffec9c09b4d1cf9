#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A directory merged from two volumes (a partition both hold) serves an ACL
# granting no one more than either volume's directory grants (plan.c
# merge_dir_acl): identical ACLs as they are, differing ones intersected, an
# ACL on one side only cut by the other side's mode; default ACLs that
# differ are refused by the mount and by vmunion plan and check. Checked as
# nobody (and uid 65533) through allow_other mounts, read-only and preview,
# the preview's dir both lazy and populated into the upper.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv python3

shared_volumes
dir=data/small/2024_01
[ -d "$vols/node0/$dir" ] && [ -d "$vols/node1/$dir" ] || tap_bail "$dir is not in both volumes"

# plain DIR MODE : no ACL, the mode alone.
plain() {
	python3 -c 'import os, sys
for n in ("system.posix_acl_access", "system.posix_acl_default"):
    try: os.removexattr(sys.argv[1], n)
    except OSError: pass' "$1" && chmod "$2" "$1"
}

as_user() {
	local uid=$1
	shift
	setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"
}

# lists UID DIR : whether uid can list DIR (0) or not.
lists() {
	as_user "$1" ls "$2" >/dev/null 2>&1 || return 1
}

set_acl "$vols/node0/$dir" access "${NOBODY_DENIED[@]}" ||
	tap_skip_all "no POSIX ACLs where the scratch dir is"

# check_uids WHAT MNT UID... : each uid lists $dir through MNT as on both
# volumes (denied if either denies); root does.
check_uids() {
	local what=$1 mnt=$2 uid want
	shift 2
	for uid in "$@"; do
		want=0
		lists "$uid" "$vols/node0/$dir" && lists "$uid" "$vols/node1/$dir" || want=1
		lists "$uid" "$mnt/$dir"
		tap_is "$?" "$want" "$what: uid $uid lists $dir as the volumes let it"
	done
	ls "$mnt/$dir" >/dev/null
	tap_ok $? "$what: root lists it"
}

# expect WHAT UID... : check_uids through a read-only mount and a preview,
# there with $dir below a lazy dir, then (a new partition populating
# data/small) a dir of the upper.
expect() {
	local what=$1 mode mnt extra
	shift
	for mode in read-only preview; do
		mnt=$(scratch_dir "mnt-$mode")
		rm -rf "$SCRATCH/upper"
		extra=(-o allow_other)
		[ "$mode" = preview ] && extra+=(-o "upper=$SCRATCH/upper")
		mount_union "$mnt" "$vols/node0" "$vols/node1" -- "${extra[@]}"
		tap_ok $? "$what, $mode: mounted" || continue
		check_uids "$what, $mode" "$mnt" "$@"
		if [ "$mode" = preview ]; then
			mkdir "$mnt/data/small/2099_01" && [ -d "$SCRATCH/upper/tree/$dir" ]
			tap_ok $? "$what, $mode: $dir is now a dir of the upper"
			check_uids "$what, populated" "$mnt" "$@"
		fi
		unmount_union "$mnt"
	done
}

# acl_of PATH : the access ACL's bytes in hex, or "none".
acl_of() {
	python3 -c 'import os, sys
try: print(os.getxattr(sys.argv[1], "system.posix_acl_access").hex())
except OSError: print("none")' "$1"
}

snapshot_volumes "$vols/node0" "$vols/node1"

# Identical: nobody out of both, so out of the mount; the ACL served as is.
set_acl "$vols/node1/$dir" access "${NOBODY_DENIED[@]}"
expect "identical ACLs" 65534 65533
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1"
tap_ok $? "identical ACLs: mounted"
tap_is "$(acl_of "$mnt/$dir")" "$(acl_of "$vols/node0/$dir")" "identical ACLs: served as they are"
unmount_union "$mnt"

# Differing: each keeps out another user; both stay out.
set_acl "$vols/node1/$dir" access u::7 U:65533:0 g::5 m::5 o::5
expect "differing ACLs" 65534 65533 65532

# One side only, plain 0755 on the other: its ACL holds.
plain "$vols/node1/$dir" 0755
expect "an ACL on node0 only" 65534 65533
# ...and on the second volume only, whose attributes are not the ones shown.
plain "$vols/node0/$dir" 0755
set_acl "$vols/node1/$dir" access "${NOBODY_DENIED[@]}"
expect "an ACL on node1 only" 65534 65533
# An ACL letting nobody in where others are out, the other side 0755:
# nobody still gets in (no narrower than needed), 65533 does not.
set_acl "$vols/node1/$dir" access u::7 U:65534:5 g::5 m::5 o::0
expect "an ACL naming nobody, the other side open" 65534 65533
# The same against a private 0700: the mode cuts the ACL, nobody is out.
plain "$vols/node0/$dir" 0700
expect "an ACL naming nobody, the other side private" 65534 65533
plain "$vols/node0/$dir" 0755
plain "$vols/node1/$dir" 0755

# Default ACLs that differ: no merged one is right, refused everywhere.
set_acl "$vols/node0/$dir" default u::7 g::5 o::5
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" 2>/dev/null
tap_ok $(($? == 0)) "differing default ACLs: the mount is refused"
grep -q "$dir: the directory has different default ACLs in $vols/node0 and $vols/node1" "$MOUNT_LOG"
tap_ok $? "the refusal names the dir, the volumes and why" || tail -n 5 "$MOUNT_LOG" | tap_diag
tap_fails "differing default ACLs: vmunion plan refuses" "$VMUNION" plan "$vols/node0" "$vols/node1"
grep -q "different default ACLs" "$TAP_OUT"
tap_ok $? "vmunion plan says why"
tap_fails "differing default ACLs: vmunion check fails" "$VMUNION" check "$vols/node0" "$vols/node1"
grep -q "different default ACLs" "$TAP_OUT"
tap_ok $? "vmunion check says why"
# The same default ACL on both: served.
set_acl "$vols/node1/$dir" default u::7 g::5 o::5
mount_union "$mnt" "$vols/node0" "$vols/node1"
tap_ok $? "identical default ACLs: mounted"
python3 -c 'import os, sys
print(os.getxattr(sys.argv[1], "system.posix_acl_default") ==
      os.getxattr(sys.argv[2], "system.posix_acl_default"))' "$mnt/$dir" "$vols/node0/$dir" |
	grep -qx True
tap_ok $? "identical default ACLs: served"
unmount_union "$mnt"
! mountpoint -q "$mnt"
tap_ok $? "nothing left mounted"
# The volumes' ACLs are xattrs tree_checksum does not see: the snapshot
# stands for the bytes and modes (chmod above changed modes, put back).
assert_volumes_unchanged
tap_done
