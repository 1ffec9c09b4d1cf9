#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# shellcheck source-path=SCRIPTDIR
# tests/bench/scale.sh - mount time against the number of files: the read-only mount and
# the preview mount of a set of FILES files and of one of 2.5 x FILES (issue 11: "mount
# time grows linearly with the files (500k within 2.5x of 200k)").
#
# Usage: tests/bench/scale.sh [FILES]        (as root)
#
#   FILES  files of the small set (default BENCH_SCALE_FILES, 40000); the large set has
#          2.5 x as many. BENCH_SCALE_FILES=200000 measures issue 11's 200k and 500k.
#
# The sets: `read_gen.py many` with 4 volumes of FILES/20 and 2.5 x FILES/20 small parts
# (5 files a part, real gen-B2 layout, sparse files). Warm cache: every volume is walked
# once before the timers. Each mount is timed from the start of `vmunionfs -f` until the
# mountpoint is in the mount table and answers a stat of its root; the daemon's CPU
# seconds at that moment are reported too (they move less than the wall time on a shared
# machine). Read-only: vmunionfs VOLUME... MNT; preview: vmunionfs -o upper=FRESH_DIR
# VOLUME... MNT. Both sets, both mounts, round-robin, BENCH_REPEAT rounds; the median is
# reported, and the ratio large / small: 2.50x is linear, below is better.
#
# Environment:
#   BENCH_SCALE_FILES=40000  BENCH_REPEAT=3  BENCH_DIR=/var/tmp (the sets and the uppers)
#   MOUNT_TIMEOUT=300 UNMOUNT_TIMEOUT=300 (seconds; every wait is bounded)
#   VMUNIONFS (default: the build dir), PYTHON3; KEEP=1 keeps the scratch dir
#
# Exit status: 0 every mount worked, 1 one failed, 2 setup error.
set -u -o pipefail

BENCH_NAME=scale.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=${top_builddir:-$(cd "$here/../.." && pwd)}
# shellcheck source=bench_lib.sh
. "$here/bench_lib.sh"
bench_help "$@"

BENCH_SCALE_FILES=${1:-${BENCH_SCALE_FILES-40000}}
BENCH_REPEAT=${BENCH_REPEAT-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
VMUNIONFS=${VMUNIONFS:-$top/vmunionfs}
PYTHON3=${PYTHON3:-python3}

positive_knobs BENCH_SCALE_FILES BENCH_REPEAT MOUNT_TIMEOUT UNMOUNT_TIMEOUT
[ "$BENCH_SCALE_FILES" -ge 200 ] || die "FILES must be at least 200"
[ "$(id -u)" -eq 0 ] || die "run as root (mounts)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"
[ -x "$VMUNIONFS" ] || die "$VMUNIONFS not built (make, or set VMUNIONFS)"
command -v "$PYTHON3" >/dev/null || die "python3 not found"

bench_scratch vmunion-scale
: >"$work/raw.tsv"

declare -A parts_of=([small]=$((BENCH_SCALE_FILES / 20)) [large]=$((BENCH_SCALE_FILES * 5 / 40)))
declare -A files_of=()
for set in small large; do
	log "writing the $set set: 4 volumes x ${parts_of[$set]} parts"
	"$PYTHON3" "$here/read_gen.py" many "$work/$set" --volumes 4 --parts "${parts_of[$set]}" \
		>/dev/null || die "read_gen.py many failed"
	files_of[$set]=$(find "$work/$set"/v? -type f | wc -l) # also warms the cache
done

echo "mount time against the number of files, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  $("$VMUNIONFS" --version 2>&1 | head -1); $(nproc) CPUs; $BENCH_DIR on" \
	"$(stat -f -c %T "$BENCH_DIR")"
echo "  sets: 4 volumes of small parts (read_gen.py many): ${files_of[small]} and" \
	"${files_of[large]} files; warm cache; median of $BENCH_REPEAT rounds, round-robin"

# mount_once SET MODE ROUND: one timed mount, then the unmount.
mount_once() {
	local set=$1 mode=$2 round=$3 opts=() cpu
	rm -rf "$work/upper"
	[ "$mode" = read-only ] || opts=(-o "upper=$work/upper")
	if ! TMPDIR=$work mount_fuse "$work/vmunionfs-$set-$mode.log" "$work/mnt" "$VMUNIONFS" -f \
		"${opts[@]}" "$work/$set"/v0 "$work/$set"/v1 "$work/$set"/v2 "$work/$set"/v3; then
		printf '%s\t%s\tFAILED\t-\n' "$set" "$mode" >>"$work/raw.tsv"
		unmount_fuse "$work/mnt" "$MOUNT_DAEMON"
		return 1
	fi
	cpu=$(cpu_of "$MOUNT_DAEMON")
	printf '%s\t%s\t%s\t%s\n' "$set" "$mode" "$MOUNT_SECONDS" "$cpu" >>"$work/raw.tsv"
	log "  $set $mode: ${MOUNT_SECONDS}s, daemon CPU ${cpu}s"
	unmount_fuse "$work/mnt" "$MOUNT_DAEMON"
}

failed=0
runs=("small read-only" "small preview" "large read-only" "large preview")
for ((round = 1; round <= BENCH_REPEAT; round++)); do
	log "round $round/$BENCH_REPEAT"
	for ((k = 0; k < ${#runs[@]}; k++)); do
		# shellcheck disable=SC2086  # "SET MODE", split on purpose
		mount_once ${runs[$(((k + round) % ${#runs[@]}))]} "$round" || failed=1
	done
done
rm -rf "$work/upper"

"$PYTHON3" - "$work/raw.tsv" "${files_of[small]}" "${files_of[large]}" <<'EOF'
import statistics, sys

runs = {}
for line in open(sys.argv[1]):
    set_, mode, secs, cpu = line.rstrip("\n").split("\t")
    runs.setdefault((set_, mode), []).append(None if secs == "FAILED" else (float(secs), float(cpu)))
files = {"small": int(sys.argv[2]), "large": int(sys.argv[3])}

def median(set_, mode, i):
    values = runs.get((set_, mode), [None])
    if None in values:
        return None
    return statistics.median(v[i] for v in values)

print()
print("%-10s %8s %11s %14s %11s %14s" % ("set", "files", "read-only s", "(daemon CPU s)",
                                         "preview s", "(daemon CPU s)"))
for set_ in ("small", "large"):
    cells = []
    for mode in ("read-only", "preview"):
        wall, cpu = median(set_, mode, 0), median(set_, mode, 1)
        cells += ["%.2f" % wall if wall is not None else "FAILED",
                  "%.2f" % cpu if cpu is not None else "-"]
    print("%-10s %8d %11s %14s %11s %14s" % (set_, files[set_], *cells))
print()
print("large / small (%d / %d files = %.2fx; linear is that, less is better):"
      % (files["large"], files["small"], files["large"] / files["small"]))
met = True
for mode in ("read-only", "preview"):
    small, large = median("small", mode, 0), median("large", mode, 0)
    small_cpu, large_cpu = median("small", mode, 1), median("large", mode, 1)
    if small is None or large is None:
        print("  %-10s n/a (a mount failed)" % mode)
        met = False
        continue
    cpu = "%.2fx" % (large_cpu / small_cpu) if small_cpu and large_cpu else "-"
    print("  %-10s mount %.2fx   (daemon CPU %s)" % (mode, large / small, cpu))
    met = met and large / small <= 2.5
print("  target (issue 11): mount time grows linearly with the files (large within 2.5x of"
      " small): %s"
      % ("met" if met else "NOT met"))
EOF
exit "$failed"
