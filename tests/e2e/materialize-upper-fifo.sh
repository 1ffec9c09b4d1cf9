#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# materialize --upper with a FIFO in the upper (made through the preview):
# the upper holds what DEST cannot get, so the run is refused before writing
# (exit 1, as vmunion(1) says for bad input), not an I/O error (2). DEST is
# not created; once the FIFO is gone the same command succeeds.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

preview_of_two
tap_run "a FIFO made on the preview" mkfifo "$mnt/metadata/fifo"
unmount_union "$mnt"
tap_ok $? "unmounted"
[ -p "$SCRATCH/upper/tree/metadata/fifo" ]
tap_ok $? "the FIFO is in the upper"

dest="$SCRATCH/dest"
"$VMUNION" materialize -q --upper "$SCRATCH/upper" "$vols/node0" "$vols/node1" "$dest" \
	>"$SCRATCH/out" 2>&1
tap_is "$?" 1 "refused: exit 1" || tap_diag "$(cat "$SCRATCH/out")"
grep -q "refused: .*metadata/fifo: not a file, directory or symlink" "$SCRATCH/out"
tap_ok $? "the message names the FIFO and why" || tap_diag "$(cat "$SCRATCH/out")"
[ ! -e "$dest" ]
tap_ok $? "DEST was not created"

rm "$SCRATCH/upper/tree/metadata/fifo"
tap_run "without the FIFO the same command succeeds" \
	"$VMUNION" materialize -q --upper "$SCRATCH/upper" "$vols/node0" "$vols/node1" "$dest"
assert_volumes_unchanged
tap_done
