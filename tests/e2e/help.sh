#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# --help and the man pages agree: every option a --help lists is in the man
# page, every long option of a man page is in some --help, each subcommand
# has its own help, and the whatis lines name every command.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd python3

help=$(scratch_dir help)
for cmd in "" plan check materialize verify rollback finalize; do
	# shellcheck disable=SC2086  # the empty command is no argument
	"$VMUNION" $cmd --help >"$help/cli${cmd:+-$cmd}" 2>&1
	tap_ok $? "vmunion ${cmd:+$cmd }--help exits 0"
done
for cmd in plan check materialize verify rollback finalize; do
	head -n 1 "$help/cli-$cmd" | grep -q "^Usage: vmunion $cmd "
	tap_ok $? "vmunion $cmd --help is $cmd's own help" || head -n 3 "$help/cli-$cmd" | tap_diag
	"$VMUNION" "$cmd" -h >"$help/short" 2>&1
	cmp -s "$help/short" "$help/cli-$cmd"
	tap_ok $? "vmunion $cmd -h is the same"
done
"$VMUNION" verify --live http://127.0.0.1:1 --help >"$help/cli-verify-live" 2>&1
head -n 1 "$help/cli-verify-live" | grep -q "^Usage: vmunion verify --live URL "
tap_ok $? "vmunion verify --live URL --help is its own help"
"$VMUNIONFS" --help >"$help/daemon" 2>&1
tap_ok $? "vmunionfs --help exits 0"
grep -qE -- '--jobs N .*1 to 256 \(default' "$help/cli-check"
tap_ok $? "check --help gives --jobs' range and default"

# compare PAGE HELP... : prints what one side lists and the other lacks.
compare() {
	python3 - "$@" <<'PY'
import re, sys
page, helps = sys.argv[1], sys.argv[2:]
src = open(page).read()
# Groff to text, enough for option names.
text = re.sub(r'\\f[BIRP]|\\f\(..|\\&', '', src).replace('\\-', '-')
# vmunionfs(1) names vmunion's options in passing ("vmunion materialize --upper").
if page.endswith('vmunionfs.1'):
    text = re.sub(r'vmunion [a-z]+(?: --?[a-z][a-z-]*)+', '', text)
# Other programs' options named in passing are not ours.
help_text = ''.join(open(h).read() for h in helps).replace('fusermount3 -u', '')
opt = r'(?<![\w-])(--?[a-zA-Z][a-zA-Z-]*)'
help_opts = set(re.findall(opt, help_text))
help_o = set(re.findall(r'-o ([a-z_]+=?)', help_text))
page_long = set(re.findall(r'(?<![\w-])(--[a-z][a-z-]*)', text))
page_long = {o for o in page_long if o != '--prefix' and not o.startswith('--with')}  # configure's
page_o = set(re.findall(r'-o ([a-z_]+=?)', text))
problems = []
for o in sorted(help_opts):
    if not re.search(r'(?<![\w-])' + re.escape(o) + r'(?![\w-])', text):
        problems.append(f"{o}: in --help, not in {page}")
for o in sorted(help_o - page_o):
    problems.append(f"-o {o}: in --help, not in {page}")
for o in sorted(page_long - help_opts):
    problems.append(f"{o}: in {page}, in no --help")
# The page's own -o options (.TP items) must be in the help too.
for o in re.findall(r'^\.BI? "?-o ([a-z_]+=?)', text, re.M):
    if o not in help_o:
        problems.append(f"-o {o}: in {page}, not in --help")
if problems:
    print('\n'.join(problems))
sys.exit(1 if problems else 0)
PY
}

compare "$top_srcdir/man/vmunion.1" "$help"/cli* | tap_diag
tap_ok "${PIPESTATUS[0]}" "vmunion: every option of every --help is in vmunion.1, and back"
compare "$top_srcdir/man/vmunionfs.1" "$help/daemon" | tap_diag
tap_ok "${PIPESTATUS[0]}" "vmunionfs: every option of --help is in vmunionfs.1, and back"

sed -n '/^\.SH NAME/{n;p}' "$top_srcdir/man/vmunion.1" >"$help/whatis"
for cmd in plan check materialize verify; do
	grep -qw "$cmd" "$help/whatis"
	tap_ok $? "vmunion.1's whatis line names $cmd" || tap_diag <"$help/whatis"
done
grep -q '^\.SH FSTAB' "$top_srcdir/man/vmunionfs.1" &&
	grep -q 'mount\.fuse3 (8)' "$top_srcdir/man/vmunionfs.1"
tap_ok $? "vmunionfs.1 has FSTAB and SEE ALSO mount.fuse3(8)"
grep -A3 '^\.SH EXIT STATUS' "$top_srcdir/man/vmunionfs.1" | grep -q 'background'
tap_ok $? "vmunionfs.1: what exit 0 means in the background"

# A mismatch must be caught, or the comparisons above prove nothing.
printf 'Usage: x\n  --frobnicate  new\n' >"$help/fake"
compare "$top_srcdir/man/vmunion.1" "$help"/cli* "$help/fake" >/dev/null
tap_ok $((!$?)) "an option missing from the page is caught"
tap_done
