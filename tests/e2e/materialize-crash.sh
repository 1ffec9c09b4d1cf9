#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 of vmunion materialize at several points of a ~310 MB set: while
# DEST is unfinished victoria-metrics refuses it (restore-in-progress) and
# nothing is published; each rerun of the same command resumes without
# copying finished files again; the end result passes verify and
# victoria-metrics serves every series; the volumes stay byte-identical.
#
# The set: writable copies of the four v1.79.5 volumes whose values.bin files
# carry 20 MB of random bytes at the end each (16 files): victoria-metrics
# reads blocks at the offsets its index gives and never looks at the tail,
# so the set stays one it serves in full, and it is big enough for a timed
# kill to land in the middle of a file (copied with --jobs 1, each file
# fsynced).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd "$PYTHON3" du
[ -x "$VMUNION" ] && [ -x "$VMUNION_TEST" ] || tap_bail "$VMUNION or $VMUNION_TEST not built (make check builds both)"

set_dir=$DATA_DIR/v1.79.5
manifest=$set_dir/manifest.json
padded_set 20000000
snapshot_volumes "${vols[@]}"
total=$(du -sb --apparent-size "${vols[@]}" | awk '{ s += $1 } END { print s }')
tap_diag "set: $((total / 1000000)) MB in 4 volumes"

dest=$SCRATCH/dest
staging=$dest/.vmunion-staging

json_get() {
	"$PYTHON3" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

staged_bytes() {
	local b
	b=$(du -sb --apparent-size "$staging" 2>/dev/null | cut -f1)
	echo "${b:-0}"
}

# kill_when_staged BYTES : run the copy in the background and SIGKILL it
# once the staging dir holds BYTES. Returns 1 if it ended by itself first.
kill_when_staged() {
	local limit=$1 pid
	"$VMUNION" materialize --mode copy --jobs 1 -q "${vols[@]}" "$dest" >"$SCRATCH/bg.log" 2>&1 &
	pid=$!
	on_exit "kill -KILL $pid 2>/dev/null"
	while _pid_alive "$pid"; do
		if [ "$(staged_bytes)" -ge "$limit" ]; then
			kill -KILL "$pid"
			wait "$pid" 2>/dev/null
			return 0
		fi
		sleep 0.02
	done
	wait "$pid"
	return 1
}

# unfinished : the state a kill must leave: vmstorage's guard and our marker
# in DEST, and no part of the tree published.
unfinished() {
	[ -f "$dest/restore-in-progress" ] && [ -f "$dest/.vmunion-materialize.json" ] &&
		[ ! -e "$dest/data" ] && [ ! -e "$dest/indexdb" ]
}

# finished_files : "inode path" of every complete staged file.
finished_files() {
	(cd "$staging" && find . -type f ! -name '*.vmunion-tmp' -printf '%i %P\n' | sort -k2)
}

cuts=0
for fraction in 20 55; do
	kill_when_staged $((total * fraction / 100))
	tap_ok $? "kill -9 with about $fraction% staged" || continue
	unfinished
	tap_ok $? "after the kill at $fraction%: restore-in-progress and the marker are there, nothing is published" ||
		tap_diag "$(ls -A "$dest")"
	if [ -n "$(find "$staging" -name '*.vmunion-tmp' -size +0)" ]; then
		cuts=$((cuts + 1))
	fi
	finished_files >"$SCRATCH/finished.$fraction"
	tap_diag "$(wc -l <"$SCRATCH/finished.$fraction") files finished, $(staged_bytes) bytes staged"
done
[ "$cuts" -gt 0 ]
tap_ok $? "at least one kill landed in the middle of a file ($cuts)"

# victoria-metrics must refuse the unfinished DEST (it leaves a flock.lock,
# which the resume copes with).
if command -v "$VICTORIA_METRICS" >/dev/null 2>&1; then
	timeout 60 "$VICTORIA_METRICS" -storageDataPath="$dest" -retentionPeriod=100y \
		-httpListenAddr="127.0.0.1:$(free_port)" >"$SCRATCH/vm-refuse.log" 2>&1 </dev/null
	rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q restore-in-progress "$SCRATCH/vm-refuse.log"
	tap_ok $? "victoria-metrics refuses to start on the unfinished DEST (status $rc)" ||
		tap_diag "$(tail -n 5 "$SCRATCH/vm-refuse.log")"
else
	tap_skip "$VICTORIA_METRICS not found" "victoria-metrics refuses the unfinished DEST"
fi

# Stop at fixed points too: after the staging is synced, in the middle of
# the publishing renames, and between the two marks' removal.
for point in staged publish:2 unmarked; do
	# (a subshell, so that bash's "Killed" goes to /dev/null)
	(VMUNION_MATERIALIZE_CRASH_AT=$point "$VMUNION_TEST" materialize -q "${vols[@]}" "$dest" >"$SCRATCH/run.out" 2>&1
		echo $? >"$SCRATCH/run.rc") 2>/dev/null
	tap_is "$(cat "$SCRATCH/run.rc")" 137 "a rerun stopped by SIGKILL at '$point'"
	case $point in
	staged)
		# The run resumed: it wrote only what the earlier kills left.
		unfinished
		tap_ok $? "$point: nothing published yet" || tap_diag "$(ls -A "$dest")"
		missing=0 moved=0
		while read -r ino path; do
			now=$(stat -c %i "$staging/$path" 2>/dev/null) || {
				missing=$((missing + 1))
				continue
			}
			[ "$now" = "$ino" ] || moved=$((moved + 1))
		done <"$SCRATCH/finished.55"
		tap_is "$missing/$moved" 0/0 "files finished before the kills were kept, not copied again"
		;;
	publish:2)
		[ -f "$dest/restore-in-progress" ] && [ -d "$dest/cache" ] && [ -d "$dest/data" ] &&
			[ ! -e "$dest/indexdb" ] && [ -d "$staging/indexdb" ]
		tap_ok $? "$point: two entries published, the rest staged, restore-in-progress still there" ||
			tap_diag "$(ls -A "$dest" "$staging")"
		;;
	unmarked)
		[ ! -e "$dest/restore-in-progress" ] && [ -f "$dest/.vmunion-materialize.json" ] &&
			[ ! -e "$staging" ]
		tap_ok $? "$point: the tree is complete, only the marker is left" ||
			tap_diag "$(ls -A "$dest")"
		;;
	esac
done

tap_run "the last rerun finishes" "$VMUNION" materialize -q --json "${vols[@]}" "$dest"
tap_is "$(json_get "$TAP_OUT" 'j["files_written"] == 0 and j["modes"]["done"] == j["files"]')" True \
	"the last rerun had nothing left to copy"
[ ! -e "$dest/restore-in-progress" ] && [ ! -e "$dest/.vmunion-materialize.json" ] && [ ! -e "$staging" ]
tap_ok $? "no marks left" || tap_diag "$(ls -A "$dest")"
# victoria-metrics' refused start left a flock.lock at the top of DEST: the
# resume kept it only because it equals the merged view's (an empty file).
tap_run "verify passes" "$VMUNION" verify "${vols[@]}" "$dest"

if command -v "$VICTORIA_METRICS" >/dev/null 2>&1; then
	port=$(free_port)
	vm_start "$dest" "$port"
	tap_ok $? "victoria-metrics starts on the resumed DEST" || tap_done
	vm_compare "$VM_URL" "$manifest" >"$SCRATCH/compare.out" 2>&1
	tap_ok $? "every series of the four volumes, count and sum exact" ||
		tap_diag "$(cat "$SCRATCH/compare.out")"
	head -n 1 "$SCRATCH/compare.out" | tap_diag
	vm_stop
	tap_ok $? "victoria-metrics stops cleanly"
fi

assert_volumes_unchanged "volume byte-identical after the kills"
tap_done
