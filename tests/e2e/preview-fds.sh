#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The preview's open fds stay bounded whatever the tree size and the upper's
# filesystem (issue 8, items 8, 9, 13): a daemon without CAP_DAC_READ_SEARCH
# (no file handles) and an upper on overlayfs (no file handles without
# nfs_export), each with a 200-fd limit, serve a walk of thousands of files.
# A full fd table fails no close(); a name whose inode number the upper
# reuses is a new file.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd setpriv prlimit python3

FILES=${PREVIEW_FDS_FILES:-5000}
LIMIT=200
vols=("$DATA_DIR"/v1.150.0-cluster/node0 "$DATA_DIR"/v1.150.0-cluster/node1)
snapshot_volumes "${vols[@]}"
mnt=$(scratch_dir mnt)

# The daemon, limited: setpriv and prlimit exec it, so its pid is the one
# mount_union started (-f).
limited="$SCRATCH/vmunionfs-limited"
cat >"$limited" <<EOF
#!/bin/sh
exec setpriv \${DROP_CAP:+--bounding-set=-dac_read_search --inh-caps=-dac_read_search} \\
	prlimit --nofile=$LIMIT:$LIMIT -- "$VMUNIONFS" "\$@"
EOF
chmod +x "$limited"

# make_and_walk DESC : FILES new files in 50 dirs through the mount, then a
# find and a stat of each, the kernel remembering every inode; fds counted.
make_and_walk() {
	local desc=$1 pid fds found
	pid=$(union_pids "$mnt" | awk '{print $1}')
	"$PYTHON3" - "$mnt/cache/walk" "$FILES" <<'PY'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    d = os.path.join(root, "d%02d" % (i % 50))
    if i < 50:
        os.makedirs(d)
    with open(os.path.join(d, "f%05d" % i), "w") as f:
        f.write("x")
PY
	tap_ok $? "$desc: $FILES files created through the mount"
	found=$(find "$mnt/cache/walk" -type f -exec stat -c %s {} + 2>"$SCRATCH/find.err" | grep -c '^1$')
	tap_is "$found" "$FILES" "$desc: find and stat see every file" ||
		head -n 5 "$SCRATCH/find.err" | tap_diag
	fds=$(ls "/proc/$pid/fd" | wc -l)
	[ "$fds" -lt 40 ]
	tap_ok $? "$desc: the daemon holds $fds fds (bounded, not one per inode)"
}

# --- 1. a daemon without CAP_DAC_READ_SEARCH, upper on the scratch filesystem
DROP_CAP=1 VMUNIONFS=$limited mount_union "$mnt" "${vols[@]}" -- -f -o upper="$SCRATCH/upper"
tap_ok $? "mounted by a daemon without CAP_DAC_READ_SEARCH, $LIMIT fds" || tap_done
pid=$(union_pids "$mnt" | awk '{print $1}')
caps=$(awk '/^CapEff/ {print $2}' "/proc/$pid/status")
[ $((0x$caps & 4)) = 0 ] && grep -q "open files *$LIMIT *$LIMIT" "/proc/$pid/limits"
tap_ok $? "... it really lacks the capability (CapEff $caps) and has $LIMIT fds"
make_and_walk "no CAP_DAC_READ_SEARCH"

unmount_union "$mnt"
tap_ok $? "unmounted"

# --- 2. an upper on overlayfs (no file handles without nfs_export)
ovl="$SCRATCH/ovl"
mkdir -p "$ovl/lower" "$ovl/upper" "$ovl/work" "$ovl/merged"
if mount -t overlay overlay -o "lowerdir=$ovl/lower,upperdir=$ovl/upper,workdir=$ovl/work" \
	"$ovl/merged" 2>"$SCRATCH/ovl.err"; then
	on_exit "umount '$ovl/merged'"
	VMUNIONFS=$limited mount_union "$mnt" "${vols[@]}" -- -f -o upper="$ovl/merged/upper"
	tap_ok $? "mounted with an upper on overlayfs, $LIMIT fds" || tap_done
	make_and_walk "upper on overlayfs"
	rel=$(cd "${vols[0]}" && find data/small -name index.bin | sort | head -n 1)
	cmp -s "$mnt/$rel" "${vols[0]}/$rel"
	tap_ok $? "... a stub reads its volume's bytes"
	unmount_union "$mnt"
	tap_ok $? "unmounted"
else
	tap_skip "mount -t overlay failed: $(head -n 1 "$SCRATCH/ovl.err")" "upper on overlayfs"
fi

# --- 3. a daemon with its capabilities (file handles where the upper has
# them), 200 fds
VMUNIONFS=$limited mount_union "$mnt" "${vols[@]}" -- -f -o upper="$SCRATCH/upper3"
tap_ok $? "mounted with $LIMIT fds" || tap_done
FILES=400 make_and_walk "$LIMIT fds"

# Item 9: with the daemon's fd table full, close() of a file does not fail.
"$PYTHON3" - "$mnt/cache/walk" <<'PY' >"$SCRATCH/flush.out" 2>&1
import errno, os, sys
fds = []
try:
    for d in sorted(os.listdir(sys.argv[1])):
        for f in sorted(os.listdir(os.path.join(sys.argv[1], d))):
            fds.append(os.open(os.path.join(sys.argv[1], d, f), os.O_RDONLY))
except OSError as e:
    if e.errno not in (errno.EMFILE, errno.ENFILE):
        raise
print("opened", len(fds))
try:
    os.close(fds.pop())
except OSError as e:
    sys.exit("close failed: %s" % e)
for fd in fds:
    os.close(fd)
PY
tap_ok $? "with the daemon out of fds, close() through the mount succeeds" ||
	tap_diag "$(cat "$SCRATCH/flush.out")"

# Item 13: the upper (ext4, xfs) gives an unlinked file's inode number to the
# next new one; that one must be served, not ENOENT.
"$PYTHON3" - "$mnt/cache" <<'PY' >"$SCRATCH/reuse.out" 2>&1
import os, sys
d = os.path.join(sys.argv[1], "reuse")
os.mkdir(d)
bad = reused = 0
for i in range(300):
    a, b = os.path.join(d, "a%d" % i), os.path.join(d, "b%d" % i)
    with open(a, "w") as f:
        f.write("a")
    ino = os.stat(a).st_ino
    os.unlink(a)
    with open(b, "w") as f:
        f.write("b")
    try:
        with open(b) as f:
            ok = f.read() == "b"
        st = os.stat(b)
        reused += st.st_ino == ino
    except OSError:
        ok = False
    bad += not ok
    os.unlink(b)
print("bad", bad, "reused", reused)
sys.exit(1 if bad else 0)
PY
tap_ok $? "a new file on a reused inode number is served: $(cat "$SCRATCH/reuse.out")"
unmount_union "$mnt"
tap_ok $? "unmounted"

assert_volumes_unchanged "volume byte-identical after the fd tests"
tap_done
