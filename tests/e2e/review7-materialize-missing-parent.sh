#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review7: DEST whose parent dir does not exist (a typo, /srv/vm/mergd/new,
# or a parent that is a symlink to nothing) is refused before anything is
# written ("DEST's parent directory must exist"), yet materialize exits 2,
# which the man page and --help define as "DEST is left unfinished: rerun to
# resume". A script that reruns on 2 loops forever, and the operator is told
# that something was half written. review5 fixed the same for a DEST that
# is a dangling symlink; a missing parent is the same case: status 1
# (refused before writing), and DEST's parent still does not exist.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

vols=("$DATA_DIR/v1.79.5/node0" "$DATA_DIR/v1.79.5/node1")
snapshot_volumes "${vols[@]}"
ln -s "$SCRATCH/nowhere" "$SCRATCH/disk2"

for dest in "$SCRATCH/mergd/merged" "$SCRATCH/disk2/merged"; do
	"$VMUNION" materialize -q "${vols[@]}" "$dest" >"$SCRATCH/out" 2>&1
	tap_is "$?" 1 "${dest#"$SCRATCH"/}: refused before writing (status 1)" ||
		tap_diag "$(cat "$SCRATCH/out")"
	grep -q 'parent' "$SCRATCH/out"
	tap_ok $? "... saying DEST's parent is missing" || tap_diag "$(cat "$SCRATCH/out")"
done
[ ! -e "$SCRATCH/mergd" ] && [ ! -e "$SCRATCH/nowhere" ]
tap_ok $? "nothing was made"
assert_volumes_unchanged
tap_done
