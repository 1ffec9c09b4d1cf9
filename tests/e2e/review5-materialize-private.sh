#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review5: materialize (as root) writes every file 0644 and every dir 0755
# (stage.c copy_file/write_synth, documented in vmunion(1)), DEST's root
# included. Two volumes kept private (their roots 0700, a file 0600) come
# out readable by every local user, where the mount of the same volumes
# keeps them private (merged-dir-perms.sh). DEST must grant no one more than
# the volumes did: at least its root no more than every volume's root.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd setpriv
[ "$(id -u)" -eq 0 ] || tap_skip_all "needs root (setpriv)"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

copy_two_volumes
file=$(cd "$vols/node0" && find data/small -name index.bin | sort | head -n 1)
chmod 0700 "$vols/node0" "$vols/node1"
chmod 0600 "$vols/node0/$file"
snapshot_volumes "$vols/node0" "$vols/node1"
chmod 0755 "$SCRATCH"

as_nobody cat "$vols/node0/$file" >/dev/null 2>&1
tap_ok $(($? == 0)) "on the volume, nobody cannot read node0's $file"

dest="$SCRATCH/dest"
tap_run "materialize the private volumes" "$VMUNION" materialize -q "$vols/node0" "$vols/node1" "$dest"
cmp -s "$vols/node0/$file" "$dest/$file"
tap_ok $? "DEST holds the file's bytes"
as_nobody cat "$dest/$file" >/dev/null 2>&1
tap_ok $(($? == 0)) "nobody cannot read it in DEST either" ||
	tap_diag "$(stat -c '%A %U %n' "$dest" "$dest/$file")"
as_nobody ls "$dest/data" >/dev/null 2>&1
tap_ok $(($? == 0)) "nobody cannot list DEST/data (both volumes' roots are 0700)"
assert_volumes_unchanged
tap_done
