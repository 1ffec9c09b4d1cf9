#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/bench/materialize.sh - time vmunion materialize in each mode against
# `cp -a` of the same volumes into one directory, from one run.
#
# Usage: tests/bench/materialize.sh [SIZE_MIB] [WORKDIR]
#
#   SIZE_MIB  size of the generated set (default 2048)
#   WORKDIR   where the set and the copies go (default: a new dir under
#             $TMPDIR or /tmp); it needs about 4 x SIZE_MIB free. Reflink is
#             timed only where WORKDIR's filesystem can clone extents.
#
# The set: the four v1.79.5 sample volumes, each values.bin padded with
# random bytes up to SIZE_MIB in all (victoria-metrics ignores the tail, so
# the set stays valid); or BENCH_SET=DIR, a set made by tests/e2e/
# gen_volumes.sh (its node* dirs are used as they are).
#
# Every run starts with cold caches (sync; drop_caches, when root) and ends
# when its data is on disk: materialize fsyncs every file and syncs the
# filesystem, so the baseline is `cp -a` followed by `sync`. Ratios are
# time / baseline (below 1 is faster than cp -a).
#
# Environment: VMUNION (default: ./vmunion of the build dir), BENCH_JOBS
# (materialize --jobs, default 4), BENCH_SET, KEEP=1 keeps WORKDIR.
set -u -o pipefail

size_mib=${1:-2048}
case $size_mib in '' | *[!0-9]*) echo "usage: $0 [SIZE_MIB] [WORKDIR]" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
VMUNION=${VMUNION:-$(command -v ./vmunion || echo "$top/vmunion")}
jobs=${BENCH_JOBS:-4}
[ -x "$VMUNION" ] || { echo "$0: $VMUNION not built (set VMUNION=)" >&2; exit 2; }

if [ -n "${2:-}" ]; then
	work=$2
	mkdir -p "$work" || exit 2
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/vmunion-bench.XXXXXX") || exit 2
fi
work=$(cd "$work" && pwd -P)
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$work/set" "$work/out"; [ -n "${2:-}" ] || [ "${KEEP:-0}" = 1 ] || rmdir "$work" 2>/dev/null; }
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }

make_set() {
	if [ -n "${BENCH_SET:-}" ]; then
		vols=("$BENCH_SET"/node*)
		return
	fi
	local n f files pad
	mkdir -p "$work/set"
	for n in 0 1 2 3; do
		cp -a "$top/tests/data/v1.79.5/node$n" "$work/set/" || exit 2
	done
	files=$(find "$work/set" -name values.bin | wc -l)
	pad=$(((size_mib << 20) / files))
	say "bench: padding $files values.bin files by $((pad >> 20)) MiB each"
	head -c "$pad" /dev/urandom >"$work/pad.bin" || exit 2
	find "$work/set" -name values.bin | while IFS= read -r f; do
		cat "$work/pad.bin" >>"$f" || exit 2
	done
	rm -f "$work/pad.bin"
	vols=("$work/set"/node*)
}

cold() {
	sync
	if [ -w /proc/sys/vm/drop_caches ]; then
		echo 3 >/proc/sys/vm/drop_caches
	fi
}

# timed NAME CMD... : run CMD from cold caches; its seconds into times[NAME].
declare -A times=()
order=()
timed() {
	local name=$1 t0 t1
	shift
	rm -rf "$work/out"
	mkdir -p "$work/out"
	cold
	t0=$(date +%s.%N)
	if ! "$@" >"$work/cmd.log" 2>&1; then
		say "bench: $name failed: $(tail -n 3 "$work/cmd.log")"
		times[$name]=fail
		order+=("$name")
		return 1
	fi
	t1=$(date +%s.%N)
	times[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	order+=("$name")
}

cp_sync() {
	cp -a "${vols[@]}" "$work/out/" && sync
}

make_set
bytes=$(du -sb --apparent-size "${vols[@]}" | awk '{ s += $1 } END { print s }')
files=$(find "${vols[@]}" -type f | wc -l)
fstype=$(stat -f -c %T "$work")
say "bench: $((bytes >> 20)) MiB in $files files, ${#vols[@]} volumes, on $fstype ($work)"

timed "cp -a + sync" cp_sync
for mode in auto copy link reflink; do
	timed "materialize --mode $mode" "$VMUNION" materialize -q --jobs "$jobs" --mode "$mode" \
		"${vols[@]}" "$work/out/dest" || continue
	"$VMUNION" verify -q "${vols[@]}" "$work/out/dest" || say "bench: verify failed after $mode"
done
timed "materialize --mode copy --jobs 1" "$VMUNION" materialize -q --jobs 1 --mode copy \
	"${vols[@]}" "$work/out/dest"

base=${times["cp -a + sync"]}
printf '\n%-36s %10s %8s\n' "vmunion materialize bench" "seconds" "ratio"
printf '%-36s %10s %8s\n' "($((bytes >> 20)) MiB, $files files, $fstype)" "" "(/cp)"
for name in "${order[@]}"; do
	t=${times[$name]}
	if [ "$t" = fail ]; then
		printf '%-36s %10s %8s\n' "$name" "n/a" "-"
	else
		printf '%-36s %10.2f %8.2f\n' "$name" "$t" "$(awk -v a="$t" -v b="$base" 'BEGIN { print a / b }')"
	fi
done
