#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review10: an unlink from a lazy dir leaves the dir's mtime and ctime as
# they were, and they stay so: the flusher's population keeps the plan's
# times (upper_populate_dir: "filling it is no change of the directory"),
# and the unlink itself is never made on the upper dir. unlink(2) marks the
# parent's st_mtime and st_ctime for update; a plain copy of the part dir
# does, and so did the preview before 026c3e7 (populate, then unlinkat in
# the upper dir). Tools that walk by mtime (backups, rsync -u, make) miss
# the change. Expected: after rm, the dir's mtime and ctime are the time
# of the rm, as on the plain copy, also after the flusher ran.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd getfattr

preview_of_two
partition=data/small/2024_01
part=$(cd "$mnt/$partition" && ls -d *_* | head -n 1)
p1=$partition/$part
plain=$SCRATCH/plain
cp -a "$mnt/$p1" "$plain"
tap_ok $? "a plain copy of a lazy part dir"
before=$(stat -c %Y "$mnt/$p1")
sleep 1.1
start=$(date +%s)
rm "$mnt/$p1/timestamps.bin" "$plain/timestamps.bin"
tap_ok $? "unlinked the same file from the lazy part dir and from the copy"
tap_diag "mtime ctime: preview $(stat -c '%Y %Z' "$mnt/$p1"), copy $(stat -c '%Y %Z' "$plain"), before $before"
[ "$(stat -c %Y "$plain")" -ge "$start" ] && [ "$(stat -c %Z "$plain")" -ge "$start" ]
tap_ok $? "the plain copy's mtime and ctime are the unlink's"
[ "$(stat -c %Y "$mnt/$p1")" -ge "$start" ] && [ "$(stat -c %Z "$mnt/$p1")" -ge "$start" ]
tap_ok $? "the lazy dir's mtime and ctime are the unlink's"
wait_for 10 eval "! getfattr -n user.vmunionfs.plan '$SCRATCH/upper/tree/$p1' >/dev/null 2>&1"
tap_ok $? "the flusher populated the dir"
[ "$(stat -c %Y "$mnt/$p1")" -ge "$start" ] && [ "$(stat -c %Z "$mnt/$p1")" -ge "$start" ]
tap_ok $? "... its mtime and ctime are still the unlink's"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
