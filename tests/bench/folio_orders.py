#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The page-cache folios that hold each FILE, by size (as root).

    folio_orders.py FILE...

Each file is mapped (MAP_SHARED, read-only) and every page touched, so it is in
the page cache; /proc/self/pagemap gives each page's frame and /proc/kpageflags
tells a large folio's head (KPF_COMPOUND_HEAD) from its tails. Prints one line per
file: "PATH: BYTES bytes in COUNTxSIZE ...".

Why: a cached re-read copies folio by folio, and small folios cost more per byte.
On Linux 6.18 a FUSE file's page cache has only 4 KiB folios whatever max_read,
max_write or max_pages the daemon asks for, where ext4 uses folios up to 2 MiB:
compare a volume file with the same file through a vmunionfs mount.
"""
import collections
import ctypes
import os
import struct
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")
KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL = 1 << 15, 1 << 16
PFN_MASK = (1 << 55) - 1
PROT_READ, MAP_SHARED = 1, 1

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def page_flags(addr, pages):
    """The kpageflags of each page mapped at addr."""
    with open("/proc/self/pagemap", "rb") as pagemap, open("/proc/kpageflags", "rb") as kpf:
        pagemap.seek(addr // PAGE * 8)
        entries = struct.unpack("%dQ" % pages, pagemap.read(pages * 8))
        flags = []
        for entry in entries:
            kpf.seek((entry & PFN_MASK) * 8)
            flags.append(struct.unpack("Q", kpf.read(8))[0])
        return flags


def folio_sizes(path):
    """(file size, Counter of folio sizes in pages)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        pages = (size + PAGE - 1) // PAGE
        if pages == 0:
            return size, collections.Counter()
        addr = libc.mmap(None, size, PROT_READ, MAP_SHARED, fd, 0)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            raise OSError(ctypes.get_errno(), "mmap", path)
        try:
            for i in range(pages):  # fault every page in
                ctypes.c_char.from_address(addr + i * PAGE).value
            flags = page_flags(addr, pages)
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)
    sizes, run = collections.Counter(), 0
    for f in flags:
        if f & KPF_COMPOUND_TAIL and run:
            run += 1
            continue
        if run:
            sizes[run] += 1
        run = 1
    if run:
        sizes[run] += 1
    return size, sizes


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(sys.argv) == 2 else 2
    for path in sys.argv[1:]:
        size, sizes = folio_sizes(path)
        text = " ".join("%dx%dK" % (n, pages * PAGE // 1024) for pages, n in sorted(sizes.items()))
        print("%s: %d bytes in %s" % (path, size, text or "no pages"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
