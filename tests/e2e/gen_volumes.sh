#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2034  # E2E_TIMEOUT is read by lib.sh; success and created_outdir by an on_exit string
# tests/e2e/gen_volumes.sh - write fresh vmstorage volumes with the real
# victoria-metrics, plus a manifest.json in the format of tests/data/*/.
#
# Usage: gen_volumes.sh OUTDIR NODES SERIES SAMPLES_PER_SERIES
#
#   OUTDIR              must not exist, or be an empty directory
#   NODES               number of volumes: OUTDIR/node0 .. node<NODES-1>
#   SERIES              series per node (distinct: label vol="nodeN")
#   SAMPLES_PER_SERIES  samples per series, spread over GEN_SPAN_DAYS days
#
# One single-node victoria-metrics per node (127.0.0.1, free ports,
# -retentionPeriod=100y), data streamed in by python3 through
# /api/v1/import in batches (memory stays flat however big the set),
# /internal/force_flush, read back with vm_compare.py against what was sent
# (GEN_VERIFY=1), clean stop with SIGINT, cache/ removed (as for the
# fixtures), then OUTDIR/manifest.json.
#
# Data: metrics fusetest_{cpu_seconds_total,http_requests_total,
# disk_io_seconds_total} (counters) and fusetest_{memory_bytes,
# temperature_celsius} (gauges); labels job, instance, slot, vol and
# per-metric ones; whole-second timestamps from GEN_START over
# GEN_SPAN_DAYS (default 2024-01-05 + 150 days: partitions 2024_01..2024_06),
# regular steps with jitter; values are multiples of 0.25, so every sum is
# exact in float64. Deterministic for a given GEN_SEED.
#
# Environment:
#   GEN_SEED=1  GEN_START=2024-01-05  GEN_SPAN_DAYS=150
#   GEN_JOBS=<nproc>         nodes imported in parallel
#   GEN_VERIFY=1             read back each node before stopping it (0: skip)
#   GEN_KEEP_CACHE=0         1: keep nodeN/cache/
#   GEN_BATCH_BYTES=8388608  size of one import request
#   GEN_STEP_TIMEOUT=3600    bound in s on each import/verify step
#   VICTORIA_METRICS, PYTHON3 as in lib.sh
#
# Exit status 0 on success; on failure OUTDIR is removed if we created it.

set -u -o pipefail

usage() {
	sed -n '/^# tests\/e2e\/gen_volumes.sh/,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[ "$#" -eq 4 ] || usage
OUTDIR=$1 NODES=$2 SERIES=$3 SAMPLES=$4
for v in "$NODES" "$SERIES" "$SAMPLES"; do
	case $v in '' | *[!0-9]*) usage ;; esac
	[ "$v" -gt 0 ] || usage
done

# We do our own bounding per step; lib.sh's whole-test watchdog is for
# TAP tests and would kill a legitimately long benchmark set-up.
E2E_TIMEOUT=0
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

GEN_SEED=${GEN_SEED:-1}
GEN_START=${GEN_START:-2024-01-05}
GEN_SPAN_DAYS=${GEN_SPAN_DAYS:-150}
GEN_JOBS=${GEN_JOBS:-$(nproc 2>/dev/null || echo 2)}
GEN_VERIFY=${GEN_VERIFY:-1}
GEN_KEEP_CACHE=${GEN_KEEP_CACHE:-0}
GEN_BATCH_BYTES=${GEN_BATCH_BYTES:-8388608}
GEN_STEP_TIMEOUT=${GEN_STEP_TIMEOUT:-3600}

say() { printf 'gen_volumes: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

command -v "$VICTORIA_METRICS" >/dev/null 2>&1 || die "$VICTORIA_METRICS not found"
command -v "$PYTHON3" >/dev/null 2>&1 || die "python3 not found"

# OUTDIR: refuse to mix with existing data; remove a half-made set.
created_outdir=0
if [ -e "$OUTDIR" ]; then
	if [ ! -d "$OUTDIR" ] || [ -n "$(ls -A "$OUTDIR")" ]; then
		die "$OUTDIR exists and is not an empty directory"
	fi
else
	mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
	created_outdir=1
fi
OUTDIR=$(cd "$OUTDIR" && pwd -P)
success=0
# Registered first, so it runs last: after every VM is stopped.
# shellcheck disable=SC2016  # expanded at exit time, on purpose
on_exit '[ "$success" = 1 ] || { [ "$created_outdir" = 1 ] && rm -rf "$OUTDIR"; }'

# ---------------------------------------------------------------------------
# The generator / manifest writer (python3, stdlib only).

GEN_PY="$SCRATCH/gen.py"
cat >"$GEN_PY" <<'PY'
import bisect, calendar, hashlib, http.client, json, os, random, subprocess, sys, time

COUNTERS = ("fusetest_cpu_seconds_total", "fusetest_http_requests_total",
            "fusetest_disk_io_seconds_total")
GAUGES = ("fusetest_memory_bytes", "fusetest_temperature_celsius")
METRICS = COUNTERS[:1] + GAUGES[:1] + COUNTERS[1:] + GAUGES[1:]
MATCH = '{__name__=~"fusetest_.*"}'


def esc(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def series_key(metric):
    # Must agree with vm_compare.py and tests/data/README.md.
    labels = sorted((k, v) for k, v in metric.items() if k != "__name__")
    return "%s{%s}" % (metric["__name__"],
                       ",".join('%s="%s"' % (k, esc(v)) for k, v in labels))


def labels_for(rng, node, i):
    name = METRICS[i % len(METRICS)]
    m = {"__name__": name, "job": "fusetest-gen",
         "instance": "g-v%d-%06d:9100" % (node, i), "slot": str(i % 40),
         "vol": "node%d" % node}
    if name == "fusetest_cpu_seconds_total":
        m["cpu"] = str(rng.randrange(8))
        m["mode"] = rng.choice(("idle", "user", "system", "iowait"))
    elif name == "fusetest_memory_bytes":
        m["kind"] = rng.choice(("rss", "heap", "cache"))
    elif name == "fusetest_http_requests_total":
        m["method"] = rng.choice(("GET", "PUT", "POST"))
        m["code"] = rng.choice(("200", "404", "500"))
    elif name == "fusetest_disk_io_seconds_total":
        m["device"] = rng.choice(("sda", "sdb", "nvme0n1"))
    else:
        m["sensor"] = "t%d" % rng.randrange(4)
        m["zone"] = rng.choice(("a", "b"))
    return m


def gen_series(rng, node, i, nsamples, start_s, span_s):
    """Return (metric, timestamps_ms, quarters) for series i of node."""
    metric = labels_for(rng, node, i)
    step = span_s // nsamples
    off = rng.randrange(step) if step > 1 else 0
    jit = step // 4
    r = rng.randrange
    if jit:
        ts = [(start_s + off + k * step + r(jit)) * 1000 for k in range(nsamples)]
    else:
        ts = [(start_s + off + k * step) * 1000 for k in range(nsamples)]
    name = metric["__name__"]
    if name in COUNTERS:
        q, acc = [], r(4000)
        for _ in range(nsamples):
            acc += r(401)           # 0 .. 100 in steps of 0.25
            q.append(acc)
    elif name == "fusetest_memory_bytes":
        # <= 256 MiB, whole bytes: small enough that even a million
        # samples sum exactly in float64.
        base = r(1 << 16) * 4096 * 4
        q = [base + r(1 << 16) * 4 for _ in range(nsamples)]
    else:
        q = [80 + r(281) for _ in range(nsamples)]   # 20.0 .. 90.0 C
    return metric, ts, q


def fmt_q(q):
    return str(q >> 2) if q & 3 == 0 else repr(q / 4)


def post(conn, body, deadline):
    if time.monotonic() > deadline:
        raise SystemExit("import: step timeout")
    conn.request("POST", "/api/v1/import", body=body,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status // 100 != 2:
        raise SystemExit("import: HTTP %d: %s" % (resp.status, data[:500]))


def cmd_gen(argv):
    (node, url, out, nseries, nsamples, seed, start, span_days,
     batch_bytes, timeout) = argv
    node, nseries, nsamples = int(node), int(nseries), int(nsamples)
    batch_bytes, deadline = int(batch_bytes), time.monotonic() + float(timeout)
    start_s = calendar.timegm(time.strptime(start, "%Y-%m-%d"))
    span_s = int(float(span_days) * 86400)
    if nsamples > span_s:
        raise SystemExit("more samples per series than seconds in the span")
    rng = random.Random(int(seed) * 1000003 + node)
    hostport = url.split("://", 1)[1].rstrip("/")
    conn = http.client.HTTPConnection(hostport, timeout=min(600.0, float(timeout)))
    series, batch, size = {}, [], 0
    tot_samples = tot_q = 0
    tmin, tmax = None, None
    months = set()
    # Month starts (ms) around the span, to find each sample's partition
    # with a bisect per month instead of a gmtime per sample.
    bounds, y, m = [], time.gmtime(start_s).tm_year, time.gmtime(start_s).tm_mon
    while True:
        b = calendar.timegm((y, m, 1, 0, 0, 0)) * 1000
        bounds.append((b, "%04d_%02d" % (y, m)))
        if b > (start_s + span_s + 86400) * 1000:
            break
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    for i in range(nseries):
        metric, ts, q = gen_series(rng, node, i, nsamples, start_s, span_s)
        line = '{"metric":%s,"values":[%s],"timestamps":[%s]}\n' % (
            json.dumps(metric, separators=(",", ":")),
            ",".join(map(fmt_q, q)), ",".join(map(str, ts)))
        batch.append(line.encode())
        size += len(line)
        sq = sum(q)
        series[series_key(metric)] = [len(q), sq / 4, ts[0], ts[-1]]
        tot_samples += len(q)
        tot_q += sq
        tmin = ts[0] if tmin is None else min(tmin, ts[0])
        tmax = ts[-1] if tmax is None else max(tmax, ts[-1])
        for j in range(len(bounds) - 1):
            lo, name = bounds[j]
            k = bisect.bisect_left(ts, lo)
            if k < len(ts) and ts[k] < bounds[j + 1][0]:
                months.add(name)
        if size >= batch_bytes:
            post(conn, b"".join(batch), deadline)
            batch, size = [], 0
    if batch:
        post(conn, b"".join(batch), deadline)
    conn.close()
    months = sorted(months)
    vol = {"path": "node%d" % node, "series_count": len(series),
           "sample_count": tot_samples, "value_sum": tot_q / 4,
           "min_ts_ms": tmin, "max_ts_ms": tmax,
           "partitions": months, "series": series}
    partial = {"format": "vm-volume-manifest/1", "mode": "single", "match": MATCH,
               "time_range_ms": [tmin, tmax], "volumes": {"node%d" % node: vol},
               "value_sum_quarters": tot_q}
    with open(out + ".tmp", "w") as f:
        json.dump(partial, f, separators=(",", ":"))
    os.rename(out + ".tmp", out)


def disk_layout(root):
    dirs, files = [], {}
    for dp, dn, fn in os.walk(root):
        rel = os.path.relpath(dp, root)
        for d in dn:
            dirs.append(os.path.normpath(os.path.join(rel, d)))
        for f in fn:
            p = os.path.join(dp, f)
            files[os.path.normpath(os.path.join(rel, f))] = os.lstat(p).st_size
    def ls(sub):
        p = os.path.join(root, sub)
        return sorted(os.listdir(p)) if os.path.isdir(p) else []
    return {"top": ls("."), "data/small": ls("data/small"), "data/big": ls("data/big"),
            "indexdb": ls("indexdb"), "dirs": sorted(dirs), "files": files}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cmd_finalize(argv):
    outdir, nodes, vmbin, seed, gen_args, removed = argv
    nodes = int(nodes)
    vols, seen, multi = {}, {}, set()
    tot_series = tot_samples = tot_q = 0
    tmin = tmax = None
    for n in range(nodes):
        part = os.path.join(outdir, ".node%d.partial.json" % n)
        with open(part) as f:
            p = json.load(f)
        name = "node%d" % n
        vol = p["volumes"][name]
        for k in vol["series"]:
            if k in seen:
                multi.add(k)
            seen[k] = name
        vol["disk_layout"] = disk_layout(os.path.join(outdir, name))
        vols[name] = vol
        tot_series += vol["series_count"]
        tot_samples += vol["sample_count"]
        tot_q += p["value_sum_quarters"]
        a, b = p["time_range_ms"]
        tmin = a if tmin is None else min(tmin, a)
        tmax = b if tmax is None else max(tmax, b)
    vmpath = subprocess.run(["sh", "-c", 'command -v "$1"', "sh", vmbin],
                            capture_output=True, text=True).stdout.strip() or vmbin
    vmpath = os.path.realpath(vmpath)
    version = subprocess.run([vmpath, "-version"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
    vm_version = version
    if not version:
        # The Debian build prints an empty -version; say what it is.
        deb = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "victoria-metrics"],
                             capture_output=True, text=True).stdout.strip()
        vm_version = "victoria-metrics %s (Debian package %s)" % (
            deb.split("+")[0].split(":")[-1] if deb else "unknown", deb or "unknown")
    manifest = {
        "format": "vm-volume-manifest/1",
        "mode": "single",
        "vm_version": vm_version,
        "binaries": {"victoria-metrics": {"sha256": sha256(vmpath),
                                          "version_output": version}},
        "seed": int(seed),
        "nodes": nodes,
        "tenant": None,
        "retention_period": "100y",
        "generator_args": gen_args,
        "metric_prefix": "fusetest",
        "match": MATCH,
        "time_range_ms": [tmin, tmax],
        "generated": {"series_count": tot_series, "sample_count": tot_samples,
                      "value_sum": tot_q / 4},
        "series_count": tot_series,
        "sample_count": tot_samples,
        "removed_after_stop": json.loads(removed),
        "series_on_multiple_nodes": sorted(multi),
        "series_key_format": "name{label1=\"v1\",label2=\"v2\"} with labels sorted by name (Prometheus text style)",
        "series_value_format": "[sample_count, value_sum, min_timestamp_ms, max_timestamp_ms]",
        "volumes": vols,
    }
    tmp = os.path.join(outdir, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    os.rename(tmp, os.path.join(outdir, "manifest.json"))
    for n in range(nodes):
        os.unlink(os.path.join(outdir, ".node%d.partial.json" % n))
    print("%d series, %d samples in %d volumes" % (tot_series, tot_samples, nodes))


if __name__ == "__main__":
    {"gen": cmd_gen, "finalize": cmd_finalize}[sys.argv[1]](sys.argv[2:])
PY

# ---------------------------------------------------------------------------

ports=()
running=() # pids of background import/verify jobs, for the cleanup

# Stop jobs still running when we are interrupted. Each job exec'd
# timeout(1), which passes the TERM on to python3.
kill_jobs() {
	local p
	for p in "${running[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${running[@]}"; do
		wait "$p" 2>/dev/null
	done
	running=()
}
on_exit kill_jobs

start_nodes() {
	local n port
	for ((n = 0; n < NODES; n++)); do
		port=$(free_port) || die "no free port"
		mkdir -p "$OUTDIR/node$n"
		vm_start "$OUTDIR/node$n" "$port" || die "victoria-metrics for node$n did not start"
		ports[n]=$port
	done
}

# run_parallel WHAT CMD_FN : CMD_FN N for every node, GEN_JOBS at a time,
# each bounded by GEN_STEP_TIMEOUT. Logs in $SCRATCH/WHAT.N.log.
run_parallel() {
	local what=$1 fn=$2 n i rc failed=0
	local -a pids=() nodes_of=()
	for ((n = 0; n < NODES; n++)); do
		"$fn" "$n" >"$SCRATCH/$what.$n.log" 2>&1 &
		pids+=($!)
		running+=($!)
		nodes_of+=("$n")
		if [ "${#pids[@]}" -ge "$GEN_JOBS" ] || [ "$n" -eq $((NODES - 1)) ]; then
			for i in "${!pids[@]}"; do
				wait "${pids[$i]}"
				rc=$?
				if [ "$rc" -ne 0 ]; then
					say "$what node${nodes_of[$i]} failed (status $rc):"
					tail -n 20 "$SCRATCH/$what.${nodes_of[$i]}.log" >&2
					failed=1
				fi
			done
			pids=()
			nodes_of=()
			running=()
		fi
	done
	return "$failed"
}

import_node() {
	exec timeout -k 10 "$GEN_STEP_TIMEOUT" "$PYTHON3" "$GEN_PY" gen "$1" \
		"http://127.0.0.1:${ports[$1]}" "$OUTDIR/.node$1.partial.json" \
		"$SERIES" "$SAMPLES" "$GEN_SEED" "$GEN_START" "$GEN_SPAN_DAYS" \
		"$GEN_BATCH_BYTES" "$GEN_STEP_TIMEOUT"
}

verify_node() {
	exec timeout -k 10 "$GEN_STEP_TIMEOUT" "$PYTHON3" "$E2E_DIR/vm_compare.py" "http://127.0.0.1:${ports[$1]}" "$OUTDIR/.node$1.partial.json" \
		--nodes "node$1" --timeout "$GEN_STEP_TIMEOUT"
}

main() {
	local n t0=$SECONDS
	say "$NODES volumes x $SERIES series x $SAMPLES samples into $OUTDIR"
	start_nodes
	run_parallel import import_node || die "import failed"
	say "imported in $((SECONDS - t0))s; flushing"
	for ((n = 0; n < NODES; n++)); do
		vm_flush "http://127.0.0.1:${ports[n]}" || die "force_flush on node$n failed"
	done
	if [ "$GEN_VERIFY" = 1 ]; then
		run_parallel verify verify_node || die "read-back does not match what was sent"
		say "read back and verified after $((SECONDS - t0))s"
	fi
	for ((n = 0; n < NODES; n++)); do
		vm_stop "${ports[n]}" || die "victoria-metrics for node$n did not stop cleanly"
	done
	local removed='[]'
	if [ "$GEN_KEEP_CACHE" != 1 ]; then
		# As for the fixtures: rebuildable, and ~4 MB of mostly empty
		# fastcache chunks per node whatever the size.
		for ((n = 0; n < NODES; n++)); do
			rm -rf "$OUTDIR/node$n/cache"
		done
		removed='["cache"]'
	fi
	timeout 600 "$PYTHON3" "$GEN_PY" finalize "$OUTDIR" "$NODES" "$VICTORIA_METRICS" \
		"$GEN_SEED" "gen_volumes.sh $NODES $SERIES $SAMPLES (GEN_SEED=$GEN_SEED GEN_START=$GEN_START GEN_SPAN_DAYS=$GEN_SPAN_DAYS)" \
		"$removed" >&2 || die "writing manifest.json failed"
	success=1
	say "done in $((SECONDS - t0))s: $(du -sh "$OUTDIR" | cut -f1) in $OUTDIR"
}

main
