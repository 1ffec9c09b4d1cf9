#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/bench/materialize.sh - time vmunion materialize in each mode, and the
# in-place commit (materialize --into), against `cp -a` of the same volumes
# into one directory, from one run.
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
# the set stays valid); or BENCH_SET=DIR, whose subdirectories are the
# volumes, in name order (a set of tests/e2e/gen_volumes.sh or of
# tests/bench/read_gen.py).
#
# Every run starts with cold caches (sync; drop_caches, when root) and ends
# when its data is on disk: materialize syncs the filesystem before it
# publishes and the commit before it swaps, so each `cp -a` is followed by
# `sync`. Ratios are time / the `cp -a` of the whole merged view (below 1 is
# faster than cp -a); CPU is the user + system time of the command.
#
# --into commits into TARGET, a copy of the first volume made before the
# timer starts: TARGET's own files are linked, the other volumes' copied (or
# reflinked). Its time is set against `cp -a` of what it copies (the other
# volumes) and of what it links (the first volume): the time it spends beyond
# copying the other volumes, against cp -a of the linked bytes, is the speedup
# on the bytes it does not copy.
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
	local n f files pad d
	if [ -n "${BENCH_SET:-}" ]; then
		vols=()
		for d in "$BENCH_SET"/*/; do
			vols+=("${d%/}")
		done
		[ "${#vols[@]}" -gt 1 ] || { say "$0: $BENCH_SET holds no volumes"; exit 2; }
		return
	fi
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

# timed NAME CMD... : run CMD from cold caches in an empty $work/out (after
# the function $setup, when set, prepared it outside the timer); its seconds
# into times[NAME], its user + system seconds into cpu[NAME].
declare -A times=() cpu=()
order=()
setup=
timed() {
	local name=$1 t
	shift
	rm -rf "$work/out"
	mkdir -p "$work/out"
	if [ -n "$setup" ] && ! $setup; then
		say "bench: $name: setup failed"
		return 1
	fi
	cold
	order+=("$name")
	TIMEFORMAT='%3R %3U %3S'
	if ! { time "$@" >"$work/cmd.log" 2>&1; } 2>"$work/time.log"; then
		say "bench: $name failed: $(tail -n 3 "$work/cmd.log")"
		times[$name]=fail
		return 1
	fi
	t=$(tail -n 1 "$work/time.log")
	times[$name]=${t%% *}
	cpu[$name]=$(awk '{ printf "%.3f", $2 + $3 }' <<<"$t")
}

copy_sync() {
	cp -a "$@" "$work/out/" && sync
}

target_copy() {
	cp -a --reflink=never "${vols[0]}" "$work/out/target"
}

# The commit, then finalize (outside the timer) so that verify sees TARGET
# alone.
into_verify() {
	"$VMUNION" finalize -q "$work/out/target" &&
		"$VMUNION" verify -q "${vols[@]}" "$work/out/target" >"$work/verify.log" 2>&1
}

mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

make_set
bytes=$(du -sb --apparent-size "${vols[@]}" | awk '{ s += $1 } END { printf "%.0f\n", s }')
linked_bytes=$(du -sb --apparent-size "${vols[0]}" | cut -f1)
files=$(find "${vols[@]}" -type f | wc -l)
fstype=$(stat -f -c %T "$work")
say "bench: $(mib "$bytes") MiB in $files files, ${#vols[@]} volumes, on $fstype ($work)"

timed "cp -a + sync" copy_sync "${vols[@]}"
timed "cp -a + sync, volumes 2.." copy_sync "${vols[@]:1}"
timed "cp -a + sync, volume 1" copy_sync "${vols[0]}"
for mode in auto copy link reflink; do
	timed "materialize --mode $mode" "$VMUNION" materialize -q --jobs "$jobs" --mode "$mode" \
		"${vols[@]}" "$work/out/dest" || continue
	"$VMUNION" verify -q "${vols[@]}" "$work/out/dest" || say "bench: verify failed after $mode"
done
timed "materialize --mode copy --jobs 1" "$VMUNION" materialize -q --jobs 1 --mode copy \
	"${vols[@]}" "$work/out/dest"
setup=target_copy
timed "materialize --into (volume 1)" "$VMUNION" materialize -q --jobs "$jobs" \
	--into "$work/out/target" "$work/out/target" "${vols[@]:1}" &&
	{ into_verify || say "bench: verify failed after --into"; }
setup=

base=${times["cp -a + sync"]}
printf '\n%-36s %9s %9s %8s\n' "vmunion materialize bench" "seconds" "CPU s" "ratio"
printf '%-36s %9s %9s %8s\n' "($(mib "$bytes") MiB, $files files, $fstype)" "" "" "(/cp)"
for name in "${order[@]}"; do
	t=${times[$name]}
	if [ "$t" = fail ]; then
		printf '%-36s %9s %9s %8s\n' "$name" "n/a" "n/a" "-"
	else
		printf '%-36s %9.2f %9.2f %8.3f\n' "$name" "$t" "${cpu[$name]}" "$(ratio "$t" "$base")"
	fi
done

t=${times["materialize --mode link"]:-fail}
[ "$t" = fail ] || printf '\nlink: cp -a + sync takes %.1fx its time\n' "$(ratio "$base" "$t")"
into=${times["materialize --into (volume 1)"]:-fail}
others=${times["cp -a + sync, volumes 2.."]:-fail}
first=${times["cp -a + sync, volume 1"]:-fail}
if [ "$into" != fail ] && [ "$others" != fail ] && [ "$first" != fail ]; then
	printf -- '--into: %s MiB linked (volume 1), %s MiB copied (volumes 2..); cp -a + sync of the merged view takes %.1fx its time\n' \
		"$(mib "$linked_bytes")" "$(mib $((bytes - linked_bytes)))" "$(ratio "$base" "$into")"
	# The goal: the copied bytes at cp -a's speed, the linked ones 20x faster.
	awk -v into="$into" -v others="$others" -v first="$first" 'BEGIN {
		goal = others + first / 20
		printf "--into: goal cp -a of the copied volumes + 1/20 of cp -a of the linked one = %.2f + %.2f / 20 = %.2f s: %.2f s, %s\n", others, first, goal, into, into <= goal ? "met" : "not met"
	}'
fi
