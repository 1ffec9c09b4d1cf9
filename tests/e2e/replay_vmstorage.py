#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Replays on a merged mount what vmstorage does at startup and during a
merge (vmstorage-layout.md sections 3, 4 and 6), for layout generations
whose binaries Debian does not ship (v1.96 cluster: B2, v1.150: C).

Usage: replay_vmstorage.py startup MOUNT GEN     -> JSON state on stdout
       replay_vmstorage.py merge MOUNT GEN       -> JSON of what it changed
       replay_vmstorage.py verify MOUNT GEN STATE_JSON

Exit 0 when every step behaved as on a real filesystem; any OSError (EXDEV,
EROFS, ENOSYS...) is the failure vmstorage would panic on.
"""
import fcntl
import json
import mmap
import os
import re
import sys
import time

HEX16 = re.compile(r"^[0-9A-F]{16}$")
PARTITION = re.compile(r"^[0-9]{4}_[0-9]{2}$")


def write_atomic(path, data):
    # lib/fs MustWriteAtomic: tmp file, fsync, rename over, fsync the dir.
    tmp = "%s.tmp.%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, path)
    dfd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)


def read_fully_mmap(path):
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return 0
        with mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ) as m:
            return len(m[:])


def level_dirs(gen):
    return ["data/small", "data/big"] + (["data/indexdb"] if gen == "C" else [])


def partition_parts(mnt, level, partition):
    """The listed parts of a level dir, as vmstorage reads parts.json."""
    if level == "data/indexdb":
        return json.load(open(os.path.join(mnt, level, partition, "parts.json")))
    j = json.load(open(os.path.join(mnt, "data/small", partition, "parts.json")))
    return j["Small" if level == "data/small" else "Big"]


def startup(mnt, gen):
    state = {"parts": {}, "tables": [], "bytes_read": 0}
    # Steps 1-7: lock, snapshots, caches, metadata.
    lock = os.open(os.path.join(mnt, "flock.lock"), os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # POSIX locks too
    assert not os.path.exists(os.path.join(mnt, "restore-in-progress"))
    os.makedirs(os.path.join(mnt, "snapshots"), exist_ok=True)
    os.makedirs(os.path.join(mnt, "cache"), exist_ok=True)
    write_atomic(os.path.join(mnt, "cache", "next_day_metric_ids_v2"), b"\0" * 64)
    os.makedirs(os.path.join(mnt, "metadata"), exist_ok=True)
    meta = os.path.join(mnt, "metadata", "minTimestampForCompositeIndex")
    if not os.path.exists(meta):
        write_atomic(meta, b"\0" * 8)
    # Legacy/global indexdb tables: vmstorage keeps the newest 3 (B2) or 2.
    idx = os.path.join(mnt, "indexdb")
    if os.path.isdir(idx):
        tables = sorted(t for t in os.listdir(idx) if HEX16.match(t))
        state["tables"] = tables
        want = 3 if gen == "B2" else 2
        if len(tables) != want:
            raise SystemExit("indexdb holds %d tables, vmstorage %s keeps %d: %s"
                             % (len(tables), gen, want, tables))
        for t in tables:
            for part in json.load(open(os.path.join(idx, t, "parts.json"))):
                for f in os.listdir(os.path.join(idx, t, part)):
                    state["bytes_read"] += read_fully_mmap(os.path.join(idx, t, part, f))
    # Step 10: partitions; every listed part must exist, unlisted ones are
    # deleted (there must be none), metaindex read fully (mmap).
    for level in level_dirs(gen):
        os.makedirs(os.path.join(mnt, level, "snapshots"), exist_ok=True)
        for p in sorted(os.listdir(os.path.join(mnt, level))):
            if p == "snapshots":
                continue
            if not PARTITION.match(p):
                raise SystemExit("%s/%s: not a partition name, vmstorage would panic" % (level, p))
            listed = partition_parts(mnt, level, p)
            on_disk = [d for d in os.listdir(os.path.join(mnt, level, p))
                       if os.path.isdir(os.path.join(mnt, level, p, d))]
            for part in listed:
                if part not in on_disk:
                    raise SystemExit("%s/%s lists %s, missing: vmstorage panics" % (level, p, part))
                state["bytes_read"] += read_fully_mmap(os.path.join(mnt, level, p, part, "metaindex.bin"))
            extra = sorted(set(on_disk) - set(listed))
            if extra:
                raise SystemExit("%s/%s: unlisted dirs %s would be deleted" % (level, p, extra))
            state["parts"]["%s/%s" % (level, p)] = sorted(listed)
    return state


def remove_dir_v1123(path):
    # lib/fs MustRemoveDir (v1.123+): marker first, then the rest, then the dir.
    marker = os.path.join(path, ".delete-this-dir")
    os.close(os.open(marker, os.O_CREAT | os.O_WRONLY, 0o644))
    for f in os.listdir(path):
        if f != ".delete-this-dir":
            os.unlink(os.path.join(path, f))
    os.unlink(marker)
    os.rmdir(path)


def merge(mnt, gen):
    """Merges every small part of the fullest partition into one new part,
    as a background merge does, and snapshots the result."""
    candidates = []
    for p in os.listdir(os.path.join(mnt, "data/small")):
        if PARTITION.match(p):
            candidates.append((len(partition_parts(mnt, "data/small", p)), p))
    count, partition = max(candidates)
    pdir = os.path.join(mnt, "data/small", partition)
    j = json.load(open(os.path.join(pdir, "parts.json")))
    sources = list(j["Small"])
    new = "%016X" % time.time_ns()
    # The new part: files written and fsynced in its final dir.
    os.mkdir(os.path.join(pdir, new))
    total = 0
    for name in ("metaindex.bin", "index.bin", "timestamps.bin", "values.bin"):
        data = b"".join(open(os.path.join(pdir, s, name), "rb").read() for s in sources)
        total += len(data)
        fd = os.open(os.path.join(pdir, new, name), os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
    write_atomic(os.path.join(pdir, new, "metadata.json"), b'{"RowsCount":1,"BlocksCount":1,'
                 b'"MinTimestamp":0,"MaxTimestamp":0,"MinDedupInterval":0}')
    dfd = os.open(pdir, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    # parts.json swapped atomically, then the sources removed.
    write_atomic(os.path.join(pdir, "parts.json"),
                 json.dumps({"Small": [new], "Big": j["Big"]}, separators=(",", ":")).encode())
    for s in sources:
        remove_dir_v1123(os.path.join(pdir, s))
    # A snapshot hard-links the part files.
    snap = os.path.join(mnt, "snapshots", "20260101000000-" + new, "data/small", partition, new)
    os.makedirs(snap)
    for f in os.listdir(os.path.join(pdir, new)):
        os.link(os.path.join(pdir, new, f), os.path.join(snap, f))
    # Directory renames of lower dirs must not fail with EXDEV.
    big = os.path.join(mnt, "data/big", partition)
    os.rename(big, big + ".renamed")
    os.rename(big + ".renamed", big)
    # Empty partition dirs are deleted and re-created (v1.123+).
    os.rmdir(big)
    os.mkdir(big)
    return {"partition": partition, "new": new, "sources": sources, "bytes": total,
            "snapshot": os.path.relpath(snap, mnt)}


def verify(mnt, gen, change):
    pdir = os.path.join(mnt, "data/small", change["partition"])
    j = json.load(open(os.path.join(pdir, "parts.json")))
    assert j["Small"] == [change["new"]], j
    for s in change["sources"]:
        assert not os.path.exists(os.path.join(pdir, s)), s
    size = sum(os.path.getsize(os.path.join(pdir, change["new"], f))
               for f in ("metaindex.bin", "index.bin", "timestamps.bin", "values.bin"))
    assert size == change["bytes"], (size, change["bytes"])
    snap = os.path.join(mnt, change["snapshot"])
    for f in os.listdir(snap):
        a, b = os.stat(os.path.join(snap, f)), os.stat(os.path.join(pdir, change["new"], f))
        assert a.st_ino == b.st_ino and a.st_nlink == 2, f
    return startup(mnt, gen)


def main():
    cmd, mnt, gen = sys.argv[1:4]
    if cmd == "startup":
        out = startup(mnt, gen)
    elif cmd == "merge":
        startup(mnt, gen)
        out = merge(mnt, gen)
    else:
        out = verify(mnt, gen, json.load(open(sys.argv[4])))
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
