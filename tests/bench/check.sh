#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# shellcheck source-path=SCRIPTDIR
# tests/bench/check.sh - throughput of `vmunion check` against a plain read
# (cat to /dev/null) of the same files.
#
# Usage: tests/bench/check.sh [SET_DIR]
#
#   SET_DIR  a directory with node*/ volumes (e.g. written by
#            tests/e2e/gen_volumes.sh). Without it, a base set is generated
#            with gen_volumes.sh (real victoria-metrics) into the scratch dir.
#
# The set is then scaled up in a scratch copy to BENCH_GIB GiB by copying
# every live part under fresh names (listed in parts.json where the layout
# has one): real VictoriaMetrics bytes, only more parts. Then, with a warm
# page cache (each command runs once before it is timed):
#
#   cat      every file of every live part (what --deep covers), and the
#            files --deep actually reads (metaindex, index, items, lens)
#   check    vmunion check: cheap checks + the namespace-3 collision scan
#   deep     vmunion check --deep, with --jobs 1 and with all CPUs
#   before   the same two with VMUNION_BEFORE (another build, e.g. of the
#            last release), when it is set, run alternately with the others
#
# and prints MB/s (MB = 10^6 bytes of live part files covered), the CPU
# seconds (user + system) and the ratio to cat of the same files; with
# VMUNION_BEFORE also the speed-up of --deep over it. Each command runs
# BENCH_REPEAT times, the fastest run counts (other work on the machine only
# ever slows a run down). BENCH_COLD=1 also drops the page cache before each
# timed run (needs root; slows the whole machine briefly).
#
# Environment: BENCH_GIB=4  BENCH_NODES=4  BENCH_SERIES=40000
#   BENCH_SAMPLES=250 (base set)  BENCH_REPEAT=3  VMUNION_BEFORE
#   KEEP_SCRATCH=1  VMUNION, top_builddir.
#
# Exit status 0 when every run worked and every check was clean.

set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench_lib.sh
. "$here/bench_lib.sh" # bench_help only: its die and the rest are defined below
bench_help "$@"
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
VMUNION=${VMUNION:-$top_builddir/vmunion}
PYTHON3=${PYTHON3:-python3}
BENCH_GIB=${BENCH_GIB:-4}
BENCH_NODES=${BENCH_NODES:-4}
BENCH_SERIES=${BENCH_SERIES:-40000}
BENCH_SAMPLES=${BENCH_SAMPLES:-250}
BENCH_COLD=${BENCH_COLD:-0}
BENCH_REPEAT=${BENCH_REPEAT:-3}
VMUNION_BEFORE=${VMUNION_BEFORE:-}

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

[ -x "$VMUNION" ] || die "$VMUNION not built (set VMUNION or top_builddir)"
[ -z "$VMUNION_BEFORE" ] || [ -x "$VMUNION_BEFORE" ] || die "VMUNION_BEFORE=$VMUNION_BEFORE is not executable"
command -v "$PYTHON3" >/dev/null || die "python3 not found"

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/vmunion-bench-check.XXXXXX") || die "mktemp"
if [ "${KEEP_SCRATCH:-0}" = 1 ]; then
	trap 'say "scratch kept: $SCRATCH"' EXIT
else
	trap 'rm -rf "$SCRATCH"' EXIT
fi

base=${1:-}
if [ -z "$base" ]; then
	base=$SCRATCH/base
	say "generating $BENCH_NODES x $BENCH_SERIES series x $BENCH_SAMPLES samples with gen_volumes.sh"
	GEN_VERIFY=0 bash "$top_srcdir/tests/e2e/gen_volumes.sh" "$base" "$BENCH_NODES" \
		"$BENCH_SERIES" "$BENCH_SAMPLES" >&2 || die "gen_volumes.sh failed"
fi
nodes=()
for d in "$base"/node*; do
	[ -d "$d" ] && nodes+=("$(basename "$d")")
done
[ "${#nodes[@]}" -gt 0 ] || die "no node*/ volume in $base"

# ---------------------------------------------------------------------------
# Scale up: copy the set, then copy its live parts until BENCH_GIB.

set_dir=$SCRATCH/set
mkdir -p "$set_dir"
for n in "${nodes[@]}"; do
	cp -a "$base/$n" "$set_dir/$n" || die "cannot copy $base/$n"
done
"$PYTHON3" - "$set_dir" "$BENCH_GIB" "${nodes[@]}" <<'PY' || die "scaling up failed"
import json, os, re, shutil, sys

root, gib, nodes = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
HEX = re.compile(r"^[0-9A-F]{16}$")

def parts_of(holder):
    """Live part dirs of one partition level dir or mergeset table."""
    return sorted(e for e in os.listdir(holder)
                  if e not in ("txn", "tmp", "snapshots")
                  and os.path.isdir(os.path.join(holder, e))
                  and os.listdir(os.path.join(holder, e)))

def holders(vol):
    for level in ("data/small", "data/big", "data/indexdb"):
        d = os.path.join(vol, level)
        if os.path.isdir(d):
            for p in sorted(os.listdir(d)):
                if p != "snapshots" and os.path.isdir(os.path.join(d, p)):
                    yield level, os.path.join(d, p)
    d = os.path.join(vol, "indexdb")
    if os.path.isdir(d):
        for t in sorted(os.listdir(d)):
            if HEX.match(t):
                yield "indexdb", os.path.join(d, t)

def size_of(path):
    return sum(os.path.getsize(os.path.join(dp, f))
               for dp, _, fs in os.walk(path) for f in fs)

def new_name(name, k):
    # Keep a gen-A prefix (rows_blocks_..._), change only the 16-hex number.
    prefix, _, num = name.rpartition("_")
    n = (int(num, 16) - 1_000_000 * k) & 0xFFFFFFFFFFFFFFFF
    return (prefix + "_" if prefix else "") + "%016X" % n

def add_to_lists(level, holder, name):
    if level in ("data/small", "data/big"):
        pj = os.path.join(holder.replace("/data/big/", "/data/small/"), "parts.json")
        if not os.path.exists(pj):
            return  # gen A: every dir is a part
        with open(pj) as f:
            j = json.load(f)
        key = "Small" if level == "data/small" else "Big"
        j[key] = sorted((j.get(key) or []) + [name])
    else:
        pj = os.path.join(holder, "parts.json")
        if not os.path.exists(pj):
            return
        with open(pj) as f:
            j = sorted((json.load(f) or []) + [name])
    with open(pj, "w") as f:
        json.dump(j, f, separators=(",", ":"))

originals = [(level, h, p) for n in nodes for level, h in holders(os.path.join(root, n))
             for p in parts_of(h)]
total = sum(size_of(os.path.join(h, p)) for _, h, p in originals)
want = gib * (1 << 30)
copies = max(0, int(want / max(total, 1)) - 1)
for k in range(1, copies + 1):
    for level, h, p in originals:
        name = new_name(p, k)
        shutil.copytree(os.path.join(h, p), os.path.join(h, name))
        add_to_lists(level, h, name)
print("scaled %d parts of %.1f MiB by %d copies" % (len(originals), total / 2**20, copies),
      file=sys.stderr)
PY

# ---------------------------------------------------------------------------
# The files, and the timings.

all_list=$SCRATCH/all.list
decoded_list=$SCRATCH/decoded.list
(cd "$set_dir" && find . -type f \( -path './*/data/small/*/*/*' -o -path './*/data/big/*/*/*' \
	-o -path './*/data/indexdb/*/*/*' -o -path './*/indexdb/*/*/*' \) \
	-not -path '*/snapshots/*' -print0) >"$all_list"
tr '\0' '\n' <"$all_list" | grep -E '/(metaindex|index|items|lens)\.bin$' | tr '\n' '\0' >"$decoded_list"
bytes_of() { (cd "$set_dir" && xargs -0 stat -c %s <"$1") | awk '{ s += $1 } END { print s }'; }
all_bytes=$(bytes_of "$all_list")
decoded_bytes=$(bytes_of "$decoded_list")
files=$(tr -cd '\0' <"$all_list" | wc -c)

drop_caches() {
	[ "$BENCH_COLD" = 1 ] || return 0
	sync
	echo 3 >/proc/sys/vm/drop_caches || die "BENCH_COLD=1 needs root"
}

# timed NAME CMD... : warm-up run, then BENCH_REPEAT timed ones; sets SECS
# and CPU (user + system) of the fastest. The check commands must exit 0
# (clean volumes).
timed() {
	local name=$1 rc i times
	shift
	"$@" >/dev/null 2>"$SCRATCH/$name.err"
	SECS='' CPU=''
	for ((i = 0; i < BENCH_REPEAT; i++)); do
		drop_caches
		TIMEFORMAT='%3R %3U %3S'
		{ time "$@" >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err"; } 2>"$SCRATCH/$name.time"
		rc=$?
		[ "$rc" -eq 0 ] || {
			cat "$SCRATCH/$name.err" >&2
			tail -n 20 "$SCRATCH/$name.out" >&2
			die "$name exited with status $rc"
		}
		read -r -a times <"$SCRATCH/$name.time"
		if [ -z "$SECS" ] || awk -v a="${times[0]}" -v b="$SECS" 'BEGIN { exit !(a < b) }'; then
			SECS=${times[0]}
			CPU=$(awk -v u="${times[1]}" -v s="${times[2]}" 'BEGIN { printf "%.3f", u + s }')
		fi
	done
}

cat_all() { (cd "$set_dir" && xargs -0 cat <"$all_list" >/dev/null); }
cat_decoded() { (cd "$set_dir" && xargs -0 cat <"$decoded_list" >/dev/null); }
vols=()
for n in "${nodes[@]}"; do
	vols+=("$set_dir/$n")
done

timed cat_all cat_all
cat_all_s=$SECS cat_all_cpu=$CPU
timed cat_decoded cat_decoded
cat_decoded_s=$SECS cat_decoded_cpu=$CPU
timed check "$VMUNION" check "${vols[@]}"
check_s=$SECS check_cpu=$CPU
# before and after alternate: a busy minute slows both.
if [ -n "$VMUNION_BEFORE" ]; then
	timed before1 "$VMUNION_BEFORE" check --deep --jobs 1 "${vols[@]}"
	before1_s=$SECS before1_cpu=$CPU
fi
timed deep1 "$VMUNION" check --deep --jobs 1 "${vols[@]}"
deep1_s=$SECS deep1_cpu=$CPU
if [ -n "$VMUNION_BEFORE" ]; then
	timed before "$VMUNION_BEFORE" check --deep "${vols[@]}"
	before_s=$SECS before_cpu=$CPU
fi
timed deep "$VMUNION" check --deep "${vols[@]}"
deep_s=$SECS deep_cpu=$CPU

mbs() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? b / 1e6 / s : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }'; }

printf 'vmunion check benchmark (%s cache, %s CPUs, %s)\n' \
	"$([ "$BENCH_COLD" = 1 ] && echo cold || echo warm)" "$(nproc)" "$(uname -r)"
printf 'set: %d volumes, %d files, %.1f MiB of live part files (%.1f MiB that --deep decodes)\n' \
	"${#nodes[@]}" "$files" "$(awk -v b="$all_bytes" 'BEGIN { print b / 1048576 }')" \
	"$(awk -v b="$decoded_bytes" 'BEGIN { print b / 1048576 }')"
grep '^Summary' "$SCRATCH/deep.out" | sed 's/^/  /'
# row LABEL SECS CPU : one line of the table.
row() {
	printf '%-36s %8s %8s %7s %12s\n' "$1" "$2" "$3" "$(mbs "$all_bytes" "$2")" \
		"$(ratio "$2" "$cat_all_s")"
}
printf '%-36s %8s %8s %7s %12s\n' "run" "seconds" "CPU s" "MB/s" "vs cat (all)"
row "cat all part files" "$cat_all_s" "$cat_all_cpu"
row "cat the files --deep decodes" "$cat_decoded_s" "$cat_decoded_cpu"
row "vmunion check (collision scan)" "$check_s" "$check_cpu"
[ -z "$VMUNION_BEFORE" ] || row "before: check --deep --jobs 1" "$before1_s" "$before1_cpu"
row "vmunion check --deep --jobs 1" "$deep1_s" "$deep1_cpu"
[ -z "$VMUNION_BEFORE" ] || row "before: check --deep" "$before_s" "$before_cpu"
row "vmunion check --deep" "$deep_s" "$deep_cpu"
printf 'decoded bytes only: --deep --jobs 1 %s MB/s, --deep %s MB/s, cat of them %s MB/s\n' \
	"$(mbs "$decoded_bytes" "$deep1_s")" "$(mbs "$decoded_bytes" "$deep_s")" \
	"$(mbs "$decoded_bytes" "$cat_decoded_s")"
printf 'check --deep with all CPUs: %sx the speed of --jobs 1\n' "$(ratio "$deep_s" "$deep1_s")"
if [ -n "$VMUNION_BEFORE" ]; then
	printf 'speed-up over %s: --deep --jobs 1 %sx (CPU %s s -> %s s), --deep %sx (CPU %s s -> %s s)\n' \
		"$VMUNION_BEFORE" "$(ratio "$deep1_s" "$before1_s")" "$before1_cpu" "$deep1_cpu" \
		"$(ratio "$deep_s" "$before_s")" "$before_cpu" "$deep_cpu"
fi
printf '(MB/s = 10^6 bytes of the files named per second; "vs cat" = speed relative to cat of all part files;\n'
printf ' fastest of %d runs)\n' "$BENCH_REPEAT"
