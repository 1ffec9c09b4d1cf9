#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A directory merged from several volumes shows the attributes of the first
# volume holding it (plan.c fill_attrs). A second volume whose directory is
# private (its root 0700, as a vmstorage data dir often is) must not become
# readable by everyone through the mount: its files sit behind that 0700 on
# the volume, and nowhere on the mount. Read-only and preview mounts alike.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv

copy_two_volumes
chmod -R go+rX "$vols"
# node1 is private: only its owner (root) may enter it.
chmod 0700 "$vols/node1"
# A part that only node1 has.
part=
for d in "$vols"/node1/data/small/*/*/; do
	rel=${d#"$vols/node1/"}
	rel=${rel%/}
	[ -e "$vols/node0/$rel" ] || { part=$rel; break; }
done
[ -n "$part" ]
tap_ok $? "a part only node1 holds: $part" || tap_bail "no such part"
snapshot_volumes "$vols/node0" "$vols/node1"

as_nobody cat "$vols/node1/$part/index.bin" >/dev/null 2>&1
tap_ok $(($? == 0)) "on the volume, nobody cannot read node1's index.bin"

nobody_cannot_read "$vols/node1/$part/index.bin" "$part/index.bin" "node1's index.bin" "$vols/node0" "$vols/node1"
assert_volumes_unchanged
tap_done
