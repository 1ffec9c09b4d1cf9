#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# FUSE passthrough (passthrough.h): where the build has it (libfuse >= 3.17)
# the kernel reads and writes a file of the preview's upper, and reads a
# volume file of the read-only mount, itself: no READ or WRITE reaches the
# daemon, and the bytes are the same either way. An inode whose opens go
# both ways is refused by the kernel with EIO: a stub held open across its
# copy-up must keep every open of it working. A kernel that refuses a
# backing file (volumes on a passthrough mount: too deep a stack) turns it
# off with a log line, and reads go through the daemon. -o nopassthrough
# sends everything through the daemon.
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
if [ "$built" = 1 ]; then
	grep -q "passthrough: on" "$log"
else
	grep -q "passthrough: not built" "$log"
fi
tap_ok $? "the log says whether passthrough is on" || _log_tail "$log"

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

# The read-only mount: every volume file read whole, the same bytes as
# through the daemon.
ro=$(scratch_dir ro)
mount_union "$ro" "$vols/node0" "$vols/node1" -- -o nopassthrough
tap_ok $? "read-only mount with -o nopassthrough" || tap_bail "no mount"
want_tree=$(tree_checksum "$ro")
unmount_union "$ro"
mount_union "$ro" "$vols/node0" "$vols/node1" -- -d
tap_ok $? "read-only mount with the request trace" || tap_bail "no mount"
log=$MOUNT_LOG
big=$(cd "$ro" && find data -name '*.bin' -size +8k | sort | head -1)
r0=$(requests READ) w0=$(requests WRITE)
sum1=$(sha256sum <"$ro/$big") && sum2=$(sha256sum <"$ro/$big")
tap_is "$sum2" "$sum1" "a volume file read twice: the same bytes"
on_passthrough "a volume file of the read-only mount" "$r0" "$w0"
tap_is "$(tree_checksum "$ro")" "$want_tree" "every file reads as through the daemon"
out=$(python3 - "$ro/$big" <<'PY' 2>&1
import mmap, sys
with open(sys.argv[1], "rb") as a, open(sys.argv[1], "rb") as b:
    m = mmap.mmap(a.fileno(), 0, prot=mmap.PROT_READ)
    print(m[:] == b.read())
PY
)
tap_is "$out" True "a mapping and a read of two opens agree"

# Volumes below a passthrough mount are too deep a stack for the kernel to
# pass through again: the second mount says so once and reads through the
# daemon, the same bytes.
stacked=$(scratch_dir stacked)
mount_union "$stacked" "$ro" -- -f
tap_ok $? "a read-only mount of the first one" || tap_bail "no mount"
tap_is "$(tree_checksum "$stacked")" "$want_tree" "... every file reads the same"
if [ "$built" = 1 ]; then
	tap_is "$(grep -c "passthrough off" "$MOUNT_LOG")" 1 "... and it says once that passthrough is off" \
		|| _log_tail "$MOUNT_LOG"
else
	tap_skip "no passthrough built" "... and it says once that passthrough is off"
fi
unmount_union "$stacked"
tap_ok $? "unmounted"
unmount_union "$ro"
tap_ok $? "unmounted"
assert_volumes_unchanged

# The volumes' permissions hold for the kernel's own reads (allow_other);
# a volume file that shrank before its first open is EIO, one that shrinks
# while open reads short: never zeros.
chmod -R go+rX "$vols" && chmod 0755 "$SCRATCH"
files=$(cd "$vols/node0" && find data -name '*.bin' -size +2k | sort | head -3)
mapfile -t f <<<"$files"
[ "${#f[@]}" = 3 ]
tap_ok $? "three part files of node0" || tap_done
chmod 0600 "$vols/node0/${f[0]}"
mount_union "$ro" "$vols/node0" "$vols/node1" -- -f -o allow_other
tap_ok $? "read-only mount with allow_other" || tap_bail "no mount"
as_nobody cat "$ro/${f[0]}" >/dev/null 2>"$SCRATCH/err"
grep -q "Permission denied" "$SCRATCH/err"
tap_ok $? "another user cannot read a 0600 volume file" || tap_diag "$(cat "$SCRATCH/err")"
as_nobody cat "$ro/${f[1]}" | cmp -s - "$vols/node0/${f[1]}"
tap_ok $? "... and reads a 0644 one whole"
truncate -s 1 "$vols/node0/${f[2]}"
cat "$ro/${f[2]}" >/dev/null 2>"$SCRATCH/err"
grep -q "Input/output error" "$SCRATCH/err" && grep -qF "${f[2]}" "$MOUNT_LOG"
tap_ok $? "a volume file that shrank before its first open: EIO, and the log names it" \
	|| tap_diag "$(cat "$SCRATCH/err")"
size=$(stat -c %s "$ro/${f[1]}")
od -An -tx1 <"$vols/node0/${f[1]}" | tr -d ' \n' >"$SCRATCH/vol-hex"
exec 7<"$ro/${f[1]}"
truncate -s 2 "$vols/node0/${f[1]}"
got=$(od -An -tx1 <&7 | tr -d ' \n')
exec 7<&-
if [ "$built" = 1 ]; then
	tap_is "$got" "$(head -c 4 "$SCRATCH/vol-hex")" \
		"one that shrinks while open reads short, as on the volume (no zeros)"
else
	tap_is "$got" "$(cat "$SCRATCH/vol-hex")" \
		"one that shrinks while open: the kernel's cache of the read before (no zeros)"
fi
tap_diag "the mount shows $size bytes; read $((${#got} / 2))"
unmount_union "$ro"
tap_ok $? "unmounted"

# A disk error of a volume file reaches the reader as EIO (tests/fault/faultfs
# fails the reads of one file).
faultfs=$top_builddir/tests/fault/faultfs
[ -x "$faultfs" ] || tap_bail "$faultfs not built"
copy_volume "$DATA_DIR/v1.79.5/node1" "$SCRATCH/src1"
eio=$(cd "$SCRATCH/src1" && find data -name 'values.bin' -size +2k | sort | head -1)
mkdir -p "$SCRATCH/ff"
FAULTFS_EIO=$eio "$faultfs" "$SCRATCH/src1" "$SCRATCH/ff" -f >"$SCRATCH/ff.log" 2>&1 </dev/null &
ff_pid=$!
on_exit "fusermount3 -uz '$SCRATCH/ff' 2>/dev/null; kill $ff_pid 2>/dev/null; wait $ff_pid 2>/dev/null"
wait_for 10 mountpoint -q "$SCRATCH/ff"
tap_ok $? "faultfs over a copy of node1 (EIO: $eio)" || tap_done
mount_union "$ro" "$vols/node0" "$SCRATCH/ff"
tap_ok $? "read-only mount over it" || tap_bail "no mount"
! cat "$ro/$eio" >/dev/null 2>"$SCRATCH/err" && grep -q "Input/output error" "$SCRATCH/err"
tap_ok $? "a volume file the disk fails to read: EIO" || tap_diag "$(cat "$SCRATCH/err")"
other=$(cd "$SCRATCH/src1" && find data -name 'index.bin' | sort | head -1)
cmp -s "$ro/$other" "$SCRATCH/src1/$other"
tap_ok $? "... the other files read right"
unmount_union "$ro"
tap_ok $? "unmounted"
tap_done
