#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review5: mount-ro-fd-dos.sh for the writable preview. Through an
# allow_other preview any local user takes every fd of the daemon by opening
# one volume file many times for reading: each open holds a volume fd of
# the daemon (fs.c open_plan_file / open_upper_file, one fd per fs_file),
# closed only at release. Then the vmstorage the preview serves (root here)
# can open no other file and create nothing: EMFILE. Opens of one file for
# reading could share one fd of the daemon (reads are pread at an offset),
# as the read-only mount's do, so that one user's opens cost the daemon no
# more than the files they name.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd prlimit setpriv

shared_preview
# A small limit stands for the hard limit that many opens reach.
prlimit --pid "$pid" --nofile=64:64
tap_ok $? "the daemon's fd limit is 64"

files=$(cd "$mnt" && find data/small -name index.bin | sort | head -n 2)
theirs=$(printf '%s\n' "$files" | sed -n 1p)
mine=$(printf '%s\n' "$files" | sed -n 2p)
flag=$(scratch_dir flag) && chmod 1777 "$flag"
setpriv --reuid=65534 --regid=65534 --clear-groups bash -c '
	i=0
	while [ $i -lt 200 ]; do
		eval "exec $((i + 10))<\"\$1\"" 2>/dev/null || break
		i=$((i + 1))
	done
	touch "$2"
	exec sleep 5' sh "$mnt/$theirs" "$flag/held" >/dev/null 2>&1 &
holder=$!
on_exit "kill $holder 2>/dev/null; wait $holder 2>/dev/null"
wait_for 10 test -e "$flag/held"
tap_ok $? "nobody holds its opens"
cat "$mnt/$mine" >/dev/null 2>"$SCRATCH/root.err"
tap_ok $? "root still opens another file" || tap_diag "$(cat "$SCRATCH/root.err")"
touch "$mnt/metadata/new" 2>"$SCRATCH/root.err"
tap_ok $? "root still creates a file" || tap_diag "$(cat "$SCRATCH/root.err")"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
