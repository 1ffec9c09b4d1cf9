#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Load for the soak test (tests/soak/soak.sh); standard library only.

  load.py ingest URL SECONDS RATE      import RATE samples/s (in batches of
                                       of 50 series), force_flush every
                                       10 s, force_merge every 60 s (or
                                       twice in a shorter run)
  load.py read MOUNT SECONDS           walk the mount and read files whole
  load.py query URL SECONDS            instant and range queries

Each runs for SECONDS and prints one JSON line: what it did and its errors.
A file that vanishes between listing and reading (vmstorage merged its part
away) is not an error; any other failure is."""
import errno
import json
import os
import random
import sys
import time
import urllib.parse
import urllib.request

METRIC = "vmunionfs_soak"
SERIES = 50


def http(url, data=None, timeout=30):
    with urllib.request.urlopen(url, data=data, timeout=timeout) as r:
        return r.read()


def ingest(url, seconds, rate):
    deadline = time.monotonic() + seconds
    # Timestamps start in the past and advance 1 s per batch, so every
    # sample of a series has its own timestamp (no deduplication).
    ts = int(time.time()) - int(seconds) - 3600
    sent = errors = batches = 0
    per_batch = SERIES
    interval = per_batch / float(rate)
    last_flush = last_merge = time.monotonic()
    # At least one forced merge in a short run.
    merge_every = max(10.0, min(60.0, seconds / 2))
    merges = 0
    first_error = ""
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        lines = "".join('%s{job="soak",series="%d"} %d %d000\n' % (METRIC, s, batches, ts)
                        for s in range(SERIES))
        try:
            http(url + "/api/v1/import/prometheus", lines.encode())
            sent += per_batch
        except Exception as e:  # any failure of vmstorage counts
            errors += 1
            first_error = first_error or repr(e)
        ts += 1
        batches += 1
        now = time.monotonic()
        try:
            if now - last_flush >= 10:
                http(url + "/internal/force_flush", timeout=60)
                last_flush = now
            if now - last_merge >= merge_every:
                http(url + "/internal/force_merge", timeout=60)
                last_merge = now
                merges += 1
        except Exception as e:
            errors += 1
            first_error = first_error or repr(e)
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))
    return {"sent": sent, "errors": errors, "first_error": first_error, "merges": merges,
            "start": ts - batches, "end": ts}


def read(mount, seconds):
    deadline = time.monotonic() + seconds
    walks = files = nbytes = vanished = errors = 0
    first_error = ""
    rnd = random.Random(os.getpid())
    while time.monotonic() < deadline:
        paths = []
        try:
            for dirpath, dirnames, filenames in os.walk(mount):
                if os.path.relpath(dirpath, mount).startswith("snapshots"):
                    dirnames[:] = []
                    continue
                paths.extend(os.path.join(dirpath, n) for n in filenames)
            walks += 1
        except OSError as e:
            errors += 1
            first_error = first_error or repr(e)
        rnd.shuffle(paths)
        for p in paths[:200]:
            if time.monotonic() >= deadline:
                break
            try:
                with open(p, "rb") as f:
                    while True:
                        chunk = f.read(1 << 20)
                        if not chunk:
                            break
                        nbytes += len(chunk)
                files += 1
            except OSError as e:
                if e.errno == errno.ENOENT:
                    vanished += 1
                else:
                    errors += 1
                    first_error = first_error or repr(e)
    return {"walks": walks, "files": files, "bytes": nbytes, "vanished": vanished,
            "errors": errors, "first_error": first_error}


def query(url, seconds):
    deadline = time.monotonic() + seconds
    queries = errors = 0
    first_error = ""
    exprs = ["count(%s)" % METRIC, "sum(rate(%s[5m]))" % METRIC,
             'count({__name__=~"fusetest_.*"})', "sum(fusetest_memory_bytes)"]
    while time.monotonic() < deadline:
        for q in exprs:
            now = int(time.time())
            args = {"query": q, "time": str(now)}
            path = "/api/v1/query"
            if "fusetest" in q:
                # The sample volumes hold 2024 data: a range query over it.
                path = "/api/v1/query_range"
                args = {"query": q, "start": "1705708800", "end": "1713139200", "step": "1d"}
            try:
                body = json.loads(http(url + path + "?" + urllib.parse.urlencode(args)))
                if body.get("status") != "success":
                    raise RuntimeError("status %s" % body.get("status"))
                queries += 1
            except Exception as e:
                errors += 1
                first_error = first_error or repr(e)
        time.sleep(0.2)
    return {"queries": queries, "errors": errors, "first_error": first_error}


def main():
    mode, target, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if mode == "ingest":
        out = ingest(target, seconds, float(sys.argv[4]))
    elif mode == "read":
        out = read(target, seconds)
    elif mode == "query":
        out = query(target, seconds)
    else:
        sys.exit("usage: load.py ingest|read|query TARGET SECONDS [RATE]")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
