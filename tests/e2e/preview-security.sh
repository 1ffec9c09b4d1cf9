#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The writable preview as a hostile local user meets it through an
# allow_other mount (issue 8: items 1, 2, 3, 5): the kernel enforces the
# volumes' own permissions, what a user creates is that user's, stat shows the
# volume's attributes (blocks too), and a stub may name only a file the merge
# shows.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv setfattr tar python3

NOBODY=65534

vol0="$SCRATCH/node0"
vol1="$SCRATCH/node1"
copy_volume "$DATA_DIR/v1.150.0-cluster/node0" "$vol0"
copy_volume "$DATA_DIR/v1.150.0-cluster/node1" "$vol1"
# Owners and modes of the volumes that the mount must keep.
secret=$(cd "$vol0" && find data/small -name index.bin | sort | head -n 1)
locked=$(cd "$vol0" && find data/small -name timestamps.bin | sort | head -n 1)
part=$(dirname "$locked")
chown 1234:5678 "$vol0/$secret" && chmod 0600 "$vol0/$secret"
chmod 0000 "$vol0/$locked"
# Both volumes hold these dirs: a merged dir grants only what every volume's
# dir grants (plan-t, merged-dir-perms.sh), so both get the same owner and mode.
for v in "$vol0" "$vol1"; do
	chown 1234:5678 "$v/data/small/2024_01" && chmod 0750 "$v/data/small/2024_01"
	chmod 0777 "$v/metadata"
done
snapshot_volumes "$vol0" "$vol1"

# nobody must reach the mountpoint; the upper stays private (0700).
chmod 0755 "$SCRATCH"
mnt=$(scratch_dir mnt)
upper="$SCRATCH/upper"
mount_union "$mnt" "$vol0" "$vol1" -- -f -o upper="$upper" -o allow_other
tap_ok $? "preview mounted with allow_other" || tap_done
log=$MOUNT_LOG

# --- item 2 and 5: what stat shows is the volume's
attrs() { stat -c '%f %u %g %s %Y %b' "$1"; }
tap_is "$(attrs "$mnt/$secret")" "$(attrs "$vol0/$secret")" \
	"a volume file shows its volume's mode, owner, size, mtime and blocks"
tap_is "$(stat -c '%f %u %g %Y' "$mnt/data/small/2024_01")" \
	"$(stat -c '%f %u %g %Y' "$vol0/data/small/2024_01")" \
	"a directory shows its (first) volume's mode, owner and mtime"
tap_is "$(stat -c %a "$upper")" 700 "the upper itself is 0700"
[ "$(stat -c %b "$mnt/$part/index.bin")" -gt 0 ]
tap_ok $? "a stub reports its volume file's blocks, not its own 0"
mkdir -p "$SCRATCH/untar"
tar --sparse -cf - -C "$mnt" data/indexdb | tar -xf - -C "$SCRATCH/untar"
bad=0
while IFS= read -r f; do
	cmp -s "$mnt/$f" "$SCRATCH/untar/$f" || bad=$((bad + 1))
done < <(cd "$SCRATCH/untar" && find data/indexdb -type f -name '*.bin')
[ "$bad" = 0 ] && [ -n "$(cd "$SCRATCH/untar" && find data/indexdb -name items.bin)" ]
tap_ok $? "tar --sparse round trip of data/indexdb keeps every byte ($bad files differ)"

# --- item 1: permissions, as nobody
tap_fails "nobody cannot read a 0600 file of another owner" as_nobody cat "$mnt/$secret"
tap_fails "nobody cannot read a mode-000 file" as_nobody cat "$mnt/$locked"
cmp -s "$mnt/$locked" "$vol0/$locked"
tap_ok $? "... which root reads, with the volume's bytes"
tap_fails "nobody cannot chown flock.lock" as_nobody chown $NOBODY "$mnt/flock.lock"
tap_is "$(stat -c %u "$mnt/flock.lock")" 0 "... which stays root's"
as_nobody rm -rf "$mnt/$part" 2>/dev/null
[ -f "$mnt/$part/index.bin" ]
tap_ok $? "nobody cannot delete a part"
tap_fails "nobody cannot create in the volume's root (0755 root)" as_nobody touch "$mnt/evil"

as_nobody cp /usr/bin/id "$mnt/metadata/myid" && as_nobody chmod 4755 "$mnt/metadata/myid"
tap_ok $? "nobody copies a binary into a 0777 dir and makes it setuid"
tap_is "$(stat -c '%u %g %a' "$upper/tree/metadata/myid")" "$NOBODY $NOBODY 4755" \
	"... it is nobody's in the upper, not a setuid-root file"
tap_is "$(as_nobody "$mnt/metadata/myid" -u 2>&1 || echo failed)" "$NOBODY" \
	"... and running it gives nobody's euid"
as_nobody sh -c "umask 027 && mkdir '$mnt/metadata/dir' && ln -s x '$mnt/metadata/link' &&
	mknod '$mnt/metadata/fifo' p"
tap_ok $? "nobody makes a directory, a symlink and a fifo"
tap_is "$(stat -c '%u:%g %a' "$upper/tree/metadata/dir" "$upper/tree/metadata/fifo" |
	tr '\n' ' ')" "$NOBODY:$NOBODY 750 $NOBODY:$NOBODY 640 " \
	"... as nobody, with nobody's umask"
tap_is "$(stat -c '%u:%g' "$upper/tree/metadata/link")" "$NOBODY:$NOBODY" \
	"... the symlink too"
tap_fails "nobody cannot make a device node" as_nobody mknod "$mnt/metadata/null" c 1 3
touch "$mnt/metadata/byroot"
tap_is "$(stat -c '%u' "$upper/tree/metadata/byroot")" 0 "root's files are root's"
# The upper's own xattrs (a lazy dir's plan path, a stub's volume file) are
# the daemon's: not settable, not even visible, through the mount.
tap_fails "root cannot mark a dir lazy through the mount" \
	setfattr -n user.vmunionfs.plan -v data "$mnt/metadata/dir"
tap_fails "nobody cannot either" \
	as_nobody setfattr -n user.vmunionfs.plan -v data "$mnt/metadata/dir"
tap_fails "a lazy dir's mark is not visible through the mount" \
	getfattr -n user.vmunionfs.plan "$mnt/$part"
# A change in the part dir populates it: its files become stubs in the upper.
touch "$mnt/$part/populated" && rm "$mnt/$part/populated" &&
	[ -f "$upper/tree/$part/index.bin" ]
tap_ok $? "a change in a lazy part dir populates it"
unmount_union "$mnt"
tap_ok $? "unmounted"

# --- item 3: a stub may only name a file the merge shows
setfattr -n user.vmunionfs.lower -v "0:flock.lock" "$upper/tree/$part/index.bin"
mount_union "$mnt" "$vol0" "$vol1" -- -f -o upper="$upper"
tap_ok $? "remounted after a stub was edited to name a hidden volume file"
tap_fails "reading it fails" sh -c "cat '$mnt/$part/index.bin' >/dev/null"
grep -q "Input/output error" "$TAP_OUT"
tap_ok $? "... with EIO" || tap_diag "$(cat "$TAP_OUT")"
grep -q "$part/index.bin.*0:flock.lock.*no file of the merged volumes" "$MOUNT_LOG"
tap_ok $? "... and a log line naming the file" || _log_tail "$MOUNT_LOG"
tap_fails "a write (copy-up) of it fails too" sh -c "echo x >>'$mnt/$part/index.bin'"
unmount_union "$mnt"
rm -f "$upper/tree/metadata/fifo" # materialize takes no fifo: this test is about the stub
tap_fails "materialize --upper refuses the edited stub" \
	"$VMUNION" materialize -q --upper "$upper" "$vol0" "$vol1" "$SCRATCH/stubdest"
grep -q "$part/index.bin.*0:flock.lock.*no file of the merged volumes" "$TAP_OUT" &&
	[ ! -e "$SCRATCH/stubdest/flock.lock" ]
tap_ok $? "... naming the stub, copying nothing of flock.lock" || tap_diag "$(cat "$TAP_OUT")"

# --- a lazy dir's mark edited to name no plan dir: refused, not served empty
lazy=data/indexdb # still lazy: only the part dir and its parents were populated
setfattr -n user.vmunionfs.plan -v "data/nosuch" "$upper/tree/$lazy"
mount_union "$mnt" "$vol0" "$vol1" -- -f -o upper="$upper"
tap_fails "a lazy dir whose mark names no plan dir is refused" ls "$mnt/$lazy"
grep -q "$lazy.*names no directory of the merged volumes" "$MOUNT_LOG"
tap_ok $? "... with a log line naming it" || _log_tail "$MOUNT_LOG"
unmount_union "$mnt"

assert_volumes_unchanged "volume byte-identical after the hostile user"
tap_done
