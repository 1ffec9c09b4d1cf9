#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Requests the kernel need not send, counted in the request trace (-d)
# (issue 11, item 5: vmstorage lists every partition and opens and closes
# every part's files at startup, each request a round trip):
# - no FLUSH at the close of a file opened for reading (FOPEN_NOFLUSH); a
#   file opened for writing still gets its FLUSH: its close reports delayed
#   write errors;
# - no LOOKUP after a listing: every READDIR is a READDIRPLUS, whose entries
#   carry their attributes, on the preview and the read-only mount, also in
#   dirs too large for one reply; the walk shows what it showed before.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

# FOPEN_NOFLUSH is honoured from Linux 5.16 on.
read -r major minor < <(uname -r | awk -F. '{print $1, $2}')
if [ "$major" -lt 5 ] || { [ "$major" -eq 5 ] && [ "$minor" -lt 16 ]; }; then
	tap_skip_all "Linux $(uname -r) ignores FOPEN_NOFLUSH (5.16 and later)"
fi

vols=("$DATA_DIR"/v1.79.5/node0 "$DATA_DIR"/v1.79.5/node1)
snapshot_volumes "${vols[@]}"
mnt=$(scratch_dir mnt)
mount_union "$mnt" "${vols[@]}" -- -d -o "upper=$SCRATCH/upper"
tap_ok $? "preview mounted with the request trace" || tap_bail "no mount"
trace=$MOUNT_LOG

flushes() {
	grep -c 'opcode: FLUSH' "$trace"
}

part=$(cd "$mnt" && find data/small -name values.bin | sort | head -n 1)
lower=$(for v in "${vols[@]}"; do [ -f "$v/$part" ] && echo "$v/$part"; done | head -n 1)
before=$(flushes)
# Python closes with close(2): no extra descriptor, no extra FLUSH from a dup.
out=$("$PYTHON3" - "$mnt/$part" "$lower" <<'PY'
import os, sys
data = []
for _ in range(3):
    fd = os.open(sys.argv[1], os.O_RDONLY)
    data.append(os.read(fd, 1 << 24))
    os.close(fd)
ok = all(d == open(sys.argv[2], "rb").read() for d in data)
print("same" if ok else "different")
PY
)
tap_is "$out" same "a volume file read three times through the preview: its bytes"
tap_is "$(($(flushes) - before))" 0 "closing it, opened for reading, sent no FLUSH"

before=$(flushes)
"$PYTHON3" - "$mnt/cache/written" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"x" * 100)
os.close(fd)
fd = os.open(sys.argv[1], os.O_RDWR)
os.close(fd)
PY
tap_is "$(($(flushes) - before))" 2 "closing a file opened for writing sent its FLUSH, twice"
tap_is "$(stat -c %s "$mnt/cache/written")" 100 "the written file holds its bytes"

before=$(flushes)
cat "$mnt/cache/written" >/dev/null
tap_is "$(($(flushes) - before))" 0 "an upper file opened for reading: no FLUSH either"

unmount_union "$mnt"
tap_ok $? "unmounted"

lookups() {
	grep -ac 'opcode: LOOKUP' "$MOUNT_LOG"
}

# Partitions of 200 parts (1000 files) each: more than one reply's worth.
big="$SCRATCH/big"
"$PYTHON3" "$top_srcdir/tests/bench/read_gen.py" many "$big" --volumes 2 --parts 400 >/dev/null
tap_ok $? "wrote two volumes of 400 parts" || tap_bail "read_gen.py failed"
snapshot_volumes "$big/v0" "$big/v1"
for kind in preview read-only; do
	if [ "$kind" = preview ]; then
		mount_union "$mnt" "$big/v0" "$big/v1" -- -d -o "upper=$SCRATCH/upper-big"
	else
		mount_union "$mnt" "$big/v0" "$big/v1" -- -d
	fi
	tap_ok $? "$kind mounted with the request trace" || tap_bail "no mount"
	before=$(lookups)
	# Every entry's type, mode, owner; a volume file's size and mtime too
	# (synthesized files are made at mount time, dirs differ in size).
	(cd "$mnt" && find . \( -name '*.bin' -o -name metadata.json \) -printf '%p %s %T@\n' \
		-o -printf '%p %y %m %U\n' | sort) >"$SCRATCH/walk.$kind"
	tap_is "$(($(lookups) - before))" 0 "a find and stat of every file of the $kind: no LOOKUP"
	tap_is "$(wc -l <"$SCRATCH/walk.$kind")" 4843 "the $kind shows every file"
	before=$(lookups)
	cat "$mnt"/data/small/2024_03/*/metadata.json >/dev/null
	tap_is "$(($(lookups) - before))" 0 "opening the files listed: no LOOKUP either"
	unmount_union "$mnt"
	tap_ok $? "unmounted"
done
diff "$SCRATCH/walk.preview" "$SCRATCH/walk.read-only" >&2
tap_ok $? "the preview's walk shows what the read-only mount's shows"
assert_volumes_unchanged
tap_done
