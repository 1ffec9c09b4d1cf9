# SPDX-License-Identifier: Apache-2.0
"""A listing read a few entries at a time, with getdents64 calls of a given
size, as the listing tests need to stop a handle half-way (os.listdir and ls
read a dir in one call)."""
import ctypes
import os
import struct

GETDENTS64 = {'x86_64': 217, 'aarch64': 61}[os.uname().machine]
libc = ctypes.CDLL(None, use_errno=True)


def some(fd, size):
    """One getdents64 of size bytes: the names it gave."""
    buf = ctypes.create_string_buffer(size)
    n = libc.syscall(GETDENTS64, fd, buf, size)
    if n < 0:
        raise OSError(ctypes.get_errno(), 'getdents64')
    names, at = [], 0
    while at < n:
        reclen = struct.unpack_from('<H', buf.raw, at + 16)[0]
        names.append(buf.raw[at + 19:at + reclen].split(b'\0', 1)[0].decode())
        at += reclen
    return names


def rest(fd, size):
    """The names up to the end of the listing."""
    names = []
    while True:
        got = some(fd, size)
        if not got:
            return names
        names += got
