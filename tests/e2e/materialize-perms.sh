#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# materialize grants no one more than the volumes: every file and dir of
# DEST has the mode, owner and group the mount shows (the merged plan's:
# a dir narrowed to what each volume's grants, parts.json no wider than its
# dir), DEST's root the merged root's, whatever the umask; a file's POSIX
# ACL is carried, a dir's narrows its mode (DEST's dirs carry none).
# Copy and link mode (a link is the volume's inode), a resumed run, a run as
# another user than root (owner not kept: the ACL folded into the mode).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv python3
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"
[ -x "$VMUNION_TEST" ] || tap_bail "$VMUNION_TEST not built"

get_acl() {
	python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "system.posix_acl_access").hex())' "$1" 2>/dev/null
}
attrs() { (cd "$1" && find . -printf '%p %m %U %G\n' | sort); }

copy_two_volumes
v0=$vols/node0 v1=$vols/node1
private=data/small/2024_01
secret=$(cd "$v0" && find data/small/2024_02 -name index.bin | sort | head -n 1)
shared=$(cd "$v0" && find data/small/2024_02 -name timestamps.bin | sort | head -n 1)
acl_file=$(cd "$v0" && find data/small/2024_03 -name index.bin | sort | head -n 1)
acl_dir=$(cd "$v1" && find data/small/2024_04 -mindepth 1 -maxdepth 1 -type d | sort | head -n 1)
[ -n "$secret" ] && [ -n "$shared" ] && [ -n "$acl_file" ] && [ -n "$acl_dir" ] ||
	tap_bail "the sample volumes lack the files this test needs"
chown 1234:2345 "$v0/$secret" && chmod 0640 "$v0/$secret"
chmod 0604 "$v0/$shared"
for v in "$v0" "$v1"; do chown 1234:2345 "$v/$private"; done
chmod 0750 "$v0/$private" && chmod 0705 "$v1/$private" # merged: 0700
chmod 0751 "$v1"                                        # the merged root: 0751
# 0640: user::rw- user:nobody:r-- group::--- mask::r-- other::---
chmod 0640 "$v0/$acl_file" &&
	set_acl "$v0/$acl_file" access u::6 U:65534:4 g::0 m::4 o::0 ||
	tap_skip_all "no POSIX ACLs where the scratch dir is"
# 0755: user::rwx user:nobody:--- group::r-x mask::r-x other::r-x
set_acl "$v1/$acl_dir" access "${NOBODY_DENIED[@]}"
snapshot_volumes "$v0" "$v1"
chmod 0755 "$SCRATCH"
as_nobody ls "$v1/$acl_dir" >/dev/null 2>&1
tap_ok $(($? == 0)) "on the volume, nobody cannot list $acl_dir (its ACL)"

mnt=$(scratch_dir mnt)
mount_union "$mnt" "$v0" "$v1"
tap_ok $? "mounted" || tap_done
attrs "$mnt" | grep -v "^\./$acl_dir " >"$SCRATCH/mount.attrs"
unmount_union "$mnt"
[ "$(grep -c . "$SCRATCH/mount.attrs")" -gt 50 ]
tap_ok $? "the mount's view listed ($(grep -c . "$SCRATCH/mount.attrs") entries)"

# --- copy, with a umask that would widen everything
dest=$SCRATCH/copy
(umask 000 && "$VMUNION" materialize -q --mode copy "$v0" "$v1" "$dest") >"$SCRATCH/copy.out" 2>&1
tap_ok $? "materialize --mode copy (umask 000)" || tap_diag "$(cat "$SCRATCH/copy.out")"
attrs "$dest" | grep -v "^\./$acl_dir " >"$SCRATCH/copy.attrs"
diff "$SCRATCH/mount.attrs" "$SCRATCH/copy.attrs" >"$SCRATCH/copy.diff"
tap_ok $? "every file and dir: the mode, owner and group the mount shows" ||
	tap_diag "$(head -n 20 "$SCRATCH/copy.diff")"
tap_is "$(stat -c '%a %u %g' "$dest" "$dest/flock.lock" "$dest/$private" "$dest/$secret" "$dest/$shared" | tr '\n' ' ')" \
	"751 0 0 640 0 0 700 1234 2345 640 1234 2345 604 0 0 " \
	"DEST's root, the flock.lock the merge makes, a merged dir, two files: as the volumes grant"
tap_is "$(get_acl "$dest/$acl_file")" "$(get_acl "$v0/$acl_file")" "a file's ACL is carried"
as_nobody cat "$dest/$acl_file" >/dev/null 2>&1
tap_ok $? "... nobody reads that file, as its ACL grants"
tap_is "$(stat -c %a "$dest/$acl_dir")" 700 "a dir with an ACL denying nobody: 0755 narrowed to 0700"
as_nobody ls "$dest/$acl_dir" >/dev/null 2>&1
tap_ok $(($? == 0)) "... nobody cannot list it in DEST"
tap_is "$(get_acl "$dest/$acl_dir")" "" "... and it carries no ACL"

# --- link: the dirs are the plan's, a file is the volume's own inode
dest=$SCRATCH/link
tap_run "materialize --mode link" "$VMUNION" materialize -q --mode link "$v0" "$v1" "$dest"
attrs "$dest" | grep -v "^\./$acl_dir " >"$SCRATCH/link.attrs"
diff "$SCRATCH/mount.attrs" "$SCRATCH/link.attrs" >"$SCRATCH/link.diff"
tap_ok $? "link: every file and dir as the mount shows it" || tap_diag "$(head -n 20 "$SCRATCH/link.diff")"
tap_is "$(stat -c %i "$dest/$secret")" "$(stat -c %i "$v0/$secret")" "link: a file is the volume's inode"

# --- reflink, where the scratch filesystem clones
if head -c 4096 /dev/urandom >"$SCRATCH/probe" && cp --reflink=always "$SCRATCH/probe" "$SCRATCH/probe2" 2>/dev/null; then
	dest=$SCRATCH/reflink
	tap_run "materialize --mode reflink" "$VMUNION" materialize -q --mode reflink "$v0" "$v1" "$dest"
	attrs "$dest" | grep -v "^\./$acl_dir " >"$SCRATCH/reflink.attrs"
	diff "$SCRATCH/mount.attrs" "$SCRATCH/reflink.attrs" >/dev/null
	tap_ok $? "reflink: every file and dir as the mount shows it"
else
	tap_skip "the scratch filesystem cannot reflink" "reflink: every file and dir as the mount shows it"
fi

# --- killed after a few files, then resumed
dest=$SCRATCH/resumed
(VMUNION_MATERIALIZE_CRASH_AT=file:5 "$VMUNION_TEST" materialize -q -j 1 "$v0" "$v1" "$dest" >/dev/null 2>&1) 2>/dev/null
[ -e "$dest/restore-in-progress" ]
tap_ok $? "a run killed after 5 files left DEST unfinished"
tap_is "$(stat -c %a "$dest" "$dest/.vmunion-staging" | tr '\n' ' ')" "700 700 " "... DEST and its staging dir private meanwhile"
as_nobody ls "$dest" >/dev/null 2>&1
tap_ok $(($? == 0)) "... nobody cannot list it"
tap_run "the rerun finishes it" "$VMUNION" materialize -q "$v0" "$v1" "$dest"
attrs "$dest" | grep -v "^\./$acl_dir " >"$SCRATCH/resumed.attrs"
diff "$SCRATCH/mount.attrs" "$SCRATCH/resumed.attrs" >/dev/null
tap_ok $? "resumed: every file and dir as the mount shows it"

# --- as nobody, on world-readable volumes: the owner cannot be kept
open=$SCRATCH/open
# 0644: user::rw- user:1000:--- group::r-- mask::r-- other::r--
cp -a "$vols" "$open" && chmod -R go+rX "$open" && chmod 0604 "$open/node0/$shared" &&
	set_acl "$open/node0/$acl_file" access u::6 U:1000:0 g::4 m::4 o::4 &&
	python3 -c 'import os, sys; os.removexattr(sys.argv[1], "system.posix_acl_access")' "$open/node1/$acl_dir"
tap_ok $? "world-readable copies of the volumes (the ACL'd file 0644, denying uid 1000)"
mkdir "$SCRATCH/nobody" && chown 65534:65534 "$SCRATCH/nobody"
dest=$SCRATCH/nobody/dest
(umask 000 && as_nobody "$VMUNION" materialize -q "$open/node0" "$open/node1" "$dest") >"$SCRATCH/nobody.out" 2>&1
tap_ok $? "materialize as nobody" || tap_diag "$(cat "$SCRATCH/nobody.out")"
tap_is "$(find "$dest" ! -user 65534 | wc -l)" 0 "every file and dir is nobody's"
tap_is "$(stat -c %a "$dest/$acl_file")" 600 \
	"the ACL'd file: not copied but folded (user:1000:--- leaves others nothing)"
tap_is "$(get_acl "$dest/$acl_file")" "" "... and no ACL on it"
tap_is "$(stat -c %a "$dest/$shared")" 644 "a 0604 file: the other bits for nobody's group too"
assert_volumes_unchanged
tap_done
