#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What: materialize --into TARGET where another volume's root is private
# (0700) and TARGET's is 0755. The merged root is 0700 (the mount shows it),
# and commit.c swap narrows TARGET's root to it, but only after every merged
# entry has been renamed into TARGET: between the renames and the fchmod (a
# window in every run; forever after a kill there, until someone reruns),
# the private volume's files sit in a 0755 TARGET, their own modes 0644
# under dirs 0755, protected only by their volume root that is gone.
# Why it matters: a local user who opens them in that window keeps the fds;
# after a kill (OOM, reboot) and no rerun, the other volume's data stays
# world-readable. The output must never grant more than the mount shows.
# Right: TARGET's root is narrowed before any merged entry comes in: killed
# after the last rename, nobody still cannot read the private volume's files.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv
[ -x "$VMUNION_TEST" ] || tap_bail "$VMUNION_TEST not built (make check builds it)"
copy_two_volumes
chmod -R go+rX "$vols"
chmod 0755 "$SCRATCH" "$vols"
chmod 0700 "$vols/node1"
snapshot_volumes "$vols/node1"
target=$vols/node0
private=$(cd "$vols/node1" && find data/small -name index.bin | head -1)
[ -n "$private" ] && [ ! -e "$target/$private" ] || tap_bail "no file on node1 only"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o allow_other
tap_ok $? "mounted" || tap_bail "no mount"
tap_is "$(stat -c %a "$mnt")" 700 "the mount's root is 0700"
as_nobody cat "$mnt/$private" >/dev/null 2>&1
tap_ok $(($? == 0)) "through the mount nobody cannot read node1's $private"
unmount_union "$mnt"

originals=$(ls -A "$target" | wc -l)
# The originals move out, then the merged entries in (data/ among the first).
merged=$( (ls -A "$vols/node0"; ls -A "$vols/node1") | sort -u | wc -l)
point=swap:$((originals + merged))
(VMUNION_COMMIT_CRASH_AT=$point "$VMUNION_TEST" materialize --into "$target" -q --jobs 1 \
	"$vols/node0" "$vols/node1" >"$SCRATCH/crash.out" 2>&1; echo $? >"$SCRATCH/crash.rc") 2>/dev/null
tap_is "$(cat "$SCRATCH/crash.rc")" 137 "killed at $point (data/ moved into TARGET, the root not yet narrowed)"
[ -e "$target/$private" ]
tap_ok $? "node1's $private is in TARGET"
as_nobody cat "$target/$private" >/dev/null 2>&1
tap_ok $(($? == 0)) "killed after the swap's renames: nobody cannot read node1's file in TARGET" ||
	tap_diag "TARGET is $(stat -c %a "$target"), the mount showed 700"
tap_run "a rerun completes the commit" "$VMUNION" materialize --into "$target" -q "$vols/node0" "$vols/node1"
tap_is "$(stat -c %a "$target")" 700 "then TARGET's root is 0700"
tap_run "rollback" "$VMUNION" rollback "$target"
tap_is "$(stat -c %a "$target")" 755 "rollback gives TARGET its 0755 back"
assert_volumes_unchanged
tap_done
