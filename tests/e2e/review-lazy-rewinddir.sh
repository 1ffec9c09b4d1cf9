#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A dir handle opened while its dir is lazy lists the plan's children. Once
# the dir is populated and changed, a rewinddir (readdir from offset 0) on
# that same handle must show the dir as it is now (POSIX: entries added or
# removed before the rewinddir are reported as they are), not the plan's
# list: a file made since is listed, a file removed since is not.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_two
dir="$mnt/data/small/2024_02"
python3 - "$dir" >"$SCRATCH/listing" 2>&1 <<'PY'
import os, sys
d = sys.argv[1]
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
before = sorted(os.listdir(fd))     # read while lazy
gone = next(n for n in before if n not in ("tmp", "txn"))
os.rename(os.path.join(d, gone), os.path.join(d, "renamed"))  # populates d
open(os.path.join(d, "new"), "w").close()
after = sorted(os.listdir(fd))      # os.listdir(fd) rewinds the handle
print("gone=" + gone)
print("same handle: " + " ".join(after))
print("fresh open:  " + " ".join(sorted(os.listdir(d))))
PY
tap_ok $? "listed a lazy dir, changed it, listed the same handle again" ||
	tap_diag "$(cat "$SCRATCH/listing")"
same=$(sed -n 's/^same handle: //p' "$SCRATCH/listing")
fresh=$(sed -n 's/^fresh open:  //p' "$SCRATCH/listing")
[[ " $fresh " == *" new "* && " $fresh " == *" renamed "* ]]
tap_ok $? "a fresh opendir shows the new and the renamed entry" || tap_diag "$fresh"
tap_is "$same" "$fresh" "after a rewinddir the handle opened while lazy lists the same"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
