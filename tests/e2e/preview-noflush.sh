#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The preview asks the kernel for no FLUSH at the close of a file opened for
# reading (FOPEN_NOFLUSH): vmstorage opens and closes every part's files at
# startup, and each FLUSH was a round trip through the daemon for nothing
# (issue 11, item 5). A file opened for writing still gets its FLUSH: its
# close reports delayed write errors. The request trace (-d) counts them.
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
assert_volumes_unchanged
tap_done
