#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Soak: victoria-metrics ingests (a bounded rate over loopback) and merges
# on the preview of the four v1.79.5 volumes while two readers walk and read
# the mount and queries run, for SOAK_SECONDS (default 300). Then: no
# error anywhere, the daemon's RSS and open fds flat (sampled from /proc
# every 2 s), every ingested sample served, every old series exact, the
# volumes byte-identical. Run by `make soak`; .ci/run runs a short one.
#
# Knobs: SOAK_SECONDS (300), SOAK_RATE samples/s (2000), SOAK_READERS (2).
set -u
SOAK_SECONDS=${SOAK_SECONDS:-300}
SOAK_RATE=${SOAK_RATE:-2000}
SOAK_READERS=${SOAK_READERS:-2}
export E2E_TIMEOUT=${E2E_TIMEOUT:-$((SOAK_SECONDS + 900))}
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_vm

load="$top_srcdir/tests/soak/load.py"
set_dir="$DATA_DIR/v1.79.5"
vols=("$set_dir"/node0 "$set_dir"/node1 "$set_dir"/node2 "$set_dir"/node3)
snapshot_volumes "${vols[@]}"
mnt=$(scratch_dir mnt)
port=$(free_port)
mount_union "$mnt" "${vols[@]}" -- -o upper="$SCRATCH/upper"
tap_ok $? "mounted with an upper" || tap_done
daemon=$(union_pids "$mnt")
daemon=${daemon%% *}
[ -n "$daemon" ]
tap_ok $? "the daemon's pid: $daemon" || tap_done
vm_start "$mnt" "$port"
tap_ok $? "victoria-metrics on the preview" || tap_done

# sample_daemon : "seconds rss_kib fds" every 2 s until $SCRATCH/stop.
sample_daemon() {
	local t0=$SECONDS i rss fds
	for ((i = 0; i < SOAK_SECONDS / 2 + 300; i++)); do
		[ -e "$SCRATCH/stop" ] && break
		rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$daemon/status" 2>/dev/null) || break
		fds=$(find "/proc/$daemon/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
		echo "$((SECONDS - t0)) $rss $fds"
		sleep 2
	done
}
sample_daemon >"$SCRATCH/samples" 2>/dev/null &
sampler=$!
on_exit "touch '$SCRATCH/stop'; kill $sampler 2>/dev/null"

python3 "$load" ingest "$VM_URL" "$SOAK_SECONDS" "$SOAK_RATE" >"$SCRATCH/ingest.out" 2>&1 &
pids=($!)
for ((r = 0; r < SOAK_READERS; r++)); do
	python3 "$load" read "$mnt" "$SOAK_SECONDS" >"$SCRATCH/read.$r.out" 2>&1 &
	pids+=($!)
done
python3 "$load" query "$VM_URL" "$SOAK_SECONDS" >"$SCRATCH/query.out" 2>&1 &
pids+=($!)
on_exit "kill ${pids[*]} 2>/dev/null"
tap_diag "soak: $SOAK_SECONDS s, $SOAK_RATE samples/s, $SOAK_READERS readers"
deadline=$((SECONDS + SOAK_SECONDS + 180))
for p in "${pids[@]}"; do
	while _pid_alive "$p" && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 1
	done
	_pid_alive "$p" && kill "$p"
	wait "$p"
done
touch "$SCRATCH/stop"
wait "$sampler"

# field FILE KEY : a value of the JSON line a load process printed.
field() {
	python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2" 2>/dev/null
}
tap_diag "ingest: $(cat "$SCRATCH/ingest.out")"
tap_is "$(field "$SCRATCH/ingest.out" errors)" 0 "ingest: no error"
sent=$(field "$SCRATCH/ingest.out" sent)
for ((r = 0; r < SOAK_READERS; r++)); do
	tap_diag "reader $r: $(cat "$SCRATCH/read.$r.out")"
	tap_is "$(field "$SCRATCH/read.$r.out" errors)" 0 "reader $r: no error"
	[ "$(field "$SCRATCH/read.$r.out" files)" -gt 0 ] 2>/dev/null
	tap_ok $? "reader $r: read files"
done
tap_diag "query: $(cat "$SCRATCH/query.out")"
tap_is "$(field "$SCRATCH/query.out" errors)" 0 "queries: no error"

vm_flush
start=$(field "$SCRATCH/ingest.out" start)
end=$(field "$SCRATCH/ingest.out" end)
served=$(http_get "$VM_URL/api/v1/export?match%5B%5D=vmunionfs_soak&start=$((start - 1))&end=$((end + 1))" 120 |
	python3 -c 'import json,sys; print(sum(len(json.loads(l)["values"]) for l in sys.stdin if l.strip()))')
[ -n "$sent" ] && [ "$sent" -gt 0 ]
tap_ok $? "samples were ingested ($sent)"
tap_is "$served" "$sent" "every ingested sample is served"
vm_compare "$VM_URL" "$set_dir/manifest.json" --extra-series-ok >"$SCRATCH/compare.out" 2>&1
tap_ok $? "every series of the four volumes: count and sum exact" ||
	tap_diag "$(cat "$SCRATCH/compare.out")"
parts=$(find "$mnt/data/small" -mindepth 2 -maxdepth 2 -type d ! -name txn ! -name tmp | wc -l)
tap_diag "data parts on the preview at the end: $parts"

# Flat: after a warm-up (the first fifth), the second half of the samples
# may not exceed the first half by more than a quarter plus a margin.
flat=$(python3 - "$SCRATCH/samples" <<'PY'
import sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
if len(rows) < 10:
    print("too few samples: %d" % len(rows))
    sys.exit(1)
rows = rows[len(rows) // 5:]
a, b = rows[:len(rows) // 2], rows[len(rows) // 2:]
rss_a, rss_b = max(r[1] for r in a), max(r[1] for r in b)
fd_a, fd_b = max(r[2] for r in a), max(r[2] for r in b)
ok = rss_b <= rss_a * 1.25 + 16384 and fd_b <= fd_a * 1.5 + 64
print("daemon RSS max %d -> %d KiB, open fds max %d -> %d (%d samples): %s"
      % (rss_a, rss_b, fd_a, fd_b, len(rows), "flat" if ok else "GROWING"))
sys.exit(0 if ok else 1)
PY
)
rc=$?
tap_diag "$flat"
tap_ok $rc "the daemon's RSS and open fds stay flat" || tail -n 20 "$SCRATCH/samples" | tap_diag
tap_diag "$(python3 - "$SCRATCH/samples" <<'PY'
import sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
print("samples (s rss_kib fds): first %s, last %s" % (rows[:1], rows[-1:]))
PY
)"
vm_stop
tap_ok $? "victoria-metrics stops cleanly"
unmount_union "$mnt"
tap_ok $? "unmounted cleanly"
assert_volumes_unchanged "volume byte-identical after the soak"
tap_done
