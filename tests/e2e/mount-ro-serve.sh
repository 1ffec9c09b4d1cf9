#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The read-only mount is the plan served from memory: what stat shows is the
# volumes' own (mode, owner, size, mtime, blocks), the kernel enforces those
# permissions for other users of an allow_other mount, a volume file that
# shrank underneath the mount fails with EIO (never zeros), the daemon holds
# a bounded number of fds, and it keeps no tree anywhere (nothing is left in
# /dev/shm by a kill -9).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3 setpriv prlimit truncate

vols="$SCRATCH/vols"
copy_volume "$DATA_DIR/v1.150.0-cluster/node0" "$vols/node0" &&
	copy_volume "$DATA_DIR/v1.150.0-cluster/node1" "$vols/node1"
tap_ok $? "copied two volumes" || tap_bail "cannot copy the sample volumes"

# first_part VOLUME PARTITION : the first part listed in its small parts.json.
first_part() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Small"][0])' \
		"$1/data/small/$2/parts.json"
}
# Whatever the checkout's umask was: everyone may read the volumes, but for
# the entries made private below.
chmod -R go+rX "$vols"
p0="data/small/2024_01/$(first_part "$vols/node0" 2024_01)"
p1="data/small/2024_02/$(first_part "$vols/node1" 2024_02)"
p2="data/small/2024_03/$(first_part "$vols/node1" 2024_03)"
secret="$p0/values.bin"
chmod 0600 "$vols/node0/$secret"
chown 1234:2345 "$vols/node0/$p0/index.bin" && chmod 0640 "$vols/node0/$p0/index.bin"
touch -d '2021-02-03 04:05:06.123456789' "$vols/node0/$p0/timestamps.bin"
# Both volumes hold 2024_02: a merged dir grants only what every volume's dir
# grants (plan-t, merged-dir-perms.sh), so both get the same owner and mode.
for v in node0 node1; do
	chown 4321:5432 "$vols/$v/data/small/2024_02" && chmod 0750 "$vols/$v/data/small/2024_02"
done
snapshot_volumes "$vols/node0" "$vols/node1"

# Other users reach the mountpoint (the scratch dir is 0700).
chmod 0755 "$SCRATCH"
mnt=$(scratch_dir mnt)
# nopassthrough: the reads checked here are the daemon's (passthrough.sh has the
# kernel's).
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -f -o allow_other -o nocheck -o nopassthrough
tap_ok $? "mounted read-only with allow_other" || tap_bail "no mount"
pid=$(union_pids "$mnt")
pid=${pid%% *}
[ -n "$pid" ]
tap_ok $? "daemon pid known ($pid)" || tap_bail "no daemon pid"

# --- permissions are the volumes', enforced for other users ----------------
as_nobody cat "$mnt/$p0/metaindex.bin" >/dev/null 2>"$SCRATCH/nobody.err"
tap_ok $? "nobody reads a 0644 volume file through the mount" || tap_diag "$(cat "$SCRATCH/nobody.err")"
as_nobody cat "$mnt/$secret" >/dev/null 2>"$SCRATCH/nobody.err"
rc=$?
[ "$rc" -ne 0 ] && grep -q "Permission denied" "$SCRATCH/nobody.err"
tap_ok $? "nobody cannot read a 0600 volume file through the mount" || tap_diag "rc=$rc $(cat "$SCRATCH/nobody.err")"
cmp -s "$vols/node0/$secret" "$mnt/$secret"
tap_ok $? "root still reads it"
as_nobody ls "$mnt/data/small/2024_02" >/dev/null 2>&1
tap_ok $(($? == 0)) "nobody cannot list a 0750 directory of another owner"

# --- stat shows the volumes' attributes --------------------------------------
tap_is "$(stat -c '%a %u %g' "$mnt/$p0/index.bin")" "640 1234 2345" "mode and owner of a file"
tap_is "$(stat -c '%a %u %g' "$mnt/data/small/2024_02")" "750 4321 5432" "mode and owner of a directory"
tap_is "$(stat -c %y "$mnt/$p0/timestamps.bin")" "$(stat -c %y "$vols/node0/$p0/timestamps.bin")" \
	"mtime to the nanosecond"
python3 - "$mnt" "$vols/node0" "$vols/node1" >"$SCRATCH/stat.out" <<'PY'
import os, stat, sys
mnt, vols = sys.argv[1], sys.argv[2:]
bad, files, dirs = [], 0, 0
for dirpath, dirnames, filenames in os.walk(mnt):
    rel = os.path.relpath(dirpath, mnt)
    for name in dirnames + filenames + ([""] if rel == "." else []):
        path = os.path.normpath(os.path.join(rel, name))
        got = os.lstat(os.path.join(mnt, path))
        src = None
        for v in vols:  # directories: the first volume holding one
            p = os.path.join(v, path)
            if os.path.lexists(p) and stat.S_ISDIR(os.lstat(p).st_mode) == stat.S_ISDIR(got.st_mode):
                src = os.lstat(p)
                break
        if src is None or name in ("parts.json", "flock.lock", "minTimestampForCompositeIndex"):
            continue  # made by the merge
        keys = ["st_mode", "st_uid", "st_gid", "st_mtime_ns"]
        if stat.S_ISREG(got.st_mode):
            keys += ["st_size", "st_blocks", "st_nlink"]
            files += 1
        else:
            dirs += 1
        for k in keys:
            if getattr(got, k) != getattr(src, k):
                bad.append("%s %s: mount %r volume %r" % (path, k, getattr(got, k), getattr(src, k)))
for b in bad[:10]:
    print("# " + b)
print("# compared %d files and %d directories" % (files, dirs))
sys.exit(1 if bad or files < 20 or dirs < 10 else 0)
PY
tap_ok $? "stat of every file and directory equals the volume's (mode uid gid mtime size blocks)"
cat "$SCRATCH/stat.out"
tap_is "$(stat -c '%a %u %g %s' "$mnt/data/small/2024_01/parts.json")" \
	"644 $(stat -c '%u %g' "$vols/node0/data/small/2024_01") $(wc -c <"$mnt/data/small/2024_01/parts.json")" \
	"a synthesized parts.json: 0644 (its dir is 0755), owned like its dir"
tap_is "$(stat -c '%a %u %g' "$mnt/data/small/2024_02/parts.json")" "640 4321 5432" \
	"... in a 0750 dir: 0640"
getfattr -d "$mnt/$p0/index.bin" >"$SCRATCH/xattr.out" 2>&1
tap_ok $? "getxattr/listxattr answer (no attributes)" || tap_diag "$(cat "$SCRATCH/xattr.out")"

# --- a volume file that shrank underneath is EIO, never zeros ---------------
# Neither file has been read through the mount: no page is cached.
f1="$p1/index.bin" f2="$p2/index.bin"
[ "$(stat -c %s "$vols/node1/$f1")" -gt 1 ] && [ "$(stat -c %s "$vols/node1/$f2")" -gt 1 ]
tap_ok $? "two part files of more than one byte"
assert_volumes_unchanged "volume untouched by the mount, before truncating it"
truncate -s 1 "$vols/node1/$f1"
cat "$mnt/$f1" >/dev/null 2>"$SCRATCH/eio.err"
rc=$?
[ "$rc" -ne 0 ] && grep -q "Input/output error" "$SCRATCH/eio.err"
tap_ok $? "a file truncated in its volume fails to read with EIO" || tap_diag "rc=$rc $(cat "$SCRATCH/eio.err")"
grep -qF "$vols/node1/$f1" "$MOUNT_LOG"
tap_ok $? "... and the daemon's log names the file" || _log_tail "$MOUNT_LOG"
exec 7<"$mnt/$f2"
truncate -s 1 "$vols/node1/$f2"
cat <&7 >/dev/null 2>"$SCRATCH/eio.err"
rc=$?
exec 7<&-
[ "$rc" -ne 0 ] && grep -q "Input/output error" "$SCRATCH/eio.err"
tap_ok $? "read of an open file truncated in its volume fails with EIO" || tap_diag "rc=$rc $(cat "$SCRATCH/eio.err")"
grep -qF "$vols/node1/$f2" "$MOUNT_LOG"
tap_ok $? "... and the daemon's log names the file" || _log_tail "$MOUNT_LOG"

# --- fds: a bounded cache of volume files --------------------------------
# Files the daemon holds, and pipes (libfuse's splice pipes, a pair per
# worker thread, if splice were asked for).
fd_count() {
	find "/proc/$pid/fd" -mindepth 1 -printf '%l\n' | grep -vc '^pipe:'
}
pipe_count() {
	find "/proc/$pid/fd" -mindepth 1 -printf '%l\n' | grep -c '^pipe:'
}
prlimit --pid "$pid" --nofile=64:64
tap_ok $? "daemon limited to 64 open files"
before=$(fd_count)
find "$mnt" -type f ! -path "*/$f1" ! -path "*/$f2" -print0 | xargs -0 cat >/dev/null 2>"$SCRATCH/walk.err"
tap_ok $? "every file read (a full walk) under the limit" || tap_diag "$(head -3 "$SCRATCH/walk.err")"
files=$(find "$mnt" -type f | wc -l)
# The cache keeps at most half the fd limit (32) of volume files open.
[ "$files" -gt 64 ] && [ "$(fd_count)" -le $((before + 32)) ]
tap_ok $? "after reading $files files the daemon holds $(fd_count) files ($before before, at most 32 more)" ||
	tap_diag "$(ls -l "/proc/$pid/fd" 2>&1)"
[ "$(pipe_count)" -le 2 ]
tap_ok $? "... and $(pipe_count) pipes: no splice pipe pair per worker thread" ||
	tap_diag "$(ls -l "/proc/$pid/fd" 2>&1)"
ls -l "/proc/$pid/fd" >"$SCRATCH/fds" 2>&1
grep -- '-> /dev/shm/' "$SCRATCH/fds" >"$SCRATCH/shmfds"
tap_ok $(($? == 0)) "the daemon holds nothing in /dev/shm" || tap_diag "$(head -3 "$SCRATCH/shmfds")"

# --- kill -9 leaves nothing behind ----------------------------------------
# Whatever the daemon has open is what a kill would leak.
held=$(sed -n 's|.* -> \(/dev/shm/.*\)|\1|p' "$SCRATCH/fds")
kill -9 "$pid"
wait_for 10 eval "! kill -0 $pid 2>/dev/null"
tap_ok $? "daemon killed with SIGKILL"
unmount_union "$mnt" >/dev/null 2>&1
! mountpoint -q "$mnt"
tap_ok $? "the dead mount is cleaned up"
leaked=0
for p in $held; do
	[ -e "$p" ] && leaked=1 && tap_diag "left behind: $p"
done
tap_ok $leaked "nothing the daemon had open in /dev/shm is left"
tap_done
