#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `make install DESTDIR=...` lays out every file an operator needs: both
# binaries, their man pages, the mount helper, the docs and licence, the
# bash completion and the systemd unit; the installed programs report
# configure.ac's version; `make uninstall` takes it all away again.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd make

dest=$(scratch_dir dest)
make -C "$top_builddir" install DESTDIR="$dest" >"$SCRATCH/install.log" 2>&1
tap_ok $? "make install DESTDIR=..." || _log_tail "$SCRATCH/install.log"

# The configured directories, as make expands them (a make under make
# check may say more than asked: take the marked line).
dirs=$(cd "$top_builddir" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -f - print-dirs <<'MK' | sed -n 's/^DIRS: //p'
include Makefile
print-dirs:
	@echo "DIRS: $(bindir) $(man1dir) $(mounthelperdir) $(docdir) $(bashcompletiondir) $(systemdsystemunitdir) $(PACKAGE_VERSION)"
MK
)
read -r bindir man1dir helperdir docdir compdir unitdir version <<<"$dirs"
tap_ok $? "the install directories: $dirs"

for f in "$bindir/vmunionfs" "$bindir/vmunion" "$helperdir/mount.vmunionfs"; do
	test -x "$dest$f"
	tap_ok $? "installed, executable: $f"
done
for f in "$man1dir/vmunionfs.1" "$man1dir/vmunion.1" "$docdir/README.md" \
	"$docdir/LICENSE" "$docdir/fstab.example" "$compdir/vmunion" "$compdir/vmunionfs" \
	"$unitdir/vmunionfs-preview.service"; do
	test -s "$dest$f"
	tap_ok $? "installed: $f"
done
grep -q 'Apache License' "$dest$docdir/LICENSE"
tap_ok $? "the licence is Apache-2.0"
grep -qF "$bindir/vmunionfs" "$dest$helperdir/mount.vmunionfs"
tap_ok $? "the mount helper runs the installed vmunionfs"
grep -qF "ExecStart=$bindir/vmunionfs " "$dest$unitdir/vmunionfs-preview.service"
tap_ok $? "the unit runs the installed vmunionfs"

tap_is "$("$dest$bindir/vmunion" --version)" "vmunion $version" "vmunion --version is configure.ac's"
"$dest$bindir/vmunionfs" --version | grep -qx "vmunionfs $version (libfuse .*)"
tap_ok $? "vmunionfs --version is configure.ac's ($version)"
grep -q "^\.TH VMUNIONFS 1 .*\"vmunionfs $version\"" "$dest$man1dir/vmunionfs.1" &&
	grep -q "^\.TH VMUNION 1 .*\"vmunionfs $version\"" "$dest$man1dir/vmunion.1"
tap_ok $? "the man pages carry the version"

make -C "$top_builddir" uninstall DESTDIR="$dest" >"$SCRATCH/uninstall.log" 2>&1
tap_ok $? "make uninstall DESTDIR=..." || _log_tail "$SCRATCH/uninstall.log"
left=$(find "$dest" -type f -o -type l)
tap_is "$left" "" "uninstall leaves no file behind"
tap_done
