#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (reads): a volume file that changed underneath the mount is an
# error naming the file, not served. But a volume file an operator replaced
# by a FIFO is opened (O_RDONLY, no O_NONBLOCK) before anything checks it:
# the open waits for a writer that never comes, holding one of the
# daemon's threads, and the reader waits with it. A few such reads take
# every thread (max_threads, 10 by default) and the whole mount stops
# answering. Expected: EIO within seconds, the log naming the file, on
# both mounts (read-only: when the read opens it; preview: at the open).
# Fixed: volume files are opened O_NONBLOCK, and one that is no longer a
# regular file (or dir) is refused with EIO.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd timeout

vol="$SCRATCH/vols/node0"
copy_volume "$DATA_DIR/v1.79.5/node0" "$vol" || tap_bail "cannot copy the volume"

# A file read by neither mount yet, made a FIFO once both are mounted.
file=$(cd "$vol" && find data -name index.bin | sort | head -n 1)
cp "$vol/$file" "$SCRATCH/saved"
# Whatever happens, a writer comes at the end (the daemon's open returns)
# and the file is put back.
on_exit "[ -p '$vol/$file' ] && timeout 5 sh -c 'exec 3>\"$vol/$file\"'; rm -f '$vol/$file'; cp '$SCRATCH/saved' '$vol/$file'"

ro=$(scratch_dir ro)
mount_union "$ro" "$vol"
tap_ok $? "read-only mount" || tap_bail "no mount"
ro_log=$MOUNT_LOG
preview=$(scratch_dir preview)
mount_union "$preview" "$vol" -- -o upper="$SCRATCH/upper"
tap_ok $? "preview mount" || tap_bail "no mount"
preview_log=$MOUNT_LOG

rm "$vol/$file" && mkfifo "$vol/$file"
tap_ok $? "the volume file replaced by a FIFO"

for mnt in "$ro" "$preview"; do
	name=$(basename "$mnt")
	start=$SECONDS
	# (The shell's "Killed" stays out of the log.)
	{ timeout -k 5 15 cat "$mnt/$file" >/dev/null 2>"$SCRATCH/$name.err"; rc=$?; } 2>/dev/null
	tap_ok $((rc == 124 || rc == 137 || rc == 0)) "$name: the read fails by itself (status $rc, $((SECONDS - start)) s)" ||
		tap_diag "$(cat "$SCRATCH/$name.err")"
	grep -q "Input/output error" "$SCRATCH/$name.err"
	tap_ok $? "$name: with EIO" || tap_diag "$(cat "$SCRATCH/$name.err")"
done
grep -q "$file" "$ro_log" && grep -q "$file" "$preview_log"
tap_ok $? "both logs name the file"

# Let the daemons' opens return before unmounting.
timeout 5 sh -c "exec 3>'$vol/$file'"
sleep 1
unmount_union "$ro"
tap_ok $? "unmounted the read-only mount"
unmount_union "$preview"
tap_ok $? "unmounted the preview"
tap_done
