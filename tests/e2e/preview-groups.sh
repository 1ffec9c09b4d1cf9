#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The writable preview creates as the caller, supplementary groups included:
# a user who may write a dir only through a supplementary group creates
# there, and what it makes is its own (uid, primary gid, or the dir's gid
# when the dir is setgid). The daemon's own groups never stand in for the
# caller's, also when the caller's groups cannot be read (a caller in a pid
# namespace the daemon does not see: they are then none), and the daemon's
# threads get their own groups back.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv unshare

MEMBER=20001      # primary group 20001, supplementary group DATA
OUTSIDER=20002    # primary group 20002, no supplementary group
DATA=20100        # the group the shared dirs are writable by
DAEMON_ONLY=20200 # a group of the daemon's, which no caller has

as_member() { setpriv --reuid=$MEMBER --regid=$MEMBER --groups=$DATA "$@"; }
as_outsider() { setpriv --reuid=$OUTSIDER --regid=$OUTSIDER --clear-groups "$@"; }

vol="$SCRATCH/node0"
copy_volume "$DATA_DIR/v1.79.5/node0" "$vol" || tap_bail "cannot copy the sample volume"
snapshot_volumes "$vol"
chmod 0755 "$SCRATCH" # the users must reach the mountpoint
upper="$SCRATCH/upper"
mnt=$(scratch_dir mnt)

# The daemon runs with supplementary groups of its own (root in a container
# usually has none), as one started from a login shell may: 0 and DAEMON_ONLY.
# PREFIX is put before it: e.g. unshare into a new pid namespace.
daemon_with_groups() {
	local wrapper="$SCRATCH/vmunionfs-$1"
	shift
	printf '#!/bin/sh\nexec %s setpriv --groups=0,%s -- %q "$@"\n' \
		"$*" "$DAEMON_ONLY" "$VMUNIONFS" >"$wrapper" && chmod +x "$wrapper" &&
		printf '%s\n' "$wrapper"
}
daemon=$(daemon_with_groups plain)
VMUNIONFS=$daemon mount_union "$mnt" "$vol" -- -f -o upper="$upper" -o allow_other
tap_ok $? "preview mounted with allow_other by a daemon with groups 0,$DAEMON_ONLY" || tap_done
pid=$(union_pids "$mnt")

# shared_dir NAME MODE : made through the mount by root, root:DATA MODE.
shared_dir() {
	mkdir "$mnt/$1" && chgrp "$DATA" "$mnt/$1" && chmod "$2" "$mnt/$1"
}
shared_dir shared 0775 && shared_dir sgid 2775
tap_ok $? "root makes dirs root:$DATA 0775 and 2775 through the mount"

# --- a member of the dir's group, through a supplementary group only
tap_run "a member makes a dir in it" as_member mkdir "$mnt/shared/dir"
tap_run "... creates a file" as_member sh -c "echo bytes >'$mnt/shared/file'"
tap_run "... makes a symlink" as_member ln -s file "$mnt/shared/link"
tap_run "... and a fifo (mknod)" as_member mkfifo "$mnt/shared/fifo"
tap_is "$(cd "$upper/tree/shared" 2>&1 && stat -c '%n %u:%g' dir file link fifo | tr '\n' ' ')" \
	"dir $MEMBER:$MEMBER file $MEMBER:$MEMBER link $MEMBER:$MEMBER fifo $MEMBER:$MEMBER " \
	"... all owned by its uid and primary gid in the upper"
tap_run "... renames its file" as_member mv "$mnt/shared/file" "$mnt/shared/renamed"
tap_is "$(cat "$mnt/shared/renamed" 2>&1)" bytes "... which keeps its bytes"
tap_run "... unlinks and removes what it made" \
	as_member rm -r "$mnt/shared/renamed" "$mnt/shared/link" "$mnt/shared/fifo" "$mnt/shared/dir"
tap_is "$(ls -A "$upper/tree/shared" 2>&1)" "" "... gone from the upper"

tap_run "a member makes a dir and a file in a setgid dir" \
	as_member sh -c "mkdir '$mnt/sgid/dir' && echo bytes >'$mnt/sgid/file'"
tap_is "$(cd "$upper/tree/sgid" 2>&1 && stat -c '%n %u:%g' dir file | tr '\n' ' ')" \
	"dir $MEMBER:$DATA file $MEMBER:$DATA " "... they take the dir's group"
[ -g "$upper/tree/sgid/dir" ] && [ ! -g "$upper/tree/sgid/file" ]
tap_ok $? "... the dir inherits setgid, the file has none"

# --- a user without the group
tap_fails "a user without the group cannot create a file there" \
	as_outsider touch "$mnt/shared/evil"
grep -q "Permission denied" "$TAP_OUT"
tap_ok $? "... EACCES" || tap_diag "$(cat "$TAP_OUT")"
tap_fails "... nor make a dir in the setgid dir" as_outsider mkdir "$mnt/sgid/evil"

# --- never through a group the caller lacks. The kernel checks the caller
# on the attributes it cached (timeout 86400 s): a dir whose group is changed
# underneath, in the upper, still looks writable to the member, and then
# the upper decides, with the credentials the daemon took.
# stale_grant WHAT : the member's creates, each in a dir of its own (a
# create drops the kernel's cached attributes of its dir), that only
# DAEMON_ONLY would let it write.
stale_grant() {
	local kind ok=0
	for kind in file dir link fifo; do
		shared_dir "turned-$kind" 0775 && stat "$mnt/turned-$kind" >/dev/null &&
			chgrp "$DAEMON_ONLY" "$upper/tree/turned-$kind" || ok=1
	done
	tap_ok $ok "$1: dirs root:$DATA 0775 become root:$DAEMON_ONLY in the upper"
	tap_fails "$1: the member cannot create a file in one" \
		as_member sh -c "echo x >'$mnt/turned-file/new'"
	grep -q "Permission denied" "$TAP_OUT"
	tap_ok $? "$1: ... EACCES" || tap_diag "$(cat "$TAP_OUT")"
	tap_fails "$1: ... nor make a dir" as_member mkdir "$mnt/turned-dir/new"
	tap_fails "$1: ... nor a symlink" as_member ln -s x "$mnt/turned-link/new"
	tap_fails "$1: ... nor a fifo" as_member mkfifo "$mnt/turned-fifo/new"
	tap_is "$(cd "$upper/tree" && find turned-* -mindepth 1 2>&1)" "" \
		"$1: ... nothing made in the upper"
}
stale_grant "the daemon's groups"

groups_of_threads() {
	sed -n 's/^Groups:[[:space:]]*//p' /proc/"$1"/task/*/status | sed 's/[[:space:]]*$//' |
		sort -u | tr '\n' ' '
}
tap_is "$(groups_of_threads "$pid")" "0 $DAEMON_ONLY " \
	"every thread of the daemon has its own groups back"
unmount_union "$mnt"
tap_ok $? "unmounted"

# --- a caller whose groups cannot be read: the daemon in a pid namespace
# of its own, where the callers outside have pid 0.
if ! unshare --pid --fork --kill-child true 2>/dev/null; then
	tap_skip "unshare --pid is refused here" "callers outside the daemon's pid namespace"
else
	daemon=$(daemon_with_groups pidns unshare --pid --fork --kill-child --)
	rm -r "$upper"/tree/turned-*
	VMUNIONFS=$daemon mount_union "$mnt" "$vol" -- -f -o upper="$upper" -o allow_other
	tap_ok $? "remounted by a daemon in a pid namespace of its own" || tap_done
	tap_fails "its groups unread, the member cannot create through its group" \
		as_member touch "$mnt/shared/file"
	mkdir "$mnt/mine" && chown "$MEMBER:$MEMBER" "$mnt/mine"
	tap_run "... but creates in its own dir" as_member touch "$mnt/mine/file"
	tap_is "$(stat -c '%u:%g' "$upper/tree/mine/file" 2>&1)" "$MEMBER:$MEMBER" \
		"... as itself"
	stale_grant "groups unread"
	grep -q "supplementary groups of caller pid 0 cannot be read" "$MOUNT_LOG"
	tap_ok $? "the log says why" || _log_tail "$MOUNT_LOG"
	[ "$(grep -c "supplementary groups of caller pid" "$MOUNT_LOG")" = 1 ]
	tap_ok $? "... once"
	unmount_union "$mnt"
	tap_ok $? "unmounted"
fi

assert_volumes_unchanged "volume byte-identical after the group members"
tap_done
