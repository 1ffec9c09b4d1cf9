#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The preview's listings (issue 11, second walk): every handle of a dir,
# opened lazy or after the dir was populated, numbers its entries alike (a
# plan name keeps its plan position, a new name the offset it was first
# given), so the kernel keeps the listing of every dir and a second walk
# sends no READDIR. A handle going on after other handles made, removed and
# re-listed entries is given every entry that stayed exactly once.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

vols=("$DATA_DIR"/v1.79.5/node0 "$DATA_DIR"/v1.79.5/node1)
snapshot_volumes "${vols[@]}"
mnt=$(scratch_dir mnt)
mount_union "$mnt" "${vols[@]}" -- -d -o "upper=$SCRATCH/upper"
tap_ok $? "preview mounted with the request trace" || tap_bail "no mount"
trace=$MOUNT_LOG

listings() {
	grep -c 'opcode: READDIR' "$trace"
}

walk() {
	find "$mnt" -printf '%p %s %y\n' | sort
}

first=$(walk)
before=$(listings)
second=$(walk)
tap_is "$(($(listings) - before))" 0 "a second walk of the lazy preview sent no READDIR"
tap_is "$second" "$first" "and showed what the first showed"

# A populated dir: a file made in a partition, whose listing then has the
# plan's parts and the new name.
partition=$(cd "$mnt" && ls -d data/small/2024_* | head -n 1)
touch "$mnt/$partition/made-here"
tap_ok $? "a file made in $partition populated it"
ls -a "$mnt/$partition" >/dev/null
before=$(listings)
ls -a "$mnt/$partition" >"$SCRATCH/populated.ls"
tap_is "$(($(listings) - before))" 0 "a second listing of the populated dir sent no READDIR"
tap_is "$(grep -cx made-here "$SCRATCH/populated.ls")" 1 "and has the new name"

# handles.py DIR: a dir of new names listed a few entries at a time by one
# handle while others make and remove names and list the dir from the start
# (the daemon then reads it anew); prints the names the first handle saw.
mkdir "$mnt/many" && for i in $(seq 1 300); do : >"$mnt/many/name-$i"; done
tap_ok $? "made a dir of 300 names through the preview"
cat >"$SCRATCH/handles.py" <<'PY'
import os, sys
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.environ['top_srcdir'], 'tests/e2e'))
import getdents

d = sys.argv[1]
handle = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
seen = getdents.some(handle, 512)
for round in range(5):
    for i in range(20):
        open(os.path.join(d, 'later-%d-%d' % (round, i)), 'w').close()
    # a name not seen yet, and one seen: gone, either may be listed or not
    unseen = sorted(n for n in set(os.listdir(d)) - set(seen) if n.startswith('name-'))
    for name in unseen[:3] + [n for n in seen if n.startswith('name-')][round:round + 1]:
        os.unlink(os.path.join(d, name))
        print('removed', name)
    other = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    getdents.rest(other, 4096)
    os.close(other)
    seen += getdents.some(handle, 512)
seen += getdents.rest(handle, 512)
for name in seen:
    print('seen', name)
PY
python3 "$SCRATCH/handles.py" "$mnt/many" >"$SCRATCH/handles.out" 2>&1
tap_ok $? "listed it through one handle while others changed it" ||
	tap_diag <"$SCRATCH/handles.out"
awk '$1 == "seen" { print $2 }' "$SCRATCH/handles.out" | sort >"$SCRATCH/seen"
awk '$1 == "removed" { print $2 }' "$SCRATCH/handles.out" | sort >"$SCRATCH/removed"
tap_is "$(uniq -d "$SCRATCH/seen" | tr '\n' ' ')" "" "no entry listed twice"
# Every name made before the listing and never removed must be there.
missing=$(seq 1 300 | sed 's/^/name-/' | sort | comm -23 - "$SCRATCH/removed" |
	comm -23 - "$SCRATCH/seen" | tr '\n' ' ')
tap_is "$missing" "" "no name that stayed is missing"
removed=$(grep -c . "$SCRATCH/removed")
tap_ok "$((removed != 20))" "while names were removed ($removed)"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
