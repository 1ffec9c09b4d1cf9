#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (listings): a listing's d_ino must be the st_ino stat gives. A
# plan child of a populated dir is shown with its plan inode (1<<62 | n)
# while the kernel holds its node; once memory pressure makes the kernel
# forget it (echo 2 > drop_caches), the next LOOKUP makes a new node with
# the upper file's inode. The dir's listing, kept by the kernel
# (keep_cache + cache_readdir) since nothing in the dir changed, still
# gives the plan inode: d_ino and st_ino disagree, and the st_ino of a dir
# no one touched changed (find -inum, tar/rsync hard-link detection).
# So does a file of the plan that was copied up, renamed or linked, or a
# dir populated since: each keeps the st_ino it was first shown with,
# after the kernel forgot it and after a remount on the same upper.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_two
partition=data/small/2024_04
part=$partition/3510_1075_20240401001639.000_20240414115404.000_18EB73DEA1B5F053

# touch MNT: records the st_ino of the partition's and the part's entries
# while both are lazy, then copies up, renames, links and makes files there.
# check MNT: holds both dirs, has the kernel cache their listings, drops
# the nodes, then prints "label expected d_ino-or-st_ino" for every entry
# whose st_ino is not the one expected or whose d_ino is not its st_ino.
cat >"$SCRATCH/inodes.py" <<'PY'
import json, os, sys
phase, mnt, partition, part, record = sys.argv[1:]
partition, part = os.path.join(mnt, partition), os.path.join(mnt, part)
def stats(d):
    return {n: os.lstat(os.path.join(d, n)).st_ino for n in os.listdir(d)}
if phase == 'touch':
    before = {'partition': stats(partition), 'part': stats(part)}
    with open(os.path.join(part, 'timestamps.bin'), 'r+b') as f:  # a copy-up
        f.write(b'x')
    os.rename(os.path.join(part, 'metaindex.bin'), os.path.join(part, 'metaindex.renamed'))
    os.link(os.path.join(part, 'index.bin'), os.path.join(part, 'index.linked'))
    for d in (part, partition):                                     # populates both
        open(os.path.join(d, 'made-here'), 'w').close()
    expected = {'partition': dict(before['partition']), 'part': dict(before['part'])}
    renamed = expected['part'].pop('metaindex.bin')
    expected['part']['metaindex.renamed'] = renamed
    expected['part']['index.linked'] = before['part']['index.bin']
    for key, d in (('partition', partition), ('part', part)):
        expected[key]['made-here'] = os.lstat(os.path.join(d, 'made-here')).st_ino
    with open(record, 'w') as f:
        json.dump(expected, f)
    sys.exit(0)
expected = json.load(open(record))
held = [os.open(d, os.O_RDONLY | os.O_DIRECTORY) for d in (partition, part)]
for d in (partition, part):                  # the kernel caches both listings
    list(os.scandir(d))
with open('/proc/sys/vm/drop_caches', 'w') as f:
    f.write('2')
for key, d in (('partition', partition), ('part', part)):
    now = stats(d)
    shown = {e.name: e.inode() for e in os.scandir(d)}
    for name in sorted(set(now) | set(expected[key])):
        if now.get(name) != expected[key].get(name):
            print('st_ino', key + '/' + name, expected[key].get(name), now.get(name))
        if shown.get(name) != now.get(name):
            print('d_ino', key + '/' + name, now.get(name), shown.get(name))
PY
run_inodes() {
	python3 "$SCRATCH/inodes.py" "$1" "$mnt" "$partition" "$part" "$SCRATCH/expected.json"
}

run_inodes touch >"$SCRATCH/touch.out" 2>&1
tap_ok $? "recorded the st_ino of lazy entries, then copied up, renamed, linked, made files" ||
	tap_diag <"$SCRATCH/touch.out"
run_inodes check >"$SCRATCH/check.out" 2>&1
tap_ok $? "listed both dirs before and after the kernel forgot their children" ||
	tap_diag <"$SCRATCH/check.out"
tap_is "$(cat "$SCRATCH/check.out")" "" \
	"every st_ino is the one first shown, every d_ino the st_ino stat gives"
tap_is "$(head -c1 "$mnt/$part/timestamps.bin")$(stat -c %h "$mnt/$part/index.bin")" x2 \
	"the copy-up and the link were made"

unmount_union "$mnt"
tap_ok $? "unmounted"
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$SCRATCH/upper"
tap_ok $? "mounted again on the same upper" || tap_bail "no mount"
run_inodes check >"$SCRATCH/check.out" 2>&1
tap_ok $? "listed both dirs after the remount" || tap_diag <"$SCRATCH/check.out"
tap_is "$(cat "$SCRATCH/check.out")" "" "after the remount too"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
