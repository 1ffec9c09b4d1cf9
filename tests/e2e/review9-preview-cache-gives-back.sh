#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What: root reads every volume file of the preview once, and closes each;
# then a program on the preview (vmstorage making parts) creates files and
# holds them open, each an fd of the daemon (files with the upper's own
# bytes keep one per open file). The fd cache (fs.c volume_fds) keeps up to
# half the daemon's fd limit of volume files nobody reads, and gives them
# back only when its own opens fail: a create, or the copy-up of a first
# write, that gets EMFILE fails, with the cache full of idle fds. Before the
# cache, the reads left no fd behind. The fd limit is lowered here so that
# the sample's few files fill the cache; with a limit of 4096 (a usual
# LimitNOFILE), 1024 idle fds of a cache are a quarter of it.
# Why it matters: the preview's own work (vmstorage creating and writing
# files) fails with EMFILE under a limit it stayed under before, for fds no
# one uses.
# Right: the daemon's idle cached fds are given back when any of its opens
# runs out of fds, not only the cache's.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd prlimit python3
preview_of_two
pid=$(union_pid "$mnt")
tight_fd_limit "$pid"
tap_ok $? "the daemon's fd limit is $limit, $idle fds in use"
(cd "$mnt" && find data indexdb -type f -name '*.bin' -exec cat {} + >/dev/null)
tap_ok $? "root read every volume file once"
cached=$(($(fds_of "$pid") - idle))
tap_diag "the daemon holds $cached fds more than before the reads"
# What the daemon could open before the reads, with a margin for the fds
# of the threads libfuse starts meanwhile: a pipe (2 fds) each, up to its
# 10 (max_threads), more of them when the daemon is slow (ASan).
room=$((limit - idle - 20))
"$PYTHON3" - "$mnt/metadata" "$room" >"$SCRATCH/result" 2>&1 <<'PY'
import os, sys
dir, room = sys.argv[1], int(sys.argv[2])
held = []
try:
    for i in range(room):
        held.append(os.open(os.path.join(dir, "held-%d" % i), os.O_RDWR | os.O_CREAT, 0o644))
    print("created %d" % len(held))
except OSError as e:
    print("created %d, then: %s" % (len(held), e.strerror))
for fd in held:
    os.close(fd)
PY
tap_is "$(cat "$SCRATCH/result")" "created $room" \
	"root creates and holds $room files, as many as the daemon had room for before the reads"
rm -f "$mnt"/metadata/held-*
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
