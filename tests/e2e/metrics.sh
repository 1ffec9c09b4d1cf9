#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The daemon's log and metrics: -f logs the start and the unmount to stderr,
# -o metrics=127.0.0.1:PORT serves the Prometheus text format (every line
# parses; the counters move with what the test does), SIGUSR1 dumps the
# counters to the log instead of killing the daemon, and a bad metrics
# address is a usage error before any volume is touched.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd curl python3

v=("$DATA_DIR"/v1.79.5/node0 "$DATA_DIR"/v1.79.5/node1)
snapshot_volumes "${v[@]}"
mnt=$(scratch_dir mnt)
upper=$(scratch_dir upper)
port=$(free_port)

# parse_exposition FILE : every line is a comment or `name{labels} value`.
parse_exposition() {
	python3 - "$1" <<'PY'
import re, sys
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.eE+]+|NaN|\+Inf|-Inf)$')
meta = re.compile(r'^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$')
typed, bad = set(), []
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip('\n')
    if line.startswith('#'):
        if not meta.match(line):
            bad.append((n, line))
        elif line.startswith('# TYPE'):
            typed.add(line.split()[2])
        continue
    m = sample.match(line)
    if not m or m.group(1) not in typed:
        bad.append((n, line))
for n, line in bad:
    print(f"line {n} does not parse: {line!r}")
sys.exit(1 if bad or not typed else 0)
PY
}

# value NAME_AND_LABELS FILE : the sample's value (empty when missing).
value() {
	awk -v k="$1" '$1 == k { print $2 }' "$2"
}

# Bad addresses: usage errors, before any volume is opened (a missing volume
# would be exit 2).
"$VMUNIONFS" -o metrics=10.1.2.3:9100 "$SCRATCH/missing" "$mnt" >"$SCRATCH/bad.log" 2>&1
tap_is $? 64 "a non-loopback metrics address is refused as a usage error"
grep -q 'loopback' "$SCRATCH/bad.log"
tap_ok $? "... saying only loopback is served" || tap_diag <"$SCRATCH/bad.log"
"$VMUNIONFS" -o metrics=127.0.0.1:70000 "$SCRATCH/missing" "$mnt" >/dev/null 2>&1
tap_is $? 64 "a port out of range is a usage error"

# nopassthrough: the kernel would read the upper's files itself, uncounted.
mount_union "$mnt" "${v[@]}" -- -f -o "upper=$upper,metrics=127.0.0.1:$port,nopassthrough"
tap_ok $? "mounted with metrics on 127.0.0.1:$port" || tap_done
log=$MOUNT_LOG
pid=$(union_pids "$mnt")
wait_for 30 grep -q 'mounting 2 volume(s)' "$log"
tap_ok $? "-f logs the start: volumes, generation, files, upper" || _log_tail "$log"
grep -q "upper $upper" "$log" && grep -qE 'generation A.*[0-9]+ files' "$log"
tap_ok $? "... with the upper, the generation and the file count" || _log_tail "$log"

# Some traffic: lookups (of names not listed yet: a listing carries its
# entries, READDIRPLUS), listings, a failed rmdir, reads of a volume file,
# a copy-up.
stat "$mnt/flock.lock" "$mnt/no-such-name" >/dev/null 2>&1
ls -R "$mnt" >/dev/null
rmdir "$mnt/data" 2>/dev/null
file=$(cd "$mnt" && find data -type f -size +0 | head -n 1)
size=$(stat -c %s "$mnt/$file")
cat "$mnt/$file" >/dev/null
echo x >>"$mnt/$file"

curl -fsS --max-time 10 "http://127.0.0.1:$port/metrics" >"$SCRATCH/m1" 2>"$SCRATCH/curl.err"
tap_ok $? "GET /metrics answers" || tap_diag <"$SCRATCH/curl.err"
parse_exposition "$SCRATCH/m1" | tap_diag
tap_ok "${PIPESTATUS[0]}" "every line is Prometheus text format"
lookups=$(value 'vmunionfs_ops_total{op="lookup"}' "$SCRATCH/m1")
[ "${lookups:-0}" -gt 0 ]
tap_ok $? "lookups are counted ($lookups)"
listings=$(value 'vmunionfs_ops_total{op="readdirplus"}' "$SCRATCH/m1")
[ "${listings:-0}" -gt 0 ]
tap_ok $? "listings are counted ($listings READDIRPLUS)"
notempty=$(value 'vmunionfs_errors_total{op="rmdir",errno="ENOTEMPTY"}' "$SCRATCH/m1")
tap_is "$notempty" 1 "the failed rmdir is counted by operation and errno"
read_volume=$(value 'vmunionfs_read_bytes_total{source="volume"}' "$SCRATCH/m1")
[ "${read_volume:-0}" -ge "$size" ]
tap_ok $? "bytes read from the volumes ($read_volume >= $size)"
copy_ups=$(value vmunionfs_copy_ups_total "$SCRATCH/m1")
copy_bytes=$(value vmunionfs_copy_up_bytes_total "$SCRATCH/m1")
tap_is "$copy_ups/$copy_bytes" "1/$size" "the copy-up and its bytes are counted"
free=$(value vmunionfs_upper_free_bytes "$SCRATCH/m1")
[ "${free:-0}" -gt 0 ]
tap_ok $? "upper free space is reported ($free)"
tap_is "$(value vmunionfs_open_files "$SCRATCH/m1")" 0 "no file is open"
cat "$mnt/$file" >/dev/null
curl -fsS --max-time 10 "http://127.0.0.1:$port/metrics" >"$SCRATCH/m2"
upper_read=$(value 'vmunionfs_read_bytes_total{source="upper"}' "$SCRATCH/m2")
tap_is "$upper_read" $((size + 2)) "a copied-up file is read from the upper"
tap_is "$(value 'vmunionfs_read_bytes_total{source="volume"}' "$SCRATCH/m2")" "$read_volume" "... not from the volume"
curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$port/other" >"$SCRATCH/code"
tap_is "$(cat "$SCRATCH/code")" 404 "other paths are 404"

kill -USR1 $pid
wait_for 30 grep -q 'counters: ops' "$log"
tap_ok $? "SIGUSR1 dumps the counters to the log" || _log_tail "$log"
sleep 0.2
kill -0 $pid 2>/dev/null && mountpoint -q "$mnt"
tap_ok $? "... and the daemon keeps serving"

unmount_union "$mnt"
tap_ok $? "unmounted cleanly"
grep -q "unmounted $mnt" "$log"
tap_ok $? "the unmount is logged" || _log_tail "$log"
! curl -fsS --max-time 2 "http://127.0.0.1:$port/metrics" >/dev/null 2>&1
tap_ok $? "the metrics port is closed after the unmount"

# A read-only mount has no upper: no free-space gauge (a 0 would read as a
# full disk to an alert), nor a field in the SIGUSR1 dump.
mount_union "$mnt" "${v[@]}" -- -f -o "metrics=127.0.0.1:$port"
tap_ok $? "read-only mount with metrics" || tap_done
log=$MOUNT_LOG
curl -fsS --max-time 10 "http://127.0.0.1:$port/metrics" >"$SCRATCH/m3"
tap_ok $? "GET /metrics answers"
grep -q '^vmunionfs_open_files ' "$SCRATCH/m3" && ! grep -q upper_free "$SCRATCH/m3"
tap_ok $? "... with no vmunionfs_upper_free_bytes" || tap_diag <"$SCRATCH/m3"
kill -USR1 "$(union_pids "$mnt")"
wait_for 30 grep -q 'counters: ops' "$log" && ! grep -q 'upper free' "$log"
tap_ok $? "SIGUSR1's dump has no upper free space" || _log_tail "$log"
unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
