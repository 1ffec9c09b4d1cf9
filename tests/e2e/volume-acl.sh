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

vols="$SCRATCH/vols"
copy_volume "$DATA_DIR/v1.79.5/node0" "$vols/node0" &&
	copy_volume "$DATA_DIR/v1.79.5/node1" "$vols/node1" ||
	tap_bail "cannot copy the sample volumes"
chmod -R go+rX "$vols"
file=$(cd "$vols/node0" && find data/small -name index.bin | sort | head -n 1)
# system.posix_acl_access, version 2: user::rw- user:65534:--- group::r-- mask::r-- other::r--
python3 - "$vols/node0/$file" <<'PY'
import os, struct, sys
entries = [(0x01, 6, 0xffffffff), (0x02, 0, 65534), (0x04, 4, 0xffffffff),
           (0x10, 4, 0xffffffff), (0x20, 4, 0xffffffff)]
value = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)
os.setxattr(sys.argv[1], "system.posix_acl_access", value)
PY
[ $? -eq 0 ] || tap_skip_all "no POSIX ACLs where the scratch dir is"
snapshot_volumes "$vols/node0" "$vols/node1"

as_nobody cat "$vols/node0/$file" >/dev/null 2>&1
tap_ok $(($? == 0)) "on the volume, nobody cannot read it"

nobody_cannot_read "$vols/node0/$file" "$file" "it" "$vols/node0" "$vols/node1"
assert_volumes_unchanged
tap_done
