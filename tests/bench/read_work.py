#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""One timed, cold-cache workload for tests/bench/read.sh; prints one JSON line.

    read_work.py seq  --files FILES ROOT...   read every listed file start to end, 1 MiB buffer
    read_work.py reread --files FILES ROOT... the same, twice; only the second (cached) pass
                                              is timed
    read_work.py par  --files FILES ROOT...   the same, by 4 threads on different files
    read_work.py walk ROOT...                 os.walk every ROOT and lstat every entry
    read_work.py walk2 ROOT...                the same, twice; only the second pass is timed
    read_work.py rand --files FILES --reads N --seed S ROOT...
                                              N random 4 KiB preads over the listed files

FILES is read_gen.py's files.txt ("<volume index> <path below the volume>"). With one
ROOT (a merged mount) a file is ROOT/path; with several (the volumes themselves) it is
ROOT[volume index]/path.

Caches are dropped (sync; echo 3 > /proc/sys/vm/drop_caches) right before the timer
starts. For rand, every file is opened first, then the caches are dropped, so only the
preads are timed (opening is what walk measures). Needs root for the drop.
"""
import argparse
import bisect
import json
import os
import random
import sys
import threading
import time
import zlib

BLOCK = 4096
BUFFER = 1 << 20


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def read_list(path, roots, only_bin=False):
    files = []
    with open(path) as f:
        for line in f:
            volume, rel = line.rstrip("\n").split(" ", 1)
            if only_bin and not rel.endswith(".bin"):
                continue
            root = roots[0] if len(roots) == 1 else roots[int(volume)]
            files.append(os.path.join(root, rel))
    return files


def read_files(files):
    """Reads every file start to end with a 1 MiB buffer; returns the bytes read."""
    view = memoryview(bytearray(BUFFER))
    total = 0
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            while True:
                n = os.readv(fd, [view])
                if n <= 0:
                    break
                total += n
        finally:
            os.close(fd)
    return total


def work_seq(args):
    files = read_list(args.files, args.roots)
    if args.work == "reread":
        read_files(files)  # the first pass fills the caches
    else:
        drop_caches()
    start = time.monotonic()
    total = read_files(files)
    seconds = time.monotonic() - start
    return {"seconds": seconds, "bytes": total, "files": len(files), "ops": len(files)}


def work_par(args):
    """THREADS readers, each on its own share of the files (reads release the GIL)."""
    files = read_list(args.files, args.roots)
    shares = [files[i::args.threads] for i in range(args.threads)]
    totals = [None] * args.threads

    def reader(i):
        totals[i] = read_files(shares[i])

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(args.threads)]
    drop_caches()
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - start
    if any(t is None for t in totals):
        raise SystemExit("a reader failed")
    return {"seconds": seconds, "bytes": sum(totals), "files": len(files), "ops": len(files)}


def walk_once(roots):
    files = dirs = size = 0
    for root in roots:
        for top, dnames, fnames in os.walk(root):
            for name in dnames:
                os.lstat(os.path.join(top, name))
                dirs += 1
            for name in fnames:
                size += os.lstat(os.path.join(top, name)).st_size
                files += 1
    return files, dirs, size


def work_walk(args):
    if args.work == "walk2":
        walk_once(args.roots)  # the first pass fills the caches
    else:
        drop_caches()
    start = time.monotonic()
    files, dirs, size = walk_once(args.roots)
    seconds = time.monotonic() - start
    return {"seconds": seconds, "files": files, "dirs": dirs, "bytes": size,
            "ops": files + dirs}


def work_rand(args):
    paths = read_list(args.files, args.roots, only_bin=True)
    fds, ends, total = [], [], 0
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        size = os.fstat(fd).st_size
        if size < BLOCK:
            os.close(fd)
            continue
        fds.append((fd, size))
        total += size
        ends.append(total)
    # The offsets depend only on the seed and the file sizes: the same for every method.
    rng = random.Random(args.seed)
    plan = []
    for _ in range(args.reads):
        x = rng.randrange(total)
        i = bisect.bisect_right(ends, x)
        fd, size = fds[i]
        start_of_file = ends[i] - size
        offset = min((x - start_of_file) // BLOCK * BLOCK, size - BLOCK)
        plan.append((fd, offset))
    crc = 0
    short = 0
    drop_caches()
    start = time.monotonic()
    for fd, offset in plan:
        data = os.pread(fd, BLOCK, offset)
        if len(data) != BLOCK:
            short += 1
        crc = zlib.crc32(data, crc)
    seconds = time.monotonic() - start
    for fd, _ in fds:
        os.close(fd)
    return {"seconds": seconds, "bytes": args.reads * BLOCK, "files": len(fds),
            "ops": args.reads, "crc": "%08x" % crc, "short": short}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", choices=["seq", "reread", "par", "walk", "walk2", "rand"])
    ap.add_argument("roots", nargs="+")
    ap.add_argument("--files")
    ap.add_argument("--reads", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    if not args.work.startswith("walk") and not args.files:
        ap.error("--files is required for " + args.work)
    works = {"seq": work_seq, "reread": work_seq, "par": work_par, "walk": work_walk,
             "walk2": work_walk, "rand": work_rand}
    result = works[args.work](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
