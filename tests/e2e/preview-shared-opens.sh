#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The preview's opens of a file for reading share one fd of the daemon (per
# file and open flags): many opens cost it one fd, each open still reads the
# right bytes after the others close, a copy-up switches every open sharing
# the fd to the new bytes (never zeros), an unlink leaves the remaining opens
# readable, and the plan's bytes of a synthesized file, shared while its dir
# is lazy, are never shared with an open made after the file is rewritten.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

vols=("$DATA_DIR"/v1.150.0-cluster/node0 "$DATA_DIR"/v1.150.0-cluster/node1)
snapshot_volumes "${vols[@]}"
mnt=$(scratch_dir mnt)
mount_union "$mnt" "${vols[@]}" -- -f -o "upper=$SCRATCH/upper"
tap_ok $? "preview mounted" || tap_bail "no mount"
pid=$(union_pids "$mnt")
pid=${pid%% *}
files=$(cd "${vols[0]}" && find data -name '*.bin' -size +8k | sort | head -n 3)
shared=$(sed -n 1p <<<"$files")
copied=$(sed -n 2p <<<"$files")
unlinked=$(sed -n 3p <<<"$files")
synth=$(cd "$mnt" && find data -name parts.json | sort | head -n 1)
[ -n "$unlinked" ] && [ -n "$synth" ]
tap_ok $? "found three volume files and a parts.json" || tap_bail "no files"

# run_py DESC SCRIPT ARGS... : runs the python SCRIPT, ok when it exits 0.
run_py() {
	local desc=$1 script=$2
	shift 2
	"$PYTHON3" -c "$script" "$@" >"$SCRATCH/out" 2>&1
	tap_ok $? "$desc" || tap_diag "$(cat "$SCRATCH/out")"
}

run_py "400 opens of a file, with two sets of flags, cost the daemon 2 fds at most; \
each reads the volume's bytes, also once the others are closed" '
import os, sys
name, volume, pid, rel = sys.argv[1:]
want = open(volume, "rb").read()
# Only the fds on this file: libfuse starts worker threads (each with its
# own /dev/fuse fd) as requests come, more of them under load.
def count():
    d = "/proc/%s/fd" % pid
    n = 0
    for f in os.listdir(d):
        try:
            n += os.readlink(os.path.join(d, f)).endswith("/" + rel)
        except FileNotFoundError:
            pass  # closed since the listing
    return n
before = count()
fds = [os.open(name, os.O_RDONLY | (os.O_NONBLOCK if i % 2 else 0)) for i in range(400)]
grown = count() - before
if grown > 2:
    sys.exit("the daemon holds %d more fds" % grown)
for fd in fds[:-1]:
    if os.pread(fd, len(want) + 1, 0) != want:
        sys.exit("other bytes")
    os.close(fd)
if os.pread(fds[-1], len(want) + 1, 0) != want:
    sys.exit("other bytes once the others are closed")
os.close(fds[-1])
' "$mnt/$shared" "${vols[0]}/$shared" "$pid" "$shared"

run_py "a copy-up switches every open sharing the fd: the new bytes, the rest as it was" '
import os, sys
name, volume = sys.argv[1:]
want = bytearray(open(volume, "rb").read())
readers = [os.open(name, os.O_RDONLY) for _ in range(3)]
os.pread(readers[0], 4096, 0)
w = os.open(name, os.O_RDWR)
os.pwrite(w, b"NEWBYTES", 5000)
os.close(w)
want[5000:5008] = b"NEWBYTES"
os.close(readers.pop(0))
readers.append(os.open(name, os.O_RDONLY))
for fd in readers:
    got = os.pread(fd, len(want) + 1, 0)
    if got != want:
        sys.exit("a reader got other bytes (zeros: %s)" % (got[5000:5008] == bytes(8)))
    os.close(fd)
' "$mnt/$copied" "${vols[0]}/$copied"

run_py "an unlinked file stays readable through an open that shared its fd" '
import os, sys
name, volume = sys.argv[1:]
want = open(volume, "rb").read()
first, second = os.open(name, os.O_RDONLY), os.open(name, os.O_RDONLY)
os.unlink(name)
os.close(first)
if os.fstat(second).st_size != len(want) or os.pread(second, len(want) + 1, 0) != want:
    sys.exit("other bytes or size")
' "$mnt/$unlinked" "${vols[0]}/$unlinked"

run_py "an open after a synthesized file is rewritten reads the new bytes, \
not the plan bytes an older open holds" '
import os, sys
name = sys.argv[1]
old = [os.open(name, os.O_RDONLY) for _ in range(2)]
plan = os.pread(old[0], 1 << 20, 0)
with open(name, "wb") as f:
    f.write(b"[]\n")
fd = os.open(name, os.O_RDONLY)
got = os.pread(fd, 1 << 20, 0)
if got != b"[]\n":
    sys.exit("a new open read %r (the plan had %d bytes)" % (got[:40], len(plan)))
' "$mnt/$synth"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
