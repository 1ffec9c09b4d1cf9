#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The names of a file known before a hard link made through the preview:
# the name linked from, looked up while the file had one link (its
# attributes cached for the timeout, a day by default), and a name unlinked
# since whose fd is still open. The new name is another FUSE node (nodes are
# keyed by parent and name), so the kernel kept the old nodes' attributes:
# stat of the first name showed the old size and one link, and an fd open on
# it read the old bytes. The daemon now tells the kernel to drop them after a
# link, and never lets it cache a node whose name is gone.
# preview-hardlink-stale.sh checks the new name.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd python3

preview_of_two
dir="$mnt/links"
mkdir "$dir"
tap_ok $? "made a dir through the preview"
# A volume file not yet copied up: its stub is what gets linked.
stub=$mnt/$(cd "$mnt" && find data/small -name values.bin | sort | head -n 1)
big_stub=$mnt/$(cd "$mnt" && find data/small -name index.bin | sort | head -n 1)

cat >"$SCRATCH/cases.py" <<'PY'
import os, sys

def new_file(path):
    with open(path, "wb") as f:
        f.write(b"0123456789")
    return os.stat(path)  # cached: one link

def shown(*paths):
    return " ".join("%d/%d" % (os.stat(p).st_size, os.stat(p).st_nlink) for p in paths)

def case_truncate(d, stub):
    # the defect as found: a volume file linked, the new name truncated
    a, b = stub, os.path.join(d, "truncated")
    os.stat(a)
    os.link(a, b)
    os.truncate(b, 3)
    st = os.stat(a)
    return "%d %d %d" % (st.st_size, st.st_nlink, len(open(a, "rb").read()))

def case_third_name(d, _):
    a, b, c = (os.path.join(d, n) for n in ("third-a", "third-b", "third-c"))
    new_file(a)
    os.link(a, b)
    shown(a, b)  # both cached with two links (timeout 0)
    os.link(b, c)
    os.truncate(c, 4)
    return shown(a, b, c)

def case_third_from_first(d, _):
    # the second and third names both made from the first, stat of the
    # first only at the end
    a, b, c = (os.path.join(d, n) for n in ("first-a", "first-b", "first-c"))
    new_file(a)
    os.link(a, b)
    os.link(a, c)
    with open(b, "ab") as f:
        f.write(b"+b")
    return shown(a, b, c)

def case_write_other(d, _):
    # sizes and mtimes of both names after a write through the new one
    a, b = os.path.join(d, "write-a"), os.path.join(d, "write-b")
    before = new_file(a)
    os.link(a, b)
    fd = os.open(b, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"appended")
    os.close(fd)
    sa, sb = os.stat(a), os.stat(b)
    return "size %d %d, same mtime %s, mtime moved %s" % (
        sa.st_size, sb.st_size, sa.st_mtime_ns == sb.st_mtime_ns,
        sa.st_mtime_ns != before.st_mtime_ns)

def case_unlink_new(d, _):
    a, b = os.path.join(d, "unlink-a"), os.path.join(d, "unlink-b")
    new_file(a)
    os.link(a, b)
    links = os.stat(a).st_nlink
    os.unlink(b)
    return "%d %d" % (links, os.stat(a).st_nlink)

def case_rename_new(d, _):
    # the new name renamed, then truncated under its new name
    a, b, c = (os.path.join(d, n) for n in ("moved-a", "moved-b", "moved-c"))
    new_file(a)
    os.link(a, b)
    os.rename(b, c)
    os.truncate(c, 2)
    return shown(a, c)

def case_rename_over(d, _):
    # another file renamed over the new name: the first name has one link again
    a, b, x = (os.path.join(d, n) for n in ("over-a", "over-b", "over-x"))
    new_file(a)
    os.link(a, b)
    shown(a)
    with open(x, "wb") as f:
        f.write(b"x")
    os.rename(x, b)
    return shown(a, b)

def case_unlinked_fd(d, _):
    # an fd open on a name unlinked since: fstat of it sees a later link
    # made from another name, and a truncation through the newest name
    a, b, c = (os.path.join(d, n) for n in ("gone-a", "gone-b", "gone-c"))
    new_file(a)
    fd = os.open(a, os.O_RDONLY)
    os.link(a, b)
    os.unlink(a)
    os.fstat(fd)  # cached: one link, b's
    os.link(b, c)
    os.truncate(c, 5)
    st = os.fstat(fd)
    return "%d/%d" % (st.st_size, st.st_nlink)

def case_unlinked_fd_truncate(d, _):
    # no link after the unlink: a truncation through the name left
    a, b = os.path.join(d, "left-a"), os.path.join(d, "left-b")
    new_file(a)
    fd = os.open(a, os.O_RDONLY)
    os.link(a, b)
    os.unlink(a)
    os.fstat(fd)  # cached: one link, b's
    os.truncate(b, 7)
    st = os.fstat(fd)
    return "%d/%d" % (st.st_size, st.st_nlink)

def case_stub_write(d, stub):
    # a stub linked, written through the new name: the first name (stat, a
    # new open, an fd open and read before the link) reads the new bytes,
    # never the volume file's or zeros
    a, b = stub, os.path.join(d, "stub-b")
    with open(a, "rb") as f:
        old = f.read()
    fd = os.open(a, os.O_RDONLY)
    os.pread(fd, len(old), 0)  # cached pages of the volume file
    os.link(a, b)
    fw = os.open(b, os.O_WRONLY)
    os.pwrite(fw, b"NEWBYTES", 100)
    os.close(fw)
    want = old[:100] + b"NEWBYTES" + old[108:]
    kept = os.pread(fd, len(old) + 1, 0)  # before a new open drops the pages
    with open(a, "rb") as f:
        fresh = f.read()
    return "%s %s %s %d" % (kept == want, fresh == want, open(b, "rb").read() == want,
                            os.stat(a).st_nlink)

# One python for all cases: its start takes most of the time.
d, stubs = sys.argv[1], {"truncate": sys.argv[2], "stub_write": sys.argv[3]}
for name in sys.argv[4:]:
    print("%s: %s" % (name, globals()["case_" + name](d, stubs.get(name))), flush=True)
PY

python3 "$SCRATCH/cases.py" "$dir" "$stub" "$big_stub" truncate third_name third_from_first \
	write_other unlink_new rename_new rename_over unlinked_fd \
	unlinked_fd_truncate stub_write >"$SCRATCH/out" 2>&1
tap_ok $? "the cases ran" || tap_diag <"$SCRATCH/out"
check() {
	tap_is "$(sed -n "s/^$1: //p" "$SCRATCH/out")" "$2" "$3"
}
check truncate "3 2 3" "a volume file linked, the new name truncated: the first name shows the size and links"
check third_name "4/3 4/3 4/3" "a third name made from the second, truncated: every name shows it"
check third_from_first "12/3 12/3 12/3" "two names made from the first, a write through one: every name shows it"
check write_other "size 18 18, same mtime True, mtime moved True" \
	"a write through the new name: both names show its size and mtime"
check unlink_new "2 1" "the new name unlinked: the first name shows one link again"
check rename_new "2/2 2/2" "the new name renamed, then truncated: the first name shows it"
check rename_over "10/1 1/1" "another file renamed over the new name: the first name shows one link"
check unlinked_fd "5/2" "an fd on an unlinked name sees a later link and truncation of the file"
check unlinked_fd_truncate "7/1" "an fd on an unlinked name sees a truncation through the name left"
check stub_write "True True True 2" \
	"a stub linked, written through the new name: the first name reads the new bytes (an fd open before, a new fd)"

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
