#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review5: a volume directory's POSIX ACL is part of its permissions as a
# file's is (volume-acl.sh): "user:nobody:---" on a 0755 part dir keeps
# nobody out of it on the volume. Both mounts serve only files' ACLs
# (fs_plan.c volume_xattr takes PLAN_LOWER_FILE only; fs.c op_getxattr
# says "a dir ... has none"; populate copies no dir ACL), so through an
# allow_other mount the kernel checks the mode alone and nobody reads the
# part's files. It must be denied there too (serve the dir's ACL, or
# refuse a volume whose ACLs the mount cannot enforce).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv python3

shared_volumes
part=$(cd "$vols/node0" && find data/small -mindepth 2 -maxdepth 2 -type d | sort | head -n 1)
[ -n "$part" ] && [ ! -e "$vols/node1/$part" ] || tap_bail "no part of node0 only"
set_acl "$vols/node0/$part" access "${NOBODY_DENIED[@]}" ||
	tap_skip_all "no POSIX ACLs where the scratch dir is"
snapshot_volumes "$vols/node0" "$vols/node1"

as_nobody cat "$vols/node0/$part/index.bin" >/dev/null 2>&1
tap_ok $(($? == 0)) "on the volume, nobody cannot read a file of the part dir"

nobody_cannot_read "$vols/node0/$part/index.bin" "$part/index.bin" \
	"a file of a dir whose ACL denies nobody" "$vols/node0" "$vols/node1"
assert_volumes_unchanged
tap_done
