#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# shellcheck source-path=SCRIPTDIR
# tests/bench/run.sh - the benchmark of issue 11 in one bounded run (`make bench`).
#
# Usage: tests/bench/run.sh [--help]        (as root: mounts, drop_caches)
#
# 1. plan: `vmunion plan --no-check` (the merge a mount does first) on a synthetic
#    4-volume gen-B2 set of BENCH_FILES files (read_gen.py many), against
#    `find VOLUME... -printf '%s %T@\n'`, cold and warm; and on half the volumes, to
#    show that the time grows linearly with the files (warm: fastest of 3). Peak RSS.
# 2. read.sh on the same set and on a set of large parts (BENCH_SIZE_MB): mount time
#    cold/warm against the native scan, daemon RSS after mount and after a walk,
#    find+stat first and second pass, sequential read, re-read, first read and re-read
#    of one large part file (BENCH_LARGE_MB), 4 parallel readers, random 4 KiB preads;
#    native, vmunionfs (read-only and preview), fuse-overlayfs, mergerfs (defaults and
#    cache.files=auto-full), unionfs-fuse (those installed).
# 3. materialize.sh: materialize in each mode and --into against cp -a (BENCH_MAT_MIB).
# 4. check.sh, only with BENCH_CHECK=1: it writes its set with victoria-metrics first,
#    which alone takes minutes.
# 5. vm.sh: victoria-metrics startup and a full export on the preview and on
#    fuse-overlayfs (if installed) against the materialized copy, on a set written by
#    victoria-metrics (BENCH_VM_SERIES series per volume); every export checked against
#    the set's manifest.
# 6. scale.sh: the read-only and the preview mount of BENCH_SCALE_FILES and 2.5 times as
#    many files, to show that the mount time grows linearly with the files.
#
# Environment (defaults keep the run under 10 minutes on 2 cores):
#   BENCH_FILES=40000  BENCH_SIZE_MB=512  BENCH_LARGE_MB=1024  BENCH_MAT_MIB=512
#   BENCH_REPEAT=1
#   BENCH_DIR=/var/tmp (a disk; the sets go there)  BENCH_CHECK=0
#   BENCH_VM=1 (0 skips 5)  BENCH_VM_REPEAT=3  BENCH_VM_SERIES=25000 ... as for vm.sh
#   BENCH_SCALE=1 (0 skips 6)  BENCH_SCALE_REPEAT=3  BENCH_SCALE_FILES=40000 (200000:
#   issue 11's 200k against 500k: minutes more, many while the preview fills its upper)
#   BENCH_OUT=FILE  also write the whole report to FILE
#   METHODS, RAND_READS ... as for read.sh; VMUNION, VMUNIONFS (default: the build dir)
# Exit status: 0 when every part ran, 1 when one failed, 2 on a setup error.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench_lib.sh
. "$here/bench_lib.sh" # bench_help only: its die is replaced below
bench_help "$@"
top=${top_builddir:-$(cd "$here/../.." && pwd)}
BENCH_FILES=${BENCH_FILES-40000}
BENCH_SIZE_MB=${BENCH_SIZE_MB-512}
BENCH_LARGE_MB=${BENCH_LARGE_MB-1024} # set but empty is refused below, as read.sh does
BENCH_MAT_MIB=${BENCH_MAT_MIB-512}
BENCH_REPEAT=${BENCH_REPEAT-1}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
BENCH_CHECK=${BENCH_CHECK:-0}
BENCH_VM=${BENCH_VM:-1}
BENCH_VM_REPEAT=${BENCH_VM_REPEAT-3}
BENCH_SCALE=${BENCH_SCALE:-1}
BENCH_SCALE_REPEAT=${BENCH_SCALE_REPEAT-3}
BENCH_SCALE_FILES=${BENCH_SCALE_FILES-40000}
PYTHON3=${PYTHON3:-python3}
export VMUNION=${VMUNION:-$top/vmunion}
export VMUNIONFS=${VMUNIONFS:-$top/vmunionfs}

die() {
	echo "run.sh: $*" >&2
	exit 2
}

[ "$#" -eq 0 ] || die "takes no arguments (knobs are environment variables; see --help)"

for knob in BENCH_FILES BENCH_SIZE_MB BENCH_LARGE_MB BENCH_MAT_MIB BENCH_REPEAT BENCH_VM_REPEAT \
	BENCH_SCALE_REPEAT BENCH_SCALE_FILES; do
	case "${!knob}" in
	'' | *[!0-9]* | 0) die "$knob must be a positive integer (got '${!knob}')" ;;
	??????????*) die "$knob must be a positive integer of at most 9 digits (got '${!knob}')" ;;
	esac
done
[ "$(id -u)" -eq 0 ] || die "run as root (mounts, and drop_caches for cold runs)"
[ -x "$VMUNION" ] || die "$VMUNION not built (make, or set VMUNION)"
[ -x "$VMUNIONFS" ] || die "$VMUNIONFS not built (make, or set VMUNIONFS)"
mkdir -p "$BENCH_DIR" || die "cannot create $BENCH_DIR"
work=$(mktemp -d "$BENCH_DIR/vmunion-run.XXXXXX") || die "cannot create a scratch dir"
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$work"' EXIT
# Ctrl-C stops the whole run: read.sh and the others catch it to clean up and exit
# 130, so bash would take it as handled by them and go on to the next part.
trap 'echo "run.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM
if [ -n "${BENCH_OUT:-}" ]; then
	exec > >(tee "$BENCH_OUT")
fi

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# timed LABEL RUNS CMD...: records "LABEL  seconds  peak-RSS-KiB" (GNU time) of the
# fastest of RUNS runs (warm runs are repeated: the machine may be shared).
timed() {
	local label=$1 runs=$2 best="" secs kib r
	shift 2
	for ((r = 0; r < runs; r++)); do
		/usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" ||
			{ echo "run.sh: $label failed: $(tail -1 "$work/err")" >&2; return 1; }
		read -r secs kib <"$work/time"
		if [ -z "$best" ] || awk -v a="$secs" -v b="$best" 'BEGIN { exit !(a < b) }'; then
			best=$secs
		fi
	done
	printf '%s\t%s\t%s\n' "$label" "$best" "$kib" >>"$work/plan.tsv"
}

failed=0
parts=$(((BENCH_FILES + 19) / 20)) # 4 volumes, 5 files a part
echo "== vmunionfs benchmark (issue 11), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "   $(uname -sr), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)" \
	"RAM, $BENCH_DIR on $(stat -f -c %T "$BENCH_DIR"); $("$VMUNIONFS" --version 2>&1 | head -1)"
echo "   command: BENCH_FILES=$BENCH_FILES BENCH_SIZE_MB=$BENCH_SIZE_MB BENCH_LARGE_MB=$BENCH_LARGE_MB" \
	"BENCH_MAT_MIB=$BENCH_MAT_MIB BENCH_REPEAT=$BENCH_REPEAT BENCH_CHECK=$BENCH_CHECK" \
	"BENCH_VM=$BENCH_VM BENCH_SCALE=$BENCH_SCALE BENCH_SCALE_FILES=$BENCH_SCALE_FILES $0"
echo
echo "== 1. plan (the merge of a mount) on 4 volumes x $parts parts ($((parts * 20)) files)"
"$PYTHON3" "$here/read_gen.py" many "$work/many" --volumes 4 --parts "$parts" >/dev/null ||
	die "read_gen.py many failed"
vols=("$work/many"/v0 "$work/many"/v1 "$work/many"/v2 "$work/many"/v3)
: >"$work/plan.tsv"
drop_caches
timed "find, cold" 1 find "${vols[@]}" -printf '%s %T@\n' || failed=1
drop_caches
timed "plan, cold" 1 "$VMUNION" plan --no-check "${vols[@]}" || failed=1
timed "find, warm" 3 find "${vols[@]}" -printf '%s %T@\n' || failed=1
timed "plan, warm" 3 "$VMUNION" plan --no-check "${vols[@]}" || failed=1
timed "find, warm, 2 volumes" 3 find "${vols[@]:0:2}" -printf '%s %T@\n' || failed=1
timed "plan, warm, 2 volumes" 3 "$VMUNION" plan --no-check "${vols[@]:0:2}" || failed=1
"$PYTHON3" - "$work/plan.tsv" "$((parts * 20))" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
files = int(sys.argv[2])
t = {label: (float(s), int(k)) for label, s, k in rows}
print("  %-24s %9s %12s  %s" % ("run", "seconds", "peak RSS", "ratio"))
for label, (s, k) in t.items():
    note = ""
    if label.startswith("plan"):
        base = t.get(label.replace("plan", "find"))
        if base and base[0] > 0:  # a tiny set's find can take 0.00 s
            note = "%.2fx find" % (s / base[0])
        if label == "plan, warm":
            note += ", %.0f bytes/file" % (k * 1024 / files)
    print("  %-24s %9.2f %9.1f MiB  %s" % (label, s, k / 1024, note))
if "plan, warm" in t and t.get("plan, warm, 2 volumes", (0,))[0] > 0:
    print("  linearity: 4 volumes take %.2fx the time of 2 (2.00x is linear)"
          % (t["plan, warm"][0] / t["plan, warm, 2 volumes"][0]))
EOF
echo
echo "== 2. mounts, walks and reads (read.sh)"
MANY_SET=$work/many VOLUMES=4 WALK_PARTS=$parts REPEAT=$BENCH_REPEAT BENCH_DIR=$BENCH_DIR \
	LARGE_MB=$BENCH_LARGE_MB "$here/read.sh" "$BENCH_SIZE_MB" 2> >(grep -v '^\[' >&2) || failed=1
rm -rf "$work/many"
echo
echo "== 3. materialize against cp -a (materialize.sh, $BENCH_MAT_MIB MiB)"
"$here/materialize.sh" "$BENCH_MAT_MIB" "$work/materialize" || failed=1
if [ "$BENCH_CHECK" = 1 ]; then
	echo
	echo "== 4. vmunion check (check.sh)"
	TMPDIR=$work "$here/check.sh" || failed=1
fi
if [ "$BENCH_VM" = 1 ]; then
	echo
	echo "== 5. victoria-metrics startup and a full export on the preview and on" \
		"fuse-overlayfs against the materialized copy (vm.sh)"
	BENCH_REPEAT=$BENCH_VM_REPEAT BENCH_DIR=$work "$here/vm.sh" 2> >(grep -v '^\[' >&2) ||
		failed=1
fi
if [ "$BENCH_SCALE" = 1 ]; then
	echo
	echo "== 6. mount time against the number of files (scale.sh)"
	BENCH_REPEAT=$BENCH_SCALE_REPEAT BENCH_DIR=$work "$here/scale.sh" "$BENCH_SCALE_FILES" \
		2> >(grep -v '^\[' >&2) || failed=1
fi
exit "$failed"
