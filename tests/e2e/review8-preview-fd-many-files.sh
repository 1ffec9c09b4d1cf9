#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What: the preview's opens for reading share one daemon fd per file and
# flags (fs.c file_share), but nothing bounds the fds held for distinct
# files: nobody opens every file of the mount once, plain O_RDONLY, and
# holds them. The read-only mount bounds its volume fds (fd_cache, half the
# limit); the preview keeps one per opened file until release.
# Why it matters: a vmstorage volume has tens of thousands of files; any
# local user of an allow_other preview takes every fd of the root daemon,
# and vmstorage on the preview then gets EMFILE for every open and create.
# Right: with a user holding opens of every file, root still reads another
# file's bytes and creates a file (the daemon keeps fds for others).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd prlimit setpriv
shared_preview
mapfile -t files < <(cd "$mnt" && find data indexdb -type f | sort)
# A limit a little above what the daemon holds idle stands for the hard
# limit that a real volume's file count reaches.
idle=$(ls "/proc/$pid/fd" | wc -l)
limit=$((idle + ${#files[@]} / 2))
prlimit --pid "$pid" --nofile=$limit:$limit
tap_ok $? "the daemon's fd limit is $limit ($idle held idle, ${#files[@]} files)"
mine=${files[-1]}
flag=$(scratch_dir flag) && chmod 1777 "$flag"
setpriv --reuid=65534 --regid=65534 --clear-groups bash -c '
	cd "$1" && shift && flag=$1 && shift
	i=10
	for f in "$@"; do
		eval "exec $i<\"\$f\"" 2>/dev/null
		i=$((i + 1))
	done
	touch "$flag"
	exec sleep 8' sh "$mnt" "$flag/held" "${files[@]:0:${#files[@]}-1}" >/dev/null 2>&1 &
holder=$!
on_exit "kill $holder 2>/dev/null; wait $holder 2>/dev/null"
wait_for 15 test -e "$flag/held"
tap_ok $? "nobody holds one plain open of every file but one"
cat "$mnt/$mine" >/dev/null 2>"$SCRATCH/root.err"
tap_ok $? "root still reads $mine" || tap_diag "$(cat "$SCRATCH/root.err")"
touch "$mnt/metadata/new" 2>"$SCRATCH/root.err"
tap_ok $? "root still creates a file" || tap_diag "$(cat "$SCRATCH/root.err")"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
