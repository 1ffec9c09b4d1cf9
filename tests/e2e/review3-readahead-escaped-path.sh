#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (readahead): the daemon finds its mount in /proc/self/mountinfo by
# the mount point field, read with sscanf("%4095s"). The kernel escapes a
# space there as "\040" (four bytes), so a mount point of about 1000 spaces
# fills those 4095 bytes: the field is cut, and a cut field may name
# another mount. Here two dirs whose names differ after the cut:
#   victim   D + " victim"   (escaped: E(D) "\040victim")
#   attacked D + "\04"       (a backslash, then "04")
# with E(D) 4092 bytes long. The victim's field, cut at 4095 bytes, is
# E(D) "\04": unescaped it is D "\04", the attacked mount point, while the
# attacked mount's own field (E(D) "\13404") is cut to E(D) "\13" and
# matches nothing. So the root daemon mounting at D "\04" writes the
# read_ahead_kb of the victim, another root FUSE mount, and no race is
# needed. Whoever picks the names of mountpoints (a user who owns the dir
# where the previews are mounted) picks the device.
# Fixed: the table's lines are split whatever their length, and the
# daemon takes only a mount that was not there before its mount(2).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

copy_sample_volume

# Makes the two dirs under $1; prints their paths, NUL-terminated.
python3 - "$SCRATCH/names" >"$SCRATCH/paths" <<'PY'
import os, sys

def escaped_length(path):
    return len(path) + 3 * sum(path.count(c) for c in ' \t\n\\')

base = sys.argv[1]
while escaped_length(base) < 4092 - 300:
    base += '/' + ' ' * 60
need = 4092 - escaped_length(base) - 1
prefix = base + '/' + ' ' * (need // 4) + 'x' * (need % 4)
assert escaped_length(prefix) == 4092
victim, attacked = prefix + ' victim', prefix + '\\04'
for path in (victim, attacked):
    os.makedirs(path)
sys.stdout.write(victim + '\0' + attacked + '\0')
PY
tap_ok $? "made the two mountpoints" || tap_bail "cannot make the mountpoints"
{ IFS= read -r -d '' victim && IFS= read -r -d '' attacked; } <"$SCRATCH/paths"
tap_diag "mountpoints of ${#victim} and ${#attacked} bytes"

mount_union "$victim" "$vol" -- -o readahead=0
tap_ok $? "victim mounted, readahead=0 (the kernel's)" || tap_bail "no victim mount"
before=$(read_ahead_kb_of "$victim")

# Started by hand: the helpers of lib.sh find mounts with awk -v, which
# reads the "\04" of this name as an escape.
log="$SCRATCH/attacked.log"
"$VMUNIONFS" -f -o readahead=4 "$vol" "$attacked" >"$log" 2>&1 </dev/null &
daemon=$!
on_exit "kill $daemon 2>/dev/null; wait $daemon 2>/dev/null"
on_exit "$(printf 'fusermount3 -uz %q 2>/dev/null' "$attacked")"
wait_for 10 mountpoint -q "$attacked"
tap_ok $? "a second mount at the crafted name, readahead=4" || tap_bail "no mount: $(cat "$log")"
# It raises the knob before answering INIT: it is done once the mount answers.
ls "$attacked" >/dev/null
after=$(read_ahead_kb_of "$victim")
tap_is "$after" "$before" "the victim's read_ahead_kb is untouched" ||
	tap_diag "daemon log: $(tail -n 3 "$log")"
tap_is "$(read_ahead_kb_of "$attacked")" 4 "the second mount reads ahead its own 4 KiB"

fusermount3 -u "$attacked" && wait "$daemon"
tap_ok $? "unmounted the second mount, its daemon exited"
unmount_union "$victim"
tap_ok $? "unmounted the victim"
assert_volumes_unchanged
tap_done
