#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (readahead): the daemon used to look its mount up again by its
# path, after the mount. A user who owns the mountpoint's parent could rename
# that parent and put a symlink in its place between the mount and that
# stat(2): the daemon (root) then wrote the read_ahead_kb of whatever device
# the symlink led to. Now the daemon finds its mount in /proc/self/mountinfo
# right after mount(2), by the path it mounted on, its type and its user_id,
# and opens nothing there. Here the window is widened with strace (a delay
# after mount(2) returns), and the victim is another FUSE mount (the root
# disk would do as well). Also: a mount unmounted before that lookup must not
# make it take the device underneath.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd strace

copy_sample_volume

# The victim: any other device; a mount that keeps the kernel's read-ahead.
victim="$SCRATCH/victim/mnt"
mount_union "$victim" "$vol" -- -o readahead=0,upper="$SCRATCH/upper"
tap_ok $? "victim (a preview) mounted, readahead=0" || tap_bail "no victim mount"
before=$(read_ahead_kb_of "$victim")
tap_diag "victim read_ahead_kb before: $before"

# The mount of a user's preview, below a parent that user owns.
mkdir -p "$SCRATCH/user/mnt"
mnt="$SCRATCH/user/mnt"
log="$SCRATCH/attacked.log"
# LeakSanitizer cannot run under ptrace.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -o /dev/null -e trace=mount -e inject=mount:delay_exit=3000000 \
	"$VMUNIONFS" -f -o readahead=4 "$vol" "$mnt" >"$log" 2>&1 </dev/null &
daemon=$!
on_exit "kill $daemon 2>/dev/null; wait $daemon 2>/dev/null"
on_exit "fusermount3 -uz '$SCRATCH/user.old/mnt' 2>/dev/null; fusermount3 -uz '$mnt' 2>/dev/null"
wait_for 10 _mnt_is_mounted "$mnt"
tap_ok $? "the daemon mounted (mountinfo)" || tap_bail "no mount: $(cat "$log")"

# The user's move: rename the parent, leave a symlink to the victim.
mv "$SCRATCH/user" "$SCRATCH/user.old" && ln -s "$SCRATCH/victim" "$SCRATCH/user"
tap_ok $? "the parent of the mountpoint replaced by a symlink"

# The daemon serves once the delay is over.
wait_for 10 eval "mountpoint -q '$SCRATCH/user.old/mnt'"
after=$(read_ahead_kb_of "$victim")
tap_is "$after" "$before" "the victim's read_ahead_kb is untouched"
own=$(read_ahead_kb_of "$SCRATCH/user.old/mnt")
# The mount table has it elsewhere now: the daemon leaves its read-ahead at
# the kernel's and says so.
grep -q "no new FUSE mount of this user there in /proc/self/mountinfo" "$log"
tap_ok $? "the mount's own read_ahead_kb stays the kernel's ($own), and the log says why" ||
	tap_diag "daemon log: $(cat "$log")"

fusermount3 -u "$SCRATCH/user.old/mnt"
tap_ok $? "unmounted the attacked mount"
wait "$daemon"

# --- unmounted before the lookup: what lies underneath (here a dir of the
# victim; as often the root disk) is not taken for it.
echo "$before" >"/sys/class/bdi/$(mountpoint -d "$victim")/read_ahead_kb"
mkdir "$victim/under"
# LeakSanitizer cannot run under ptrace.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -o /dev/null -e trace=mount \
	-e inject=mount:delay_exit=3000000 \
	"$VMUNIONFS" -f -o readahead=4 "$vol" "$victim/under" >"$log" 2>&1 </dev/null &
daemon=$!
on_exit "kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; umount -l '$victim/under' 2>/dev/null"
wait_for 10 _mnt_is_mounted "$victim/under"
tap_ok $? "a second mount, on a dir of the victim" || tap_bail "no mount: $(cat "$log")"
umount -l "$victim/under"
tap_ok $? "unmounted before it answered"
wait "$daemon"
tap_is "$(read_ahead_kb_of "$victim")" "$before" "the victim's read_ahead_kb is still untouched"
tap_diag "daemon log: $(cat "$log")"
unmount_union "$victim"
tap_ok $? "unmounted the victim"
rm -f "$SCRATCH/user"
assert_volumes_unchanged
tap_done
