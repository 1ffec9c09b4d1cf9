#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The daemon killed (-9) in the middle of writes, three times: after each
# remount every write that was fsynced before the kill is there with its
# bytes (new files, atomic renames, appends to a copied-up volume file), the
# volumes' own files still read right, and the volumes are unchanged.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

vols=("$DATA_DIR"/v1.150.0-cluster/node0 "$DATA_DIR"/v1.150.0-cluster/node1)
snapshot_volumes "${vols[@]}"
mnt=$(scratch_dir mnt)
upper="$SCRATCH/upper"
acked="$SCRATCH/acked"
: >"$acked"
victim=$(cd "${vols[0]}" && find data/small -name index.bin | sort | head -n 1)

# The writer: loops until the mount fails under it; after each fsync it
# records (and fsyncs, outside the mount) what must survive.
cat >"$SCRATCH/writer.py" <<'PY'
import hashlib, os, sys
mnt, acked_path, victim, round_ = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
acked = os.open(acked_path, os.O_WRONLY | os.O_APPEND)
def ack(line):
    os.write(acked, (line + "\n").encode())
    os.fsync(acked)
def body(name, size=65536):
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]
def write(fd, data):
    # A short write acknowledged would shift every later append: stop.
    if os.write(fd, data) != len(data):
        raise OSError("short write")
def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)
d = os.path.join(mnt, "writes")
try:
    os.makedirs(d, exist_ok=True)
    fsync_dir(mnt)
    i = 0
    while True:
        name = "r%s-f%d" % (round_, i)
        path = os.path.join(d, name)
        fd = os.open(path + ".tmp", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        write(fd, body(name))
        os.fsync(fd)
        os.close(fd)
        os.rename(path + ".tmp", path)
        fsync_dir(d)
        ack("file %s %s" % (name, hashlib.sha256(body(name)).hexdigest()))
        # Appending to a volume file copies it up first.
        fd = os.open(os.path.join(mnt, victim), os.O_WRONLY | os.O_APPEND)
        write(fd, body(name, 100))
        os.fsync(fd)
        os.close(fd)
        ack("append %s" % name)
        i += 1
except OSError as e:
    print("writer stopped: %s" % e)
PY

for round in 1 2 3; do
	mount_union "$mnt" "${vols[@]}" -- -o upper="$upper"
	tap_ok $? "round $round: mounted with the upper" || tap_done
	python3 "$SCRATCH/writer.py" "$mnt" "$acked" "$victim" "$round" >"$SCRATCH/writer.$round.log" 2>&1 &
	writer=$!
	on_exit "kill $writer 2>/dev/null"
	# Kill once this round's writes are under way (a few acknowledged),
	# at a moment that differs per round.
	before=$(wc -l <"$acked")
	wait_for 30 eval "[ \$(wc -l <'$acked') -ge $((before + 2 * round)) ]"
	tap_ok $? "round $round: writes acknowledged through the mount" || tail -n 5 "$SCRATCH/writer.$round.log" | tap_diag
	sleep "0.0$((RANDOM % 10))"
	pids=$(union_pids "$mnt")
	[ -n "$pids" ] && kill -KILL $pids
	tap_ok $? "round $round: kill -9 the daemon mid-write"
	wait_for 30 eval "! _pid_alive ${pids%% *}" # it holds the upper's lock until gone
	wait_for 20 eval "! _pid_alive $writer"
	tap_ok $? "round $round: the writer stops with an error, it does not hang" ||
		kill -KILL "$writer" 2>/dev/null
	wait "$writer" 2>/dev/null
	tap_diag "round $round: $(cat "$SCRATCH/writer.$round.log")"
	fusermount3 -uz "$mnt" 2>/dev/null
	wait_for 10 eval "! mountpoint -q '$mnt'"
done

mount_union "$mnt" "${vols[@]}" -- -o upper="$upper"
tap_ok $? "remounted after three kills" || tap_done
files=$(grep -c '^file ' "$acked")
appends=$(grep -c '^append ' "$acked")
[ "$files" -gt 0 ] && [ "$appends" -gt 0 ]
tap_ok $? "writes were acknowledged before the kills ($files files, $appends appends)"
bad=0
while read -r kind name sum; do
	[ "$kind" = file ] || continue
	[ "$(sha256sum <"$mnt/writes/$name" 2>/dev/null | cut -d' ' -f1)" = "$sum" ] ||
		{ bad=$((bad + 1)); tap_diag "lost or wrong: $name"; }
done <"$acked"
tap_is "$bad" 0 "every fsynced file survived with its bytes"
python3 - "$mnt/$victim" "${vols[0]}/$victim" "$acked" <<'PY'
import hashlib, sys
got = open(sys.argv[1], "rb").read()
orig = open(sys.argv[2], "rb").read()
acked = [l.split()[:2] for l in open(sys.argv[3]) if len(l.split()) >= 2]
names = [n for kind, n in acked if kind == "append"]
def body(name, size):
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]
def whose(chunk):
    """What a 100-byte chunk of the file is: some write's append, or not."""
    if not chunk:
        return "end of file"
    for kind, n in acked:
        if kind == "file" and chunk == body(n, 100)[:len(chunk)]:
            return "the append of %s (%d bytes)" % (n, len(chunk))
    if chunk.count(0) == len(chunk):
        return "%d zero bytes" % len(chunk)
    return "%d unknown bytes %s" % (len(chunk), chunk[:16].hex())
def diverges(pos, expected, why):
    print("victim diverges at offset %d (%s): expected %s, found %s" %
          (pos, why, expected, whose(got[pos:pos + 100])))
    return False
# Per round (kill), the acknowledged appends in order; then the append of
# the round's last file may have landed without its acknowledgement.
ok, pos = got.startswith(orig), len(orig)
if not ok:
    at = next((i for i in range(min(len(got), len(orig))) if got[i] != orig[i]),
              min(len(got), len(orig)))
    diverges(at, "the volume's own bytes", "the original part")
for r in sorted({n.split("-")[0] for _, n in acked}, key=lambda x: int(x[1:])):
    files = [n for kind, n in acked if kind == "file" and n.startswith(r + "-")]
    for n in [n for n in names if n.startswith(r + "-")]:
        if ok and got[pos:pos + 100] != body(n, 100):
            ok = diverges(pos, "the acknowledged append of " + n, "round " + r[1:])
        pos += 100
    if files and files[-1] not in names and got[pos:pos + 100] == body(files[-1], 100):
        pos += 100
if ok and pos != len(got):
    ok = diverges(pos, "end of file", "after the last round")
print("victim: %d bytes, %d acknowledged appends: %s" % (len(got), len(names), "ok" if ok else "LOST"))
sys.exit(0 if ok else 1)
PY
tap_ok $? "the copied-up volume file holds its bytes and every fsynced append" ||
	tap_diag "acknowledged: $(tr '\n' ' ' <"$acked")"
bad=0
while IFS= read -r f; do
	[ "$f" = "$victim" ] && continue
	src="${vols[0]}/$f"
	[ -f "$src" ] || src="${vols[1]}/$f"
	cmp -s "$mnt/$f" "$src" || { bad=$((bad + 1)); tap_diag "differs: $f"; }
done < <(cd "$mnt" && find data -type f -path '*/18EB*/*' | sort)
tap_is "$bad" 0 "every other volume file still reads right"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged "volume byte-identical after the kills"
tap_done
