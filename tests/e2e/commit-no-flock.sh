#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review (issue 9): "TARGET is never written while a vmstorage holds it".
# target_lock() locks TARGET/flock.lock only if it exists: an operator who
# removed a "stale" flock.lock (or a volume vmrestore wrote) leaves TARGET
# unguarded. A victoria-metrics started on TARGET during the staging (held
# there 10 s by strace's delay injection on the first linkat: a loaded CI
# machine may take 4 s to start it) takes a fresh
# flock.lock, starts, and vmunion then swaps TARGET's directories out from
# under the running node and exits 0.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"
require_vm
require_cmd strace

work=$SCRATCH/set
vols=()
for n in 0 1 2 3; do
	copy_volume "$DATA_DIR/v1.79.5/node$n" "$work/node$n" || tap_bail "cannot copy node$n"
	vols+=("$work/node$n")
done
target=$work/node1
rm -f "$target/flock.lock"
snapshot_volumes "$work/node0" "$work/node2" "$work/node3"

strace -f -o /dev/null -e trace=linkat -e inject=linkat:delay_enter=10000000:when=1 \
	"$VMUNION" materialize --into "$target" "${vols[@]}" >"$SCRATCH/commit.out" 2>&1 &
commit_pid=$!
on_exit "kill $commit_pid 2>/dev/null"
wait_for 10 test -e "$target/.vmunion-commit/stage" || tap_bail "the commit did not start staging"
port=$(free_port)
"$VICTORIA_METRICS" -storageDataPath="$target" -retentionPeriod=100y \
	-httpListenAddr="127.0.0.1:$port" >"$SCRATCH/vm.log" 2>&1 </dev/null &
vm_pid=$!
on_exit "_vm_cleanup $vm_pid"
wait_for 10 eval "[ \"\$(http_get http://127.0.0.1:$port/health 1 2>/dev/null)\" = OK ] || ! kill -0 $vm_pid 2>/dev/null"
vm_up=0
kill -0 "$vm_pid" 2>/dev/null && vm_up=1
wait_for 40 eval "! kill -0 $commit_pid 2>/dev/null"
wait "$commit_pid"
commit_rc=$?
[ "$vm_up" = 0 ] || [ "$commit_rc" != 0 ]
tap_ok $? "a vmstorage started mid-commit: either it is refused, or the commit stops (vm up: $vm_up, commit exit $commit_rc)" ||
	tap_diag "$(cat "$SCRATCH/commit.out")"
_vm_cleanup "$vm_pid"
assert_volumes_unchanged "the other volumes are byte-identical"
tap_done
