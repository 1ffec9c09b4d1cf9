#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpora of the fuzz harnesses (tests/fuzz/corpus/NAME/)
from the sample volumes in tests/data. Deterministic; rerun it after the
sample volumes change:  python3 tests/fuzz/make-corpus.py"""
import hashlib
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
OUT = os.path.join(HERE, "corpus")
SEP = b"--vmfuzz--"
SETS = ["v1.79.5", "v1.96.0-cluster", "v1.150.0-cluster"]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def put(name, data):
    """One seed, named by its hash (as libFuzzer names them)."""
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def walk(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(filenames):
            yield os.path.join(dirpath, n)


def part_dirs(node, kind):
    """Data parts ('small'/'big') or mergeset parts ('indexdb') of a node."""
    for p in walk(os.path.join(DATA, node)):
        if os.path.basename(p) != "metaindex.bin":
            continue
        d = os.path.dirname(p)
        if ("/indexdb/" in d) == (kind == "indexdb"):
            yield d


def escape(data):
    out = []
    for b in data:
        c = chr(b)
        if c == "\\":
            out.append("\\\\")
        elif 32 <= b < 127 and c != "\t":
            out.append(c)
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def tree(nodes, contents=("parts.json", "metadata.json", "minTimestampForCompositeIndex")):
    """A plan harness input: the nodes' trees, small files with their bytes."""
    lines = []
    for i, node in enumerate(nodes):
        root = os.path.join(DATA, node)
        if i:
            lines.append("V")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            if rel != "." and not dirnames and not filenames:
                lines.append("D " + rel)
            for n in sorted(filenames):
                p = os.path.relpath(os.path.join(dirpath, n), root)
                body = escape(read(os.path.join(dirpath, n))) if n in contents else ""
                lines.append("F %s\t%s" % (p, body))
    return ("\n".join(lines) + "\n").encode()


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    for s in SETS:
        node0, node1 = s + "/node0", s + "/node1"
        for p in walk(os.path.join(DATA, node0)):
            n = os.path.basename(p)
            if n == "parts.json":
                put("partsjson", read(p))
            elif n == "metadata.json":
                put("metadata", read(p))
            elif n == "minTimestampForCompositeIndex":
                put("metadata", read(p))
            if os.path.basename(os.path.dirname(p)) not in ("indexdb", "metadata"):
                put("partname", os.path.basename(os.path.dirname(p)).encode())
        for d in list(part_dirs(node0, "small"))[:2]:
            f = lambda n: read(os.path.join(d, n))
            sizes = struct.pack("<QQ", os.path.getsize(os.path.join(d, "timestamps.bin")),
                                os.path.getsize(os.path.join(d, "values.bin")))
            meta = [f("metadata.json")] if os.path.exists(os.path.join(d, "metadata.json")) else []
            put("datapart", sizes + SEP.join([f("metaindex.bin"), f("index.bin")] + meta))
        # The smallest mergeset part of the set, if it is small.
        parts = [d for n in range(4) for d in part_dirs("%s/node%d" % (s, n), "indexdb")]
        size = lambda d: sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d))
        for d in sorted(parts, key=size)[:1]:
            if size(d) > 200000:
                continue
            f = lambda n: read(os.path.join(d, n))
            files = [f("metaindex.bin"), f("index.bin"), f("items.bin"), f("lens.bin"), b"\x03"]
            if os.path.exists(os.path.join(d, "metadata.json")):
                files.append(f("metadata.json"))
            put("mergeset", SEP.join(files))
        put("plan", tree([node0]))
        put("plan", tree([node0, node1]))
    # Hand-made inputs for what the samples do not show.
    for text in [b"[]", b"null", b'{"Small":null,"Big":[]}', b'{"Small":["a","a"]}',
                 b'{"Small":["../x"]}', b'["txn"]', b'{"Small":[1]}']:
        put("partsjson", text)
    for text in [b'{"RowsCount":1e300,"BlocksCount":-1}', b'{"ItemsCount":1.5,"BlocksCount":2}',
                 b'{"RowsCount":18446744073709551615,"BlocksCount":1,"MinTimestamp":-9.3e18,'
                 b'"MaxTimestamp":9.3e18}']:
        put("metadata", text)
    for name in [b"1_1_20240101000000.000_20240101000000.000_0123456789ABCDEF",
                 b"99999999999999999999_1_0123456789ABCDEF", b"1_1_0123456789abcdef",
                 b"1_1_2024013100000 .000_20240101000000.000_0123456789ABCDEF"]:
        put("partname", name)
    for ident in [b'{"format":"vmunionfs-upper/1","volumes":["/x"],"plan":"0000000000000000"}\n',
                  b'{"volumes":[]}', b"", b"\x00", b"{"]:
        put("upper_identity", ident)
    for stub in [b"0:data/small/2024_01/parts.json", b"0:flock.lock", b"0:../node1/flock.lock",
                 b"0:/etc/passwd", b"-1:x", b"1:x", b":x", b"0:", b"4294967296:flock.lock",
                 b"0:data/../flock.lock", b"0:metadata/minTimestampForCompositeIndex"]:
        put("upper_stub", stub)
    put("plan", b"D data/small/2024_01\nF data/small/2024_01/parts.json\t{\"Small\":[],\"Big\":[]}\n"
                b"L data/small/2024_02\t/etc\nL flock.lock\t../x\nF indexdb/parts.json\t[]\n")
    put("plan", b"F data/small/2024_01/parts.json\t{\"Small\":[\"p\"],\"Big\":[]}\n"
                b"L data/small/2024_01/p\t/tmp\nV\nD data/small/2024_01/p\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
