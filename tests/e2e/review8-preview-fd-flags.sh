#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What: the preview shares one daemon fd among the opens of a file for
# reading only when their flags match exactly (fs.c file_share compares
# OPEN_FLAGS), so a local user multiplies the fds it costs the daemon by
# opening each file with every combination of O_APPEND, O_NONBLOCK, O_DSYNC,
# O_SYNC and O_DIRECT (24 per file), none of which but O_DIRECT changes a
# pread. (Distinct files each costing an fd with no bound is
# review8-preview-fd-many-files.sh.)
# Why it matters: through an allow_other preview, nobody takes every fd of
# the root daemon (review5-preview-fd-dos.sh with a few files instead of one
# file 200 times); vmstorage then can open or create nothing: EMFILE.
# Right: one user's opens for reading of one file cost one fd whatever the
# flags that do not change what is read (fs.c READ_FLAGS).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv python3
shared_preview
flag=$(scratch_dir flag) && chmod 1777 "$flag"

# hold MARK FILE... : nobody opens each FILE for reading with every flag
# combination the kernel passes on, holds them, touches $flag/MARK.
hold() {
	local mark=$1
	shift
	setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 - "$flag/$mark" "$@" <<'PY' &
import itertools, os, sys, time
extra = [os.O_APPEND, os.O_NONBLOCK, os.O_DSYNC, os.O_SYNC, os.O_DIRECT]
held = []
for path in sys.argv[2:]:
    for n in range(len(extra) + 1):
        for combo in itertools.combinations(extra, n):
            try:
                held.append(os.open(path, os.O_RDONLY | sum(combo)))
            except OSError:
                pass
open(sys.argv[1], "w").close()
time.sleep(8)
PY
	holder=$!
	on_exit "kill $holder 2>/dev/null; wait $holder 2>/dev/null"
	wait_for 15 test -e "$flag/$mark"
}

# The daemon's fds on the file (not its /dev/fuse fds: libfuse starts
# worker threads as requests come).
fds() { ls -l "/proc/$pid/fd" 2>/dev/null | grep -c -- "/$one\$"; }

one=$(cd "$mnt" && find data/small -name index.bin | sort | head -n 1)
cat "$mnt/$one" >/dev/null
before=$(fds)
hold one "$mnt/$one"
tap_ok $? "nobody holds opens of one file with many flag sets"
during=$(fds)
tap_ok $((during - before > 2)) "one file's opens for reading cost the daemon at most 2 fds, whatever the flags" ||
	tap_diag "daemon fds: $before before, $during while nobody holds them"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
