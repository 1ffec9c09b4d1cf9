#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review10: the flusher sleeps with pthread_cond_timedwait on a
# CLOCK_REALTIME deadline (flusher_main: clock_gettime(CLOCK_REALTIME),
# tv_sec++). When the wall clock is stepped back (NTP at boot, a VM
# resumed, an operator's date -s) by D seconds while it waits, it sleeps
# D + 1 s, and no file unlinked from a lazy dir reaches the upper
# meanwhile: vmunionfs(1) promises "within 3 seconds", and a daemon killed
# in that window brings every such file back. The pending ages are
# CLOCK_MONOTONIC already; the wait should be too (pthread_condattr_setclock).
# The step back is simulated: an LD_PRELOAD shim shows the daemon a wall
# clock one hour ahead at mount, then the true one from a second later (an
# hour stepped back), while the kernel keeps its own.
# Expected: the dir is populated within a few seconds of the unlink.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd cc getfattr

shim=$SCRATCH/clockshim.so
cat >"$SCRATCH/clockshim.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
/* CLOCK_REALTIME plus the seconds in the file $REVIEW10_CLOCK_OFFSET. */
int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	const char *path = getenv("REVIEW10_CLOCK_OFFSET");
	long offset = 0;
	FILE *f;
	int rc;

	if (!real)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	rc = real(id, ts);
	if (rc == 0 && id == CLOCK_REALTIME && path && (f = fopen(path, "re"))) {
		if (fscanf(f, "%ld", &offset) == 1)
			ts->tv_sec += offset;
		fclose(f);
	}
	return rc;
}
C
cc -shared -fPIC -o "$shim" "$SCRATCH/clockshim.c" -ldl
tap_ok $? "built the clock shim" || tap_bail "no shim"

copy_two_volumes
snapshot_volumes "$vols/node0" "$vols/node1"
upper=$SCRATCH/upper
mnt=$(scratch_dir mnt)
echo 3600 >"$SCRATCH/offset"
# A sanitizer build wants its runtime first in the preload list.
preload=$shim
asan=$(ldd "$VMUNIONFS" 2>/dev/null | awk '/libasan/ { print $3 }')
[ -z "$asan" ] || preload="$asan $shim"
REVIEW10_CLOCK_OFFSET=$SCRATCH/offset LD_PRELOAD=$preload \
	mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
tap_ok $? "preview mounted, its wall clock an hour ahead" || tap_bail "no mount"
sleep 1.5
echo 0 >"$SCRATCH/offset"
tap_ok $? "... then stepped back an hour"

partition=data/small/2024_01
p1=$partition/$(cd "$mnt/$partition" && ls -d *_* | head -n 1)
is_lazy() {
	getfattr -n user.vmunionfs.plan --only-values "$upper/tree/$1" >/dev/null 2>&1
}
mkdir "$mnt/$partition/probe" && rmdir "$mnt/$partition/probe"
is_lazy "$p1"
tap_ok $? "a lazy part dir"
rm "$mnt/$p1/timestamps.bin"
tap_ok $? "unlinked a file from it"
wait_for 10 eval "! is_lazy '$p1'"
tap_ok $? "the upper learns of it within 10 s (the flusher populates the dir)"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
