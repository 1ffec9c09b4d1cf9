#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (fsyncdir): since e88685e a handle opened while its dir was lazy
# syncs "the upper dir it has now", opened by path at every fsyncdir. Once
# that dir is removed there is none: fsync fails with ENOENT. A handle
# opened after the dir was populated syncs the upper dir it holds open and
# succeeds, as fsync of a removed dir does on ext4 or tmpfs (and as this
# handle did before: a lazy dir had nothing to sync). Low stakes
# (vmstorage opens a dir afresh to sync it), but an error no other fs gives.
# Passes since the hash offsets were reverted; kept as a check.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

# fsync_removed.py DIR: opens DIR, removes it with all it holds, fsyncs the
# handle; prints "ok" or the error.
cat >"$SCRATCH/fsync_removed.py" <<'PY'
import os, shutil, sys

fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
shutil.rmtree(sys.argv[1])
try:
    os.fsync(fd)
    print('ok')
except OSError as e:
    print(e)
PY

mkdir -p "$SCRATCH/plain/dir" && : >"$SCRATCH/plain/dir/file"
tap_is "$(python3 "$SCRATCH/fsync_removed.py" "$SCRATCH/plain/dir")" ok \
	"a removed dir of the scratch fs: fsync works"

preview_of_two
dir="$mnt/data/small/2024_02"
tap_is "$(python3 "$SCRATCH/fsync_removed.py" "$dir")" ok \
	"a removed dir, opened while lazy: fsync works"
dir="$mnt/data/small/2024_01"
: >"$dir/populated"
tap_is "$(python3 "$SCRATCH/fsync_removed.py" "$dir")" ok \
	"a removed dir, opened once populated: fsync works"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
