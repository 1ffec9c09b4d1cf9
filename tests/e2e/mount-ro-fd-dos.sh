#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Through an allow_other read-only mount, any local user can take every fd
# of the daemon by opening one file many times (each open() holds one fd of
# the daemon, closed only at release), and every other user's open then
# fails: vmselect reading the mount is down. Opens of one file could share
# one fd of the daemon (reads are pread at an offset), so that one user's
# opens cost the daemon no more than the files they name.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd prlimit setpriv

copy_two_volumes
chmod -R go+rX "$vols"
snapshot_volumes "$vols/node0" "$vols/node1"
chmod 0755 "$SCRATCH"
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -f -o allow_other
tap_ok $? "mounted read-only with allow_other" || tap_bail "no mount"
pid=$(union_pids "$mnt")
pid=${pid%% *}
# A small limit stands for the default hard limit that many processes reach.
prlimit --pid "$pid" --nofile=64:64
tap_ok $? "the daemon's fd limit is 64"

files=$(cd "$mnt" && find data/small -name index.bin | sort | head -n 2)
theirs=$(printf '%s\n' "$files" | sed -n 1p)
mine=$(printf '%s\n' "$files" | sed -n 2p)
# nobody holds 200 opens of one file for a few seconds.
flag=$(scratch_dir flag) && chmod 1777 "$flag"
setpriv --reuid=65534 --regid=65534 --clear-groups bash -c '
	i=0
	while [ $i -lt 200 ]; do
		eval "exec $((i + 10))<\"\$1\"" 2>/dev/null || break
		i=$((i + 1))
	done
	touch "$2"
	sleep 5' sh "$mnt/$theirs" "$flag/held" >/dev/null 2>&1 &
holder=$!
on_exit "kill $holder 2>/dev/null; wait $holder 2>/dev/null"
wait_for 10 test -e "$flag/held"
tap_ok $? "nobody holds its opens"
cat "$mnt/$mine" >/dev/null 2>"$SCRATCH/root.err"
tap_ok $? "root still opens another file" || tap_diag "$(cat "$SCRATCH/root.err")"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
