#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# FUSE passthrough of the preview's upper files (fs.c, "passthrough"): where
# the build has it (libfuse >= 3.17) the kernel reads and writes a file of
# the upper itself, no READ or WRITE reaching the daemon, and the bytes are
# the same either way. An inode whose opens go both ways is refused by the
# kernel with EIO: a stub held open across its copy-up must keep every open
# of it working. -o nopassthrough sends everything through the daemon.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

built=0
"$VMUNIONFS" -V | grep -q "passthrough built" && built=1
tap_diag "$("$VMUNIONFS" -V)"

copy_two_volumes
snapshot_volumes "$vols/node0" "$vols/node1"
mnt=$(scratch_dir mnt)
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -d -o "upper=$SCRATCH/upper"
tap_ok $? "preview mounted with the request trace (-d)" || tap_bail "no mount"
log=$MOUNT_LOG

# requests OP : how many OP requests the daemon has logged so far.
requests() {
	grep -c "opcode: $1 " "$log"
}
# on_passthrough WHAT BEFORE_READS BEFORE_WRITES : no READ and no WRITE
# since, where the build has passthrough (else: some).
on_passthrough() {
	local reads writes
	sleep 0.2 # the trace is written after the reply
	reads=$(($(requests READ) - $2)) writes=$(($(requests WRITE) - $3))
	if [ "$built" = 1 ]; then
		tap_is "$reads $writes" "0 0" "$1: no READ, no WRITE reached the daemon"
	else
		[ "$reads" -gt 0 ] || [ "$writes" -gt 0 ]
		tap_ok $? "$1: read and written through the daemon (no passthrough built)"
	fi
}

head -c 3145728 /dev/urandom >"$SCRATCH/random"
want=$(sha256sum <"$SCRATCH/random")
r0=$(requests READ) w0=$(requests WRITE)
dd if="$SCRATCH/random" of="$mnt/new.bin" bs=64k status=none
tap_ok $? "wrote 3 MiB to a new file"
tap_is "$(sha256sum <"$mnt/new.bin")" "$want" "... read back whole"
tap_is "$(sha256sum <"$SCRATCH/upper/tree/new.bin")" "$want" "... the upper holds it"
on_passthrough "a new file" "$r0" "$w0"

# An open for reading held while another writes: one backing file, opened
# for writing too, serves both.
r0=$(requests READ) w0=$(requests WRITE)
out=$(python3 - "$mnt/new.bin" <<'PY' 2>&1
import os, sys
reader = os.open(sys.argv[1], os.O_RDONLY)
writer = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(writer, b"appended")
os.close(writer)
os.lseek(reader, -8, os.SEEK_END)
print(os.read(reader, 8).decode())
os.close(reader)
PY
)
tap_is "$out" "appended" "a reader held open sees what a writer appends"
on_passthrough "a reader and a writer" "$r0" "$w0"

# mmap of a passed-through file maps its upper file.
out=$(python3 - "$mnt/new.bin" <<'PY' 2>&1
import mmap, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    m[0:4] = b"MMAP"
    m.flush()
    m.close()
with open(sys.argv[1], "rb") as f:
    print(f.read(4).decode())
PY
)
tap_is "$out" "MMAP" "a shared mapping writes the file"
tap_is "$(head -c 4 "$SCRATCH/upper/tree/new.bin")" "MMAP" "... and the upper has it"

# Another name of the file: linked, renamed, the first name unlinked.
ln "$mnt/new.bin" "$mnt/link.bin" && mv "$mnt/link.bin" "$mnt/moved.bin" && rm "$mnt/new.bin"
tap_ok $? "linked, renamed and unlinked"
tap_is "$(tail -c 8 "$mnt/moved.bin")" "appended" "... the other name reads the same bytes"
truncate -s 5 "$mnt/moved.bin"
tap_is "$(cat "$mnt/moved.bin")" "MMAP$(head -c 5 "$SCRATCH/random" | tail -c 1)" \
	"truncated to 5 bytes: the reads end there"
tap_is "$(stat -c %s "$mnt/moved.bin")" 5 "... and stat says 5"

# A volume's file (a stub) held open for reading across its copy-up: the
# kernel must not be given opens of both kinds (EIO).
part=$(cd "$mnt" && find data/small -mindepth 2 -maxdepth 2 -type d -name '*_*' | sort | head -1)
f=$mnt/$part/metaindex.bin
lower_sum=$(sha256sum <"$f")
# Populated first: the stub is then the inode that every later open names.
touch "$mnt/$part/populate" && rm "$mnt/$part/populate"
tap_ok $? "populated the part dir of a stub"
out=$(python3 - "$f" <<'PY' 2>&1
import hashlib, os, sys
path = sys.argv[1]
held = os.open(path, os.O_RDONLY)
before = os.read(held, 1 << 20)
with open(path, "ab") as f:          # the copy-up
    f.write(b"x")
results = []
for mode in ("rb", "r+b", "rb"):     # new opens while the stub's is held
    with open(path, mode) as f:      # (r+b shares no fd with it)
        results.append(len(f.read()))
os.lseek(held, 0, os.SEEK_SET)
results.append(len(os.read(held, 1 << 20)))
os.close(held)
with open(path, "rb") as f:          # and once it is closed
    data = f.read()
results.append(len(data))
print(len(before), *results, hashlib.sha256(data[:-1]).hexdigest())
PY
)
n=$(stat -c %s "$vols/node0/$part/metaindex.bin" 2>/dev/null || stat -c %s "$vols/node1/$part/metaindex.bin")
m=$((n + 1))
tap_is "${out% *}" "$n $m $m $m $m $m" "a stub held open across its copy-up: every open reads it whole" \
	|| tap_diag "$out"
tap_is "${out##* }  -" "$lower_sum" "... the volume's bytes, then the appended one"
r0=$(requests READ) w0=$(requests WRITE)
sleep 0.2 # the held open's RELEASE
cat "$f" >/dev/null && echo y >>"$f"
tap_ok $? "read and appended to once no open is the stub's"
on_passthrough "the copied-up file" "$r0" "$w0"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged

# -o nopassthrough: the same through the daemon.
mount_union "$mnt" "$vols/node0" "$vols/node1" -- -d -o "upper=$SCRATCH/upper,nopassthrough"
tap_ok $? "remounted with -o nopassthrough" || tap_bail "no mount"
log=$MOUNT_LOG
r0=$(requests READ) w0=$(requests WRITE)
dd if="$SCRATCH/random" of="$mnt/other.bin" bs=64k status=none &&
	tap_is "$(sha256sum <"$mnt/other.bin")" "$want" "-o nopassthrough: wrote and read back 3 MiB"
sleep 0.2
[ $(($(requests READ) - r0)) -gt 0 ] && [ $(($(requests WRITE) - w0)) -gt 0 ]
tap_ok $? "... through the daemon"
! grep -q "passthrough off" "$log"
tap_ok $? "... and no 'passthrough off' in the log"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
