#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 of the daemon loses nothing that was fsynced: remounting the same
# upper shows it. An upper whose first fill was interrupted is rebuilt.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

vols=("$DATA_DIR"/v1.150.0-cluster/node0 "$DATA_DIR"/v1.150.0-cluster/node1)
snapshot_volumes "${vols[@]}"
mnt=$(scratch_dir mnt)
upper="$SCRATCH/upper"

mount_union "$mnt" "${vols[@]}" -- -o upper="$upper"
tap_ok $? "mounted with an upper" || tap_done
python3 - "$mnt" <<'PY'
import json, os, sys
mnt = sys.argv[1]
def durable(path, data):
    tmp = path + ".tmp.1"
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, path)
    d = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(d)
    os.close(d)
durable(os.path.join(mnt, "data/small/2024_01/parts.json"), b'{"Small":[],"Big":[]}')
os.makedirs(os.path.join(mnt, "data/small/2099_01"))
durable(os.path.join(mnt, "data/small/2099_01/parts.json"), b'{"Small":[],"Big":[]}')
PY
tap_ok $? "fsynced writes through the mount (atomic parts.json replacement, new partition)"
pids=$(union_pids "$mnt")
[ -n "$pids" ] && kill -KILL $pids
tap_ok $? "kill -9 the daemon ($pids)"
wait_for 10 eval "! _pid_alive ${pids%% *}"
fusermount3 -uz "$mnt" 2>/dev/null
! mountpoint -q "$mnt"
tap_ok $? "the dead mount is detached"

mount_union "$mnt" "${vols[@]}" -- -o upper="$upper"
tap_ok $? "remounted with the same upper"
tap_is "$(cat "$mnt/data/small/2024_01/parts.json")" '{"Small":[],"Big":[]}' \
	"the fsynced parts.json replacement survived"
[ -f "$mnt/data/small/2099_01/parts.json" ]
tap_ok $? "the fsynced new partition survived"
unmount_union "$mnt"

# An interrupted first fill: the identity file and a half tree.new, no tree.
upper2="$SCRATCH/upper2"
mkdir -p "$upper2"
mount_union "$mnt" "${vols[@]}" -- -o upper="$upper2"
unmount_union "$mnt"
mv "$upper2/tree" "$upper2/tree.new"
rm -rf "$upper2/tree.new/data/small"
mount_union "$mnt" "${vols[@]}" -- -o upper="$upper2"
tap_ok $? "an upper with an interrupted fill mounts"
[ -f "$mnt/data/small/2024_01/parts.json" ] && [ ! -e "$upper2/tree.new" ]
tap_ok $? "... and is rebuilt whole"
unmount_union "$mnt"

# A non-empty directory that is no upper is refused, and left alone.
mkdir -p "$SCRATCH/notupper" && echo keep >"$SCRATCH/notupper/file"
"$VMUNIONFS" -o upper="$SCRATCH/notupper" "${vols[@]}" "$mnt" >"$SCRATCH/out" 2>&1
[ $? -ne 0 ] && grep -q "not a vmunionfs upper" "$SCRATCH/out" && [ "$(ls "$SCRATCH/notupper")" = file ]
tap_ok $? "a non-empty dir that is no upper is refused and left alone" || tap_diag "$(cat "$SCRATCH/out")"

# The volumes changed under an upper (a node was still running): refused,
# since the stubs would point at the wrong files.
copy_volume "${vols[0]}" "$SCRATCH/copy0"
mount_union "$mnt" "$SCRATCH/copy0" -- -o upper="$SCRATCH/upper3"
unmount_union "$mnt"
touch "$(find "$SCRATCH/copy0/data/small" -name index.bin | head -n 1)"
"$VMUNIONFS" -o upper="$SCRATCH/upper3" "$SCRATCH/copy0" "$mnt" >"$SCRATCH/out" 2>&1
[ $? -ne 0 ] && grep -q "volumes changed" "$SCRATCH/out" && ! mountpoint -q "$mnt"
tap_ok $? "an upper whose volumes changed since is refused" || tap_diag "$(cat "$SCRATCH/out")"

assert_volumes_unchanged "volume byte-identical after the crash tests"
tap_done
