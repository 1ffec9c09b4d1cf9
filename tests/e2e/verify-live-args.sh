#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (issue 9): vmunion verify --live takes --sample -1 (strtoull wraps
# it to 2^64-1: every series checked, no word said); a
# negative number must be a usage error (64) naming the option, as 0 is.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

vol=$DATA_DIR/v1.79.5/node0
for arg in "--sample -1" "--sample -0" "--sample 0" "--sample ' 5'" "--timeout -5"; do
	eval "\"\$VMUNION\" verify --live http://127.0.0.1:1 $arg \"\$vol\"" >"$SCRATCH/out" 2>&1
	rc=$?
	[ "$rc" = 64 ] && grep -q -- "--${arg%% *}" "$SCRATCH/out" 2>/dev/null ||
		{ [ "$rc" = 64 ] && grep -q -- "${arg%% *}" "$SCRATCH/out"; }
	tap_ok $? "verify --live $arg: usage error 64 naming the option (got $rc)" ||
		tap_diag "$(head -c 300 "$SCRATCH/out")"
done
tap_done
