#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# materialize --into grants no one more than the volumes: the other
# volume's private file keeps its mode and owner in TARGET, TARGET's root is
# narrowed to what every volume's root grants (node1's is 0700), a merged
# dir to what each volume's grants; a rollback gives TARGET's root its mode
# back.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd setpriv
[ "$(id -u)" -eq 0 ] || tap_skip_all "needs root (setpriv)"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

copy_two_volumes
target=$vols/node0
file=$(cd "$vols/node1" && find data/small/2024_02 -name index.bin | sort | head -n 1)
chown 1234:2345 "$vols/node1/$file" && chmod 0600 "$vols/node1/$file"
chmod 0700 "$vols/node1"
chmod 0750 "$target/data/small/2024_03" && chmod 0705 "$vols/node1/data/small/2024_03"
snapshot_volumes "$vols/node1"
chmod 0755 "$SCRATCH"
tap_is "$(stat -c %a "$target")" 755 "TARGET's root is 0755"

tap_run "materialize --into node0" "$VMUNION" materialize -q --into "$target" "$target" "$vols/node1"
tap_is "$(stat -c '%a %u %g' "$target/$file")" "600 1234 2345" "node1's private file keeps its mode and owner"
as_nobody cat "$target/$file" >/dev/null 2>&1
tap_ok $(($? == 0)) "... nobody cannot read it in TARGET"
tap_is "$(stat -c %a "$target")" 700 "TARGET's root: no wider than node1's (0700)"
as_nobody ls "$target/data" >/dev/null 2>&1
tap_ok $(($? == 0)) "... nobody cannot list TARGET/data"
tap_is "$(stat -c %a "$target/data/small/2024_03")" 700 "a merged dir: what both grant (0750, 0705)"

tap_run "rollback" "$VMUNION" rollback -q "$target"
tap_is "$(stat -c %a "$target")" 755 "the rollback gives TARGET's root its mode back"
[ ! -e "$target/$file" ]
tap_ok $? "... and node1's file is gone from it"
assert_volumes_unchanged
tap_done
