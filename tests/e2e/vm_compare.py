#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compare what a running VictoriaMetrics returns with a fixture manifest.

Usage:
  vm_compare.py URL MANIFEST [--nodes node0,node1,...] [--extra-series-ok]
                [--count-only] [--timeout SECONDS] [--quiet]

URL is the Prometheus API base of the reader, i.e. the part before
"/api/v1/export":
  single-node victoria-metrics:   http://127.0.0.1:PORT
  cluster vmselect (tenant 0:0):  http://127.0.0.1:PORT/select/0/prometheus

It exports every series matching manifest["match"] over manifest
["time_range_ms"] (widened by a day on each side), builds the series key the
way tests/data/README.md describes (name{l1="v1",...}, labels sorted by name,
Prometheus text escaping; counts and sums added up when the export splits a
series over several lines) and compares it with the union of the `series`
maps of the selected manifest volumes (all of them by default) on sample
count, value sum and min/max timestamp.

Output: one summary line
  series: N expected, N found, N missing, N wrong, N extra
followed by up to 10 example differences.  Exit status 0 only on an exact
match (extra series are an error unless --extra-series-ok), 1 on a mismatch,
2 on usage/HTTP/parse errors.

With --count-only it just prints the number of series found (exit 0 on a
successful export, whatever the count).

Only the Python standard library is used, so it runs on a bare Debian.
"""

import argparse
import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# Widen the export window: the manifest range is the exact min/max sample
# timestamp, and we do not want an off-by-one at either end to hide samples.
WIDEN_MS = 24 * 3600 * 1000
MAX_EXAMPLES = 10


def escape_label_value(v):
    # Prometheus text exposition escaping, as the fixture generator used.
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def series_key(metric):
    """name{l1="v1",l2="v2"} with labels sorted by name."""
    name = metric.get("__name__", "")
    labels = sorted((k, v) for k, v in metric.items() if k != "__name__")
    body = ",".join('%s="%s"' % (k, escape_label_value(v)) for k, v in labels)
    return "%s{%s}" % (name, body)


def load_expected(manifest, nodes):
    """Union of the selected volumes' series maps.

    Keys are disjoint across nodes in the fixtures, but if a key does occur
    twice we add the counts up, which is what a merged volume would hold.
    """
    volumes = manifest.get("volumes", {})
    if nodes is None:
        nodes = sorted(volumes)
    expected = {}
    for node in nodes:
        if node not in volumes:
            raise SystemExit("vm_compare: manifest has no volume %r (have: %s)"
                             % (node, ", ".join(sorted(volumes))))
        for key, (cnt, vsum, tmin, tmax) in volumes[node]["series"].items():
            if key in expected:
                c0, s0, mn0, mx0 = expected[key]
                expected[key] = [c0 + cnt, s0 + vsum, min(mn0, tmin), max(mx0, tmax)]
            else:
                expected[key] = [cnt, vsum, tmin, tmax]
    return expected


def export_url(base, match, start_ms, end_ms):
    query = urllib.parse.urlencode([
        ("match[]", match),
        # Seconds with a fraction: understood by every VictoriaMetrics
        # version (old ones do not auto-detect milliseconds).
        ("start", "%.3f" % (start_ms / 1000.0)),
        ("end", "%.3f" % (end_ms / 1000.0)),
    ])
    return base.rstrip("/") + "/api/v1/export?" + query


def fetch_series(url, timeout, deadline):
    """Stream the export (it may be hundreds of MB) and aggregate per key."""
    found = {}
    req = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        body = e.read(2000).decode("utf-8", "replace")
        raise SystemExit("vm_compare: HTTP %d from %s: %s" % (e.code, url, body.strip()))
    except (urllib.error.URLError, OSError) as e:
        raise SystemExit("vm_compare: cannot reach %s: %s" % (url, e))
    lineno = 0
    with resp:
        for raw in resp:
            lineno += 1
            if time.monotonic() > deadline:
                raise SystemExit("vm_compare: export took longer than %ss" % timeout)
            line = raw.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
                key = series_key(obj["metric"])
                values = obj["values"]
                stamps = obj["timestamps"]
            except (ValueError, KeyError, TypeError) as e:
                raise SystemExit("vm_compare: bad export line %d: %s: %.200r"
                                 % (lineno, e, line))
            if len(values) != len(stamps):
                raise SystemExit("vm_compare: export line %d: %d values but %d timestamps"
                                 % (lineno, len(values), len(stamps)))
            if not stamps:
                continue
            vsum = math.fsum(float(v) for v in values)
            cur = found.get(key)
            if cur is None:
                found[key] = [len(values), vsum, min(stamps), max(stamps)]
            else:
                cur[0] += len(values)
                cur[1] += vsum
                cur[2] = min(cur[2], min(stamps))
                cur[3] = max(cur[3], max(stamps))
    return found


def same_sum(a, b):
    # The fixtures use multiples of 0.25, so sums are exact in float64; the
    # tiny tolerance only absorbs summation-order effects on huge sets.
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)


def compare(expected, found):
    missing, wrong, extra = [], [], []
    for key, want in expected.items():
        got = found.get(key)
        if got is None:
            missing.append(key)
            continue
        if (got[0] != want[0] or not same_sum(got[1], want[1])
                or got[2] != want[2] or got[3] != want[3]):
            wrong.append((key, want, got))
    for key in found:
        if key not in expected:
            extra.append(key)
    return missing, wrong, extra


def fmt(v):
    return "[count=%d sum=%r min_ts=%d max_ts=%d]" % (v[0], v[1], v[2], v[3])


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Compare a VictoriaMetrics export with a fixture manifest.")
    ap.add_argument("url", help="API base, e.g. http://127.0.0.1:8428 "
                    "or http://127.0.0.1:8481/select/0/prometheus")
    ap.add_argument("manifest", help="manifest.json of the volume set")
    ap.add_argument("--nodes", help="comma-separated volume names to expect "
                    "(default: all volumes in the manifest)")
    ap.add_argument("--extra-series-ok", action="store_true",
                    help="do not fail on series that the manifest does not list")
    ap.add_argument("--count-only", action="store_true",
                    help="only print the number of series found")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="bound on the whole export in seconds (default 300)")
    ap.add_argument("--quiet", action="store_true",
                    help="print only the summary line")
    args = ap.parse_args(argv)

    try:
        with open(args.manifest, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        print("vm_compare: cannot read manifest %s: %s" % (args.manifest, e), file=sys.stderr)
        return 2
    try:
        match = manifest["match"]
        tmin, tmax = manifest["time_range_ms"]
    except (KeyError, TypeError, ValueError) as e:
        print("vm_compare: manifest lacks match/time_range_ms: %s" % e, file=sys.stderr)
        return 2

    nodes = None
    if args.nodes:
        nodes = [n.strip() for n in args.nodes.split(",") if n.strip()]

    deadline = time.monotonic() + args.timeout
    url = export_url(args.url, match, tmin - WIDEN_MS, tmax + WIDEN_MS)
    try:
        # Per-socket-operation timeout; the overall bound is the deadline.
        found = fetch_series(url, min(args.timeout, 60.0), deadline)
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2

    if args.count_only:
        print(len(found))
        return 0

    try:
        expected = load_expected(manifest, nodes)
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    missing, wrong, extra = compare(expected, found)

    print("series: %d expected, %d found, %d missing, %d wrong, %d extra"
          % (len(expected), len(found), len(missing), len(wrong), len(extra)))
    exp_samples = sum(v[0] for v in expected.values())
    got_samples = sum(v[0] for v in found.values())
    print("samples: %d expected, %d found" % (exp_samples, got_samples))

    if not args.quiet:
        shown = 0
        for key in sorted(missing):
            if shown >= MAX_EXAMPLES:
                break
            print("  missing: %s %s" % (key, fmt(expected[key])))
            shown += 1
        for key, want, got in sorted(wrong):
            if shown >= MAX_EXAMPLES:
                break
            print("  wrong:   %s want %s got %s" % (key, fmt(want), fmt(got)))
            shown += 1
        if not args.extra_series_ok:
            for key in sorted(extra):
                if shown >= MAX_EXAMPLES:
                    break
                print("  extra:   %s %s" % (key, fmt(found[key])))
                shown += 1

    bad = bool(missing or wrong or (extra and not args.extra_series_ok))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
