#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Synthetic vmstorage volumes with the real gen-B2 layout, for tests/bench/read.sh.

The layout is the one of tests/data/v1.96.0-cluster/nodeN (what vmstorage v1.92 to
v1.132 writes):

    flock.lock
    metadata/minTimestampForCompositeIndex
    indexdb/<3 tables>/parts.json (+ parts)     copied from the real sample node
    data/small/YYYY_MM/parts.json               {"Small":[...],"Big":[...]}
    data/small/YYYY_MM/<16 HEX>/{metaindex.bin,index.bin,timestamps.bin,values.bin,metadata.json}
    data/big/YYYY_MM/<16 HEX>/...               the same, for the big parts

Part files hold random bytes (the file systems under test never decode them);
metadata.json is a valid part header, so vmunionfs's mount-time checks pass.

    read_gen.py big  OUT --volumes 4 --total-mb 1024   large parts (sequential/random reads)
                     [--large-mb 1024]                 and one more part in the first
                                                       volume whose values.bin is that large
    read_gen.py many OUT --volumes 4 --parts 5000      many small parts (metadata walk);
                                                       the .bin files are sparse (only
                                                       their sizes matter to a walk)

Prints one line per volume, then writes OUT/files.txt: "<volume index> <path below the
volume>" for every data part file (the paths are the same in every merged view, since
part names are unique across the volumes); with --large-mb, OUT/large.txt lists the large
values.bin alone (it is not in files.txt, so the other works read the same bytes).
"""
import argparse
import json
import math
import os
import random
import shutil
import sys

MONTHS = ["2024_01", "2024_02", "2024_03", "2024_04"]
MONTH_START_MS = {
    "2024_01": 1704067200000,
    "2024_02": 1706745600000,
    "2024_03": 1709251200000,
    "2024_04": 1711929600000,
}
MONTH_MS = 28 * 86400 * 1000
BIG_PART_BYTES = 24 << 20  # parts at least this large go to data/big
SKELETON_SLACK = 64 << 20  # the big set's room past its parts: indexdb copies, metadata
# Share of a part's bytes per file, as in real parts (values and timestamps dominate).
SPLIT = [("values.bin", 0.55), ("timestamps.bin", 0.30), ("index.bin", 0.14)]


class RandomPool:
    """Random bytes without calling urandom for every byte: slices of a 32 MiB pool."""

    def __init__(self, rng):
        self.pool = os.urandom(32 << 20)
        self.rng = rng

    def with_rng(self, rng):
        """The same pool drawn with another generator: files made with it leave the
        main generator, and so the sizes of every other part, as they were."""
        other = RandomPool.__new__(RandomPool)
        other.pool, other.rng = self.pool, rng
        return other

    def write(self, path, size):
        with open(path, "wb") as f:
            done = 0
            while done < size:
                start = self.rng.randrange(0, len(self.pool) // 2)
                n = min(size - done, len(self.pool) - start, 8 << 20)
                f.write(self.pool[start:start + n])
                done += n


def part_name(volume, index):
    # 16 upper-case hex digits, unique across volumes, in vmstorage's style.
    return "%016X" % (0x18EB73E000000000 + (volume << 28) + index)


def write_header(part_dir, month, rng, size):
    rows = max(2, size // 6)
    blocks = max(1, min(rows // 2, size // 4096))
    start = MONTH_START_MS[month] + rng.randrange(0, MONTH_MS // 2)
    meta = {
        "RowsCount": rows,
        "BlocksCount": blocks,
        "MinTimestamp": start,
        "MaxTimestamp": start + rng.randrange(1000, MONTH_MS // 2),
        "MinDedupInterval": 0,
    }
    with open(os.path.join(part_dir, "metadata.json"), "w") as f:
        json.dump(meta, f, separators=(",", ":"))


def make_part(root, level, month, name, size, rng, pool, files, volume):
    rel_dir = os.path.join("data", level, month, name)
    part_dir = os.path.join(root, rel_dir)
    os.makedirs(part_dir)
    metaindex = max(64, size // 2000)
    rest = size - metaindex
    sizes = [("metaindex.bin", metaindex)]
    for i, (fname, share) in enumerate(SPLIT):
        n = int(rest * share) if i < len(SPLIT) - 1 else rest - sum(s for _, s in sizes[1:])
        sizes.append((fname, max(1, n)))
    for fname, n in sizes:
        path = os.path.join(part_dir, fname)
        if pool:
            pool.write(path, n)
        else:
            with open(path, "wb") as f:
                f.write(b"\x01")  # non-empty for real, the rest sparse
                f.truncate(n)
        files.append((volume, os.path.join(rel_dir, fname)))
    write_header(part_dir, month, rng, size)
    files.append((volume, os.path.join(rel_dir, "metadata.json")))


def large_part_bytes(large_mb):
    """The size of a part whose values.bin, as make_part splits it, holds large_mb MiB."""
    values = large_mb << 20
    share = SPLIT[0][1]
    size = int(values / share)
    while int((size - max(64, size // 2000)) * share) < values:  # make_part's split
        size += 1 << 10
    return size


def check_space(out, total_mb, large_mb):
    """Exits 1 with a message naming out and the sizes if its filesystem cannot hold
    the big set: total_mb MiB of parts, the large part, the volumes' skeletons."""
    large = large_part_bytes(large_mb) if large_mb > 0 else 0
    need = (total_mb << 20) + large + SKELETON_SLACK
    st = os.statvfs(out)
    free = st.f_bavail * st.f_frsize
    if need <= free:
        return
    what = "%d MiB of parts" % total_mb
    if large:
        what += " + the large part, %d MiB (values.bin of --large-mb %d MiB and the rest" \
                " of its part)" % (large >> 20, large_mb)
    sys.stderr.write("read_gen.py: %s has %d MiB free; the big set needs about %d MiB (%s +"
                     " %d MiB for the skeletons and the file system); no volume written\n"
                     % (out, free >> 20, need >> 20, what, SKELETON_SLACK >> 20))
    sys.exit(1)


def make_large_part(root, large_mb, index, rng, pool):
    """A big part whose values.bin holds large_mb MiB; returns that file's path below root."""
    size = large_part_bytes(large_mb)
    month = MONTHS[0]
    name = part_name(0, index)
    make_part(root, "big", month, name, size, rng, pool, [], 0)
    print("  %s: a large part, values.bin %d MiB" % (root, large_mb))
    return os.path.join("data", "big", month, name, "values.bin")


def copy_skeleton(root, volume, sample_dir):
    """flock.lock, metadata/ and indexdb/ of the real sample node (empty tables past it)."""
    os.makedirs(root)
    open(os.path.join(root, "flock.lock"), "w").close()
    src = os.path.join(sample_dir, "node%d" % volume)
    if os.path.isdir(src):
        shutil.copytree(os.path.join(src, "indexdb"), os.path.join(root, "indexdb"))
        shutil.copytree(os.path.join(src, "metadata"), os.path.join(root, "metadata"))
        return
    # More volumes than sample nodes: three empty tables (prev, curr, next).
    base = 0x18EB73E0114CE9DC + (volume << 20)
    for t in range(3):
        table = os.path.join(root, "indexdb", "%016X" % (base + t))
        os.makedirs(table)
        with open(os.path.join(table, "parts.json"), "w") as f:
            f.write("[]")
    os.makedirs(os.path.join(root, "metadata"))
    with open(os.path.join(root, "metadata", "minTimestampForCompositeIndex"), "wb") as f:
        f.write(b"\x00" * 8)


def write_parts_json(root, listed):
    for month in MONTHS:
        os.makedirs(os.path.join(root, "data", "small", month), exist_ok=True)
        os.makedirs(os.path.join(root, "data", "big", month), exist_ok=True)
        small, big = listed.get(month, ([], []))
        with open(os.path.join(root, "data", "small", month, "parts.json"), "w") as f:
            json.dump({"Small": sorted(small), "Big": sorted(big)}, f, separators=(",", ":"))


def part_sizes_big(target, rng):
    """Log-uniform part sizes between 1 MiB and 64 MiB, summing to target."""
    sizes, total = [], 0
    while total < target:
        size = int(math.exp(rng.uniform(math.log(1 << 20), math.log(64 << 20))))
        size = min(size, target - total)
        if size < (256 << 10) and sizes:
            sizes[-1] += size
        else:
            sizes.append(size)
        total += size
    return sizes


def part_sizes_many(count, rng):
    """Small parts as vmstorage writes them in bulk: 10 KiB to 200 KiB."""
    return [int(math.exp(rng.uniform(math.log(10 << 10), math.log(200 << 10))))
            for _ in range(count)]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["big", "many"])
    ap.add_argument("out")
    ap.add_argument("--volumes", type=int, default=4)
    ap.add_argument("--total-mb", type=int, default=1024)
    ap.add_argument("--parts", type=int, default=5000, help="parts per volume (many)")
    ap.add_argument("--large-mb", type=int, default=0,
                    help="big: one more part in the first volume, values.bin this large")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sample", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data", "v1.96.0-cluster"))
    args = ap.parse_args()

    rng = random.Random(args.seed)
    pool = RandomPool(rng) if args.kind == "big" else None
    os.makedirs(args.out, exist_ok=True)
    if args.kind == "big":
        check_space(args.out, args.total_mb, args.large_mb)
    files, large = [], []
    for v in range(args.volumes):
        root = os.path.join(args.out, "v%d" % v)
        if os.path.exists(root):
            shutil.rmtree(root)
        copy_skeleton(root, v, args.sample)
        if args.kind == "big":
            sizes = part_sizes_big((args.total_mb << 20) // args.volumes, rng)
        else:
            sizes = part_sizes_many(args.parts, rng)
        listed = {}
        for i, size in enumerate(sizes):
            month = MONTHS[i % len(MONTHS)]
            level = "big" if size >= BIG_PART_BYTES else "small"
            name = part_name(v, i)
            make_part(root, level, month, name, size, rng, pool, files, v)
            listed.setdefault(month, ([], []))[level == "big"].append(name)
        if args.kind == "big" and args.large_mb > 0 and v == 0:
            # Its own generator, so that the other parts are those of a run without it.
            large_rng = random.Random("large %d" % args.seed)
            large.append(make_large_part(root, args.large_mb, len(sizes), large_rng,
                                         pool.with_rng(large_rng)))
            listed.setdefault(MONTHS[0], ([], []))[1].append(part_name(0, len(sizes)))
        write_parts_json(root, listed)
        print("  %s: %d parts, %.0f MB" % (root, len(sizes), sum(sizes) / 1e6))
    with open(os.path.join(args.out, "files.txt"), "w") as f:
        for v, rel in files:
            f.write("%d %s\n" % (v, rel))
    if large:
        with open(os.path.join(args.out, "large.txt"), "w") as f:
            f.write("0 %s\n" % large[0])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: exit as a shell would, without a traceback
        sys.exit(130)
