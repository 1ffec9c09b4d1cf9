#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (readahead): after mount(2), the daemon looks its mount up in
# /proc/self/mountinfo by the path it mounted on. That path is a name, and
# names move: a user who owns the parent of two mountpoints, one of them
# another root FUSE mount (here a second preview of theirs), swaps the two
# parents between the mount and that lookup. The table then shows the other
# mount at this daemon's path, and the root daemon writes that mount's
# read_ahead_kb. (review2-readahead-other-device.sh puts a symlink there,
# which the table never shows; a renamed dir it does.) The window is widened
# with strace (a delay after mount(2) returns), as in review2's test.
# Fixed: the daemon takes the one FUSE mount of its user at that path that
# was not in the table before its mount(2), and the victim was.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd strace

copy_sample_volume
home="$SCRATCH/home"

# The victim: another root FUSE mount below the user's dir, which keeps the
# kernel's read-ahead.
mount_union "$home/x/mnt" "$vol" -- -o readahead=0
tap_ok $? "victim mounted at x/mnt, readahead=0" || tap_bail "no victim mount"
before=$(read_ahead_kb_of "$home/x/mnt")
tap_diag "victim read_ahead_kb before: $before"

mkdir -p "$home/y/mnt"
log="$SCRATCH/attacked.log"
# LeakSanitizer cannot run under ptrace.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -o /dev/null -e trace=mount \
	-e inject=mount:delay_exit=3000000 \
	"$VMUNIONFS" -f -o readahead=4 "$vol" "$home/y/mnt" >"$log" 2>&1 </dev/null &
daemon=$!
on_exit "kill $daemon 2>/dev/null; wait $daemon 2>/dev/null"
on_exit "fusermount3 -uz '$home/y.old/mnt' 2>/dev/null; fusermount3 -uz '$home/y/mnt' 2>/dev/null"
# Runs first: the victim's cleanup finds it at x/mnt again.
on_exit "[ -d '$home/y.old' ] && mv '$home/y' '$home/x' && mv '$home/y.old' '$home/y'"
wait_for 10 _mnt_is_mounted "$home/y/mnt"
tap_ok $? "the daemon mounted at y/mnt (mountinfo)" || tap_bail "no mount: $(cat "$log")"

# The user's move: y away, x in its place.
mv "$home/y" "$home/y.old" && mv "$home/x" "$home/y"
tap_ok $? "the parents swapped: the victim is at y/mnt now"

wait_for 10 eval "mountpoint -q '$home/y.old/mnt'"
tap_ok $? "the daemon serves (at y.old/mnt)" || tap_diag "daemon log: $(cat "$log")"
after=$(read_ahead_kb_of "$home/y/mnt")
tap_is "$after" "$before" "the victim's read_ahead_kb is untouched" ||
	tap_diag "daemon log: $(cat "$log")"

fusermount3 -u "$home/y.old/mnt" && wait "$daemon"
tap_ok $? "unmounted the attacked mount, its daemon exited"
mv "$home/y" "$home/x" && mv "$home/y.old" "$home/y"
tap_ok $? "the parents swapped back"
unmount_union "$home/x/mnt"
tap_ok $? "unmounted the victim"
assert_volumes_unchanged
tap_done
