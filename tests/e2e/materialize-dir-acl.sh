#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A dir of DEST carries no ACL: materialize folds into its mode the access
# ACL the mount serves for it (the plan's merged one, or an upper dir's
# own), and every dir of DEST has the mode the mount's folds to. The cases
# where the volume dirs at a dir's path are not the ones it shows: a merged
# table named after another volume's, an identical copy of a part (hidden)
# and a colliding one (renamed), a dir made on the preview that inherits a
# default ACL; and DEST's root, whose ACL the merged root's folds into.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv python3
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

# folded ROOT : every dir below ROOT and its mode, the access ACL folded in
# as acl.c acl_fold_mode does.
folded() {
	python3 - "$1" <<'PY'
import os, struct, sys
root = sys.argv[1]
for d, _, _ in os.walk(root):
    mode = os.lstat(d).st_mode & 0o7777
    try:
        value = os.getxattr(d, "system.posix_acl_access")
    except OSError:
        value = b""
    mask = group = mode >> 3 & 7
    other = mode & 7
    for i in range(4, len(value), 8):
        tag, perm, _ = struct.unpack("<HHI", value[i:i + 8])
        if tag == 0x04:
            group &= perm
        if tag == 0x02:
            group &= perm & mask
        if tag in (0x02, 0x08):
            other &= perm & mask
    print(os.path.relpath(d, root), "%o" % (mode & ~0o77 | group << 3 | other))
PY
}

modes() { (cd "$1" && find . -type d -printf '%P %m\n' | sed 's/^ /. /'); }

# same_as_mount WHAT DEST : DEST's dirs have the modes $SCRATCH/served lists.
same_as_mount() {
	diff <(sort "$SCRATCH/served") <(modes "$2" | sort) >"$SCRATCH/diff"
	tap_ok $? "$1: every dir of DEST has the mode the mount serves, its ACL folded" ||
		tap_diag "$(head -n 20 "$SCRATCH/diff")"
	tap_is "$(python3 -c 'import os, sys
print(sum(name.startswith("system.posix_acl") for d, _, _ in os.walk(sys.argv[1])
          for name in os.listxattr(d)))' "$2")" 0 "$1: no dir of DEST carries an ACL"
}

shared_volumes
v0=$vols/node0 v1=$vols/node1
# The merged table is named after node1's (its parts from both).
table=indexdb/18EB73DE89D53020 other_table=indexdb/18EB73DE89BB1CCD
table_part=48389_102_18EB73DE8D3D38F2
[ -d "$v1/$table" ] && [ -d "$v0/$other_table/$table_part" ] ||
	tap_bail "the sample volumes lack the tables this test needs"
set_acl "$v0/$other_table" access "${NOBODY_DENIED[@]}" || tap_skip_all "no POSIX ACLs where the scratch dir is"
set_acl "$v0/$other_table/$table_part" access "${NOBODY_DENIED[@]}"
# An identical copy of a part in node1, shown from node0: its ACL is not served.
same=$(cd "$v0" && find data/small/2024_01 -mindepth 1 -maxdepth 1 -type d ! -name txn ! -name tmp | sort | head -n 1)
cp -a "$v0/$same" "$v1/$same" && set_acl "$v1/$same" access "${NOBODY_DENIED[@]}"
# Another part of a name node0 has: node1's is renamed, its ACL goes with it.
clash=$(cd "$v0" && find data/small/2024_02 -mindepth 1 -maxdepth 1 -type d ! -name txn ! -name tmp | sort | head -n 1)
cp -a "$v0/$clash" "$v1/$clash" && printf x >>"$v1/$clash/values.bin" && set_acl "$v1/$clash" access "${NOBODY_DENIED[@]}"
renamed=$("$VMUNION" plan --json "$v0" "$v1" | python3 -c 'import json, sys
print(*(r["new_name"] for r in json.load(sys.stdin)["renames"]))')
tap_ok $(($? != 0 || $(wc -w <<<"$renamed") != 1)) "node1's $clash is renamed ($renamed)"
renamed=$(dirname "$clash")/$renamed
snapshot_volumes "$v0" "$v1"

mnt=$(scratch_dir mnt)
mount_union "$mnt" "$v0" "$v1" -- -o allow_other
tap_ok $? "mounted read-only" || tap_done
folded "$mnt" >"$SCRATCH/served"
as_nobody ls "$mnt/$table" >/dev/null 2>&1
tap_ok $(($? == 0)) "the mount: nobody cannot list $table (node0's table's ACL)"
unmount_union "$mnt"
dest=$SCRATCH/dest
tap_run "materialize" "$VMUNION" materialize -q "$v0" "$v1" "$dest"
same_as_mount "the volumes" "$dest"
tap_is "$(stat -c %a "$dest/$table" "$dest/$table/$table_part" | tr '\n' ' ')" "700 700 " \
	"the merged table and node0's part in it: 0700 (node0's table has another name)"
as_nobody ls "$dest/$table" >/dev/null 2>&1
tap_ok $(($? == 0)) "... nobody cannot list the table in DEST"
tap_is "$(stat -c %a "$dest/$same")" 755 "a part shown from node0: node1's hidden copy's ACL not folded"
tap_is "$(stat -c %a "$dest/$clash" "$dest/$renamed" | tr '\n' ' ')" "755 700 " \
	"a colliding part: node0's as it is, node1's renamed one narrowed by its ACL"

# A dir made on the preview inherits the default ACL its parent serves.
dir=data/small/2024_03
set_acl "$v0/$dir" default "${NOBODY_DENIED[@]}" && set_acl "$v1/$dir" default "${NOBODY_DENIED[@]}"
mount_union "$mnt" "$v0" "$v1" -- -o allow_other -o "upper=$SCRATCH/upper"
tap_ok $? "preview mounted" || tap_done
mkdir -m 0755 "$mnt/$dir/new" && as_nobody ls "$mnt/$dir" >/dev/null
tap_ok $? "a dir made in $dir, which nobody lists"
as_nobody ls "$mnt/$dir/new" >/dev/null 2>&1
tap_ok $(($? == 0)) "... nobody cannot list the new dir (the ACL it inherited)"
folded "$mnt" >"$SCRATCH/served"
unmount_union "$mnt"
dest=$SCRATCH/upper-dest
tap_run "materialize --upper" "$VMUNION" materialize -q --upper "$SCRATCH/upper" "$v0" "$v1" "$dest"
same_as_mount "the upper" "$dest"
tap_is "$(stat -c %a "$dest/$dir/new")" 700 "the new dir: 0700"
as_nobody ls "$dest/$dir/new" >/dev/null 2>&1
tap_ok $(($? == 0)) "... nobody cannot list it in DEST"

# The roots: DEST's is the merged root's, its ACL folded in too.
set_acl "$v0" access "${NOBODY_DENIED[@]}" && mount_union "$mnt" "$v0" "$v1" -- -o allow_other
tap_ok $? "an ACL on node0's root: mounted read-only" || tap_done
folded "$mnt" >"$SCRATCH/served"
as_nobody ls "$mnt" >/dev/null 2>&1
tap_ok $(($? == 0)) "the mount: nobody cannot list its root"
unmount_union "$mnt"
dest=$SCRATCH/root-dest
tap_run "materialize" "$VMUNION" materialize -q "$v0" "$v1" "$dest"
same_as_mount "an ACL on the root" "$dest"
tap_is "$(stat -c %a "$dest")" 700 "DEST's root: 0700"
as_nobody ls "$dest" >/dev/null 2>&1
tap_ok $(($? == 0)) "... nobody cannot list it"
assert_volumes_unchanged
tap_done
