#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What: nobody opens every part file of the preview once, plain O_RDONLY,
# and holds them, with the daemon's fd limit lowered below the file count. The
# preview once kept an fd per opened file until release; volume files are
# now read through a bounded fd cache (fs.c volume_fds), as on the
# read-only mount.
# Why it matters: a vmstorage volume has tens of thousands of files; any
# local user of an allow_other preview takes every fd of the root daemon,
# and vmstorage on the preview then gets EMFILE for every open and create.
# Right: with a user holding opens of every file, below lazy dirs and as
# stubs in populated ones, the daemon stays under its fd limit, and root
# still reads another file's bytes and creates a file.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd prlimit setpriv getfattr
shared_preview
# Every file of every part: the volume files, nearly all a volume holds. The
# few files with the upper's own bytes (parts.json, lock files) keep an fd
# per open file.
mapfile -t files < <(cd "$mnt" && find data indexdb -name metaindex.bin -printf '%h\n' |
	xargs -I{} find {} -type f | sort)
# A limit below what one fd per part file would take stands for the hard
# limit that a real volume's file count reaches. The daemon's fd cache
# keeps at most half of it.
idle=$(ls "/proc/$pid/fd" | wc -l)
limit=$((2 * idle + 16))
[ "$((idle + ${#files[@]}))" -gt "$limit" ]
tap_ok $? "one fd per part file would pass the daemon's limit: $idle idle + ${#files[@]} files > $limit"
prlimit --pid "$pid" --nofile=$limit:$limit
tap_ok $? "the daemon's fd limit is $limit"
mine=${files[-1]}
flag=$(scratch_dir flag) && chmod 1777 "$flag"

# hold_every_file WHAT: nobody opens every part file but the last, holds them
# while root reads the last and creates a file.
hold_every_file() {
	local what=$1 holder held
	rm -f "$flag/held"
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
	tap_ok $? "$what: nobody holds one plain open of every file but one"
	held=$(ls "/proc/$pid/fd" | wc -l)
	[ "$held" -lt "$limit" ]
	tap_ok $? "$what: the daemon holds $held fds, under its limit of $limit"
	cat "$mnt/$mine" >/dev/null 2>"$SCRATCH/root.err"
	tap_ok $? "$what: root still reads $mine" || tap_diag "$(cat "$SCRATCH/root.err")"
	touch "$mnt/metadata/new-$what" 2>"$SCRATCH/root.err"
	tap_ok $? "$what: root still creates a file" || tap_diag "$(cat "$SCRATCH/root.err")"
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
}

hold_every_file lazy
# A file made in every dir populates it: its files become stubs in the upper.
find "$mnt/data" "$mnt/indexdb" -type d -exec sh -c 'touch "$1/.p" && rm "$1/.p"' sh {} \;
stubs=$(getfattr -R -m user.vmunionfs.lower --absolute-names "$SCRATCH/upper" 2>/dev/null |
	grep -c '^# file:')
[ "$stubs" -ge "${#files[@]}" ]
tap_ok $? "every dir is populated: $stubs files are stubs in the upper"
hold_every_file stubs
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
