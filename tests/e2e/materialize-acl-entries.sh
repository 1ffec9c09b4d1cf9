#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# An ACL of 200 named users (more than the 132 entries acl_get once read):
# a file's is carried by materialize as it is, and a populated preview
# copies it onto the stub; a dir's narrows the dir's mode in DEST. Checked
# as nobody, whom the ACLs name, through DEST and an allow_other preview.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv python3
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

# many_users_acl PATH PERM NOBODY OTHER : user::rwx, 200 named users (uids
# 30000 to 30199) with PERM, nobody with NOBODY, group::PERM, mask::PERM,
# other::OTHER (octal digits).
many_users_acl() {
	local path=$1 perm=$2 nobody=$3 other=$4 uid entries=(u::7)
	for ((uid = 30000; uid < 30200; uid++)); do
		entries+=("U:$uid:$perm")
	done
	set_acl "$path" access "${entries[@]}" "U:65534:$nobody" "g::$perm" "m::$perm" "o::$other"
}
# acl_of PATH : the access ACL's entry count and digest, or "none".
acl_of() {
	python3 -c 'import hashlib, os, sys
try: v = os.getxattr(sys.argv[1], "system.posix_acl_access")
except OSError: print("none")
else: print((len(v) - 4) // 8, "entries", hashlib.sha256(v).hexdigest()[:16])' "$1"
}
entries_of() {
	python3 -c 'import os, sys
print((len(os.getxattr(sys.argv[1], "system.posix_acl_access")) - 4) // 8)' "$1"
}

shared_volumes
v0=$vols/node0 v1=$vols/node1
part=$(cd "$v0" && find data/small/2024_03 -mindepth 1 -maxdepth 1 -type d ! -name txn ! -name tmp | sort | head -n 1)
acl_dir=$(cd "$v1" && find data/small/2024_04 -mindepth 1 -maxdepth 1 -type d ! -name txn ! -name tmp | sort | head -n 1)
file=$part/index.bin
[ -f "$v0/$file" ] && [ -n "$acl_dir" ] || tap_bail "the sample volumes lack the files this test needs"
# The file: nobody reads it by its named entry, others do not.
many_users_acl "$v0/$file" 4 4 0 || tap_skip_all "no POSIX ACLs where the scratch dir is"
# The dir: everyone lists it but nobody.
many_users_acl "$v1/$acl_dir" 5 0 5
tap_is "$(entries_of "$v0/$file") $(entries_of "$v1/$acl_dir")" "205 205" "two ACLs of 205 entries"
as_nobody cat "$v0/$file" >/dev/null 2>&1
tap_ok $? "on the volume, nobody reads $file (its named entry)"
as_nobody ls "$v1/$acl_dir" >/dev/null 2>&1
tap_ok $(($? == 0)) "on the volume, nobody cannot list $acl_dir"
setpriv --reuid=65533 --regid=65533 --clear-groups cat "$v0/$file" >/dev/null 2>&1
tap_ok $(($? == 0)) "... and uid 65533 cannot read $file"
snapshot_volumes "$v0" "$v1"

dest=$SCRATCH/dest
tap_run "materialize" "$VMUNION" materialize -q "$v0" "$v1" "$dest"
tap_is "$(acl_of "$dest/$file")" "$(acl_of "$v0/$file")" "the file's 205 entries are carried"
as_nobody cat "$dest/$file" >/dev/null 2>&1
tap_ok $? "... nobody reads it in DEST"
tap_is "$(stat -c %a "$dest/$acl_dir")" 700 "the dir's ACL denying nobody: 0755 narrowed to 0700"
as_nobody ls "$dest/$acl_dir" >/dev/null 2>&1
tap_ok $(($? == 0)) "... nobody cannot list it in DEST"

mnt=$(scratch_dir mnt)
mount_union "$mnt" "$v0" "$v1" -- -o allow_other -o "upper=$SCRATCH/upper"
tap_ok $? "preview mounted with allow_other" || tap_done
tap_is "$(acl_of "$mnt/$acl_dir")" "$(acl_of "$v1/$acl_dir")" "the preview serves the dir's ACL"
touch "$mnt/$part/new" && [ -f "$SCRATCH/upper/tree/$file" ]
tap_ok $? "a new file in $part populates it: $file is a stub of the upper"
tap_is "$(acl_of "$SCRATCH/upper/tree/$file")" "$(acl_of "$v0/$file")" \
	"the stub carries the file's 205 entries"
as_nobody cat "$mnt/$file" >/dev/null 2>&1
tap_ok $? "... nobody reads it through the preview"
setpriv --reuid=65533 --regid=65533 --clear-groups cat "$mnt/$file" >/dev/null 2>&1
tap_ok $(($? == 0)) "... uid 65533 does not"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
