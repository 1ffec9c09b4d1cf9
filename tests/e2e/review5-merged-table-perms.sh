#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review5: an indexdb table merged by role is named after the largest name
# of its role, a dir of one volume only. fill_attrs gives it that volume's
# mode alone, so the tables merged into it lend it nothing: node0's curr
# table kept 0700 on its volume (only root enters it) is served inside
# node1's 0755 table, and nobody reads node0's index parts through an
# allow_other mount. A merged table must grant no more than every table
# merged into it grants (as merged-dir-perms.sh asks of a dir several
# volumes hold at one path). Read-only and preview mounts alike.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv

copy_two_volumes
chmod -R go+rX "$vols"
# The sample's curr tables: node0's 18EB73DE89BB1CCD is merged into
# node1's 18EB73DE89D53020 (vmunion plan), which names the merged table.
private=indexdb/18EB73DE89BB1CCD
merged=indexdb/18EB73DE89D53020
part=48389_102_18EB73DE8D3D38F2
[ -f "$vols/node0/$private/$part/items.bin" ] && [ -d "$vols/node1/$merged" ] &&
	[ ! -e "$vols/node0/$merged" ]
tap_ok $? "node0's table $private is merged into node1's $merged" ||
	tap_bail "the sample's tables are not as expected"
chmod 0700 "$vols/node0/$private"
snapshot_volumes "$vols/node0" "$vols/node1"

as_nobody cat "$vols/node0/$private/$part/items.bin" >/dev/null 2>&1
tap_ok $(($? == 0)) "on the volume, nobody cannot read node0's items.bin"

nobody_cannot_read "$vols/node0/$private/$part/items.bin" "$merged/$part/items.bin" \
	"node0's items.bin in the merged table" "$vols/node0" "$vols/node1"
assert_volumes_unchanged
tap_done
