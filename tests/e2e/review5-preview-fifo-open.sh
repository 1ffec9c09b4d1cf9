#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review5: the preview opens an upper file by its path at each OPEN
# (fs.c open_upper_file: node_open with the caller's flags, no O_NONBLOCK),
# so a FIFO renamed over a regular file between the kernel's lookup and the
# daemon's openat is opened instead, read-only and blocking: the daemon's
# thread waits for a writer that never comes (wait_for_partner), for good
# once the FIFO is unlinked, and the caller sits in D state. Any user who
# may write one dir of the preview repeats it until the 10 threads are gone
# and the mount hangs for everyone; the daemon no longer exits on unmount.
# The volume files are opened O_NONBLOCK and their type checked (volume.c);
# the upper's files need the same.
# Fixed: node_open opens O_NONBLOCK and refuses anything but a file or a
# dir with EIO (the kernel serves FIFOs and devices itself).
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv
py=/usr/bin/python3 # nobody may not run a python of root's (pyenv shims)
[ -x "$py" ] || py=$(command -v python3) || tap_skip_all "no python3"
RACE_SECONDS=${RACE_SECONDS:-30}

preview_of_two
unmount_union "$mnt"
chmod 0755 "$SCRATCH"
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o allow_other -o "upper=$SCRATCH/upper"
tap_ok $? "preview remounted with allow_other" || tap_bail "no mount"
pid=$(union_pids "$mnt")
pid=${pid%% *}
mkdir "$mnt/metadata/race" && chmod 0777 "$mnt/metadata/race"
tap_ok $? "a dir nobody may write"

# Two openers open "a" (blocking, as a reader of a FIFO would); one renamer
# puts a regular file and a FIFO at "a" in turn.
cat >"$SCRATCH/race.py" <<'PY'
import os, signal, sys, time
os.chdir(sys.argv[1])
end = time.time() + float(sys.argv[2])
def interrupted(*_):
    raise InterruptedError()
signal.signal(signal.SIGALRM, interrupted)
children = []
for role in ("rename", "open", "open"):
    child = os.fork()
    if child:
        children.append(child)
        continue
    while time.time() < end:
        try:
            if role == "rename":
                with open("t%d" % os.getpid(), "w"):
                    pass
                os.rename("t%d" % os.getpid(), "a")
                os.mkfifo("f%d" % os.getpid())
                os.rename("f%d" % os.getpid(), "a")
            else:
                signal.setitimer(signal.ITIMER_REAL, 0.05)
                os.close(os.open("a", os.O_RDONLY))
        except OSError:
            pass
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    os._exit(0)
for child in children:
    os.waitpid(child, 0)
PY
chmod 0644 "$SCRATCH/race.py"
setpriv --reuid=65534 --regid=65534 --clear-groups "$py" "$SCRATCH/race.py" \
	"$mnt/metadata/race" "$RACE_SECONDS" >"$SCRATCH/race.log" 2>&1 &
racer=$!

# A daemon thread waiting in a FIFO's open.
stuck_threads() {
	local t n=0
	for t in /proc/"$pid"/task/*; do
		case $(cat "$t/wchan" 2>/dev/null) in
		wait_for_partner | fifo_open | pipe_wait*) n=$((n + 1)) ;;
		esac
	done
	echo "$n"
}
stuck=0
deadline=$((SECONDS + RACE_SECONDS + 5))
while [ "$SECONDS" -lt "$deadline" ] && _pid_alive "$racer"; do
	stuck=$(stuck_threads)
	[ "$stuck" -gt 0 ] && break
	sleep 0.2
done
tap_is "$stuck" 0 "after ${RACE_SECONDS}s of FIFOs renamed over a file being opened, no daemon thread waits in a FIFO's open"
if [ "$stuck" -gt 0 ]; then
	# Its callers wait in D state for the stuck thread: only the daemon's
	# end releases them.
	kill -KILL "$pid" 2>/dev/null
	_force_unmount "$(_canon_mnt "$mnt")"
fi
wait "$racer" 2>/dev/null
if [ "$stuck" -eq 0 ]; then
	timeout 10 stat "$mnt/metadata" >/dev/null
	tap_ok $? "the mount still answers"
	unmount_union "$mnt"
	tap_ok $? "unmounted"
fi
assert_volumes_unchanged
tap_done
