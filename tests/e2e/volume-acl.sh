#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A volume file's POSIX ACL is part of its permissions: an entry
# "user:nobody:---" on a 0644 file denies nobody on the volume. The mount
# checks only the mode bits (default_permissions, no ACL served), so nobody
# reads the file through an allow_other mount. It must be denied there too
# (serve the ACL, or refuse a volume whose ACLs the mount cannot enforce).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv python3

shared_volumes
file=$(cd "$vols/node0" && find data/small -name index.bin | sort | head -n 1)
# user::rw- user:nobody:--- group::r-- mask::r-- other::r--
set_acl "$vols/node0/$file" access u::6 U:65534:0 g::4 m::4 o::4 ||
	tap_skip_all "no POSIX ACLs where the scratch dir is"
snapshot_volumes "$vols/node0" "$vols/node1"

as_nobody cat "$vols/node0/$file" >/dev/null 2>&1
tap_ok $(($? == 0)) "on the volume, nobody cannot read it"

nobody_cannot_read "$vols/node0/$file" "$file" "it" "$vols/node0" "$vols/node1"
assert_volumes_unchanged
tap_done
