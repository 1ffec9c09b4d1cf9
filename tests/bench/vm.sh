#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# shellcheck source-path=SCRIPTDIR
# tests/bench/vm.sh - victoria-metrics startup and a full export on the preview against
# the materialized copy (issue 11, item 5; target: <= 1.2x the materialized copy), and on
# fuse-overlayfs over a materialized copy, the peer users would otherwise pick.
#
# Usage: tests/bench/vm.sh [SET_DIR]        (as root: mounts, drop_caches)
#
#   SET_DIR  volumes written by tests/e2e/gen_volumes.sh (node*/ and manifest.json); it
#            is only read. Without it, a set is written with the real victoria-metrics
#            (Debian's 1.79) into the scratch dir: BENCH_VM_VOLUMES volumes, each of
#            BENCH_VM_SERIES series x BENCH_VM_SAMPLES samples over BENCH_VM_SPAN_DAYS
#            days (one partition a month; every flush of the ingestion adds a part to
#            each, which is what victoria-metrics opens at startup).
#
# Methods, round-robin, BENCH_REPEAT rounds (the median is reported):
#   materialized  `vmunion materialize VOLUME... DIR` (setup, outside the timers), then
#                 victoria-metrics on DIR
#   preview       vmunionfs -o upper=FRESH_DIR VOLUME... MNT (setup: until the root
#                 answers a stat), then victoria-metrics on MNT
#   fuse-overlayfs  fuse-overlayfs -o lowerdir=LOWER,upperdir=FRESH_DIR,workdir=FRESH_DIR
#                 MNT (setup: until the root answers a stat), then victoria-metrics on
#                 MNT. LOWER is its own `vmunion materialize` of the volumes, written once
#                 before the rounds (outside every timer; the materialized method's copy
#                 is written and used by victoria-metrics each round, so it cannot be the
#                 lowerdir) and only read: after every round its paths, types, sizes,
#                 modes, mtimes and contents must still be those of its first digest,
#                 else the run counts as failed. Skipped, with a note, when
#                 fuse-overlayfs is not installed.
#   read-only     vmunionfs VOLUME... MNT: tried once; victoria-metrics must create
#                 flock.lock, so it is expected to refuse (the reason is printed)
# On each: start victoria-metrics (127.0.0.1, a free port, -retentionPeriod=100y), time
# until /health answers OK (victoria-metrics serves HTTP only once its storage is open),
# then a full export: /api/v1/export?match[]={__name__!=""}&start=0 into a file, until
# the last byte. Stop (SIGINT), then the same again on the same, now used, copy or upper
# (start 2, export 2): the first run has merged parts in the background. CPU seconds are
# those of victoria-metrics plus, on a mount, of its daemon (vmunionfs, fuse-overlayfs):
# on a shared machine they move less than the wall times. The ratios against the
# materialized copy are printed for the preview and fuse-overlayfs side by side, then
# the preview's over fuse-overlayfs' (below 1x: the preview is the faster).
#
# Every export must hold exactly the manifest's series and samples, and the same lines
# as every other export (an order-independent digest); else the run counts as failed: a
# benchmark that returns wrong data is void.
#
# Environment:
#   BENCH_REPEAT=3  BENCH_VM_VOLUMES=4  BENCH_VM_SERIES=25000  BENCH_VM_SAMPLES=36
#   BENCH_VM_SPAN_DAYS=365  BENCH_DIR=/var/tmp (the set, the copies and the uppers)
#   BENCH_VM_COLD=0 (1: sync + drop_caches before every start; default: warm cache)
#   VM_START_TIMEOUT=300 VM_STOP_TIMEOUT=120 EXPORT_TIMEOUT=600 MOUNT_TIMEOUT=300
#   UNMOUNT_TIMEOUT=300 (seconds; every wait is bounded)
#   VMUNION, VMUNIONFS (default: the build dir), VICTORIA_METRICS, PYTHON3,
#   FUSE_OVERLAYFS=fuse-overlayfs
#   KEEP=1 keeps the scratch dir (set, exports' digests, logs)
#
# Exit status: 0 every run worked and every export was right, 1 a run failed or an export
# was wrong, 2 setup error.
set -u -o pipefail

BENCH_NAME=vm.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=${top_builddir:-$(cd "$here/../.." && pwd)}
# shellcheck source=bench_lib.sh
. "$here/bench_lib.sh"
bench_help "$@"

BENCH_REPEAT=${BENCH_REPEAT-3}
BENCH_VM_VOLUMES=${BENCH_VM_VOLUMES-4}
BENCH_VM_SERIES=${BENCH_VM_SERIES-25000}
BENCH_VM_SAMPLES=${BENCH_VM_SAMPLES-36}
BENCH_VM_SPAN_DAYS=${BENCH_VM_SPAN_DAYS-365}
BENCH_VM_COLD=${BENCH_VM_COLD:-0}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
VM_START_TIMEOUT=${VM_START_TIMEOUT-300}
VM_STOP_TIMEOUT=${VM_STOP_TIMEOUT-120}
EXPORT_TIMEOUT=${EXPORT_TIMEOUT-600}
VMUNION=${VMUNION:-$top/vmunion}
VMUNIONFS=${VMUNIONFS:-$top/vmunionfs}
VICTORIA_METRICS=${VICTORIA_METRICS:-victoria-metrics}
PYTHON3=${PYTHON3:-python3}
FUSE_OVERLAYFS=${FUSE_OVERLAYFS:-fuse-overlayfs}
set_dir=${1:-}

positive_knobs BENCH_REPEAT BENCH_VM_VOLUMES BENCH_VM_SERIES BENCH_VM_SAMPLES \
	BENCH_VM_SPAN_DAYS VM_START_TIMEOUT VM_STOP_TIMEOUT EXPORT_TIMEOUT MOUNT_TIMEOUT \
	UNMOUNT_TIMEOUT
[ "$(id -u)" -eq 0 ] || die "run as root (mounts, drop_caches)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"
[ -x "$VMUNION" ] || die "$VMUNION not built (make, or set VMUNION)"
[ -x "$VMUNIONFS" ] || die "$VMUNIONFS not built (make, or set VMUNIONFS)"
command -v "$VICTORIA_METRICS" >/dev/null || die "$VICTORIA_METRICS not found (apt-get install victoria-metrics)"
command -v curl >/dev/null || die "curl not found"
command -v "$PYTHON3" >/dev/null || die "python3 not found"
if [ -n "$set_dir" ]; then
	[ -f "$set_dir/manifest.json" ] || die "$set_dir has no manifest.json (tests/e2e/gen_volumes.sh)"
	set_dir=$(cd "$set_dir" && pwd -P)
fi

bench_scratch vmunion-vm
: >"$work/raw.tsv"

if [ -z "$set_dir" ]; then
	set_dir=$work/set
	log "writing $BENCH_VM_VOLUMES volumes x $BENCH_VM_SERIES series x $BENCH_VM_SAMPLES samples" \
		"over $BENCH_VM_SPAN_DAYS days with $VICTORIA_METRICS"
	GEN_VERIFY=0 GEN_SPAN_DAYS=$BENCH_VM_SPAN_DAYS VICTORIA_METRICS=$VICTORIA_METRICS \
		bash "$here/../e2e/gen_volumes.sh" "$set_dir" "$BENCH_VM_VOLUMES" \
		"$BENCH_VM_SERIES" "$BENCH_VM_SAMPLES" >"$work/gen.log" 2>&1 ||
		{ tail -n 20 "$work/gen.log" >&2; die "gen_volumes.sh failed"; }
fi
volumes=("$set_dir"/node*)
read -r want_series want_samples < <("$PYTHON3" -c '
import json, sys
m = json.load(open(sys.argv[1]))
print(m["series_count"], m["sample_count"])' "$set_dir/manifest.json") ||
	die "cannot read $set_dir/manifest.json"

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

free_port() {
	"$PYTHON3" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# record METHOD ROUND WHAT VALUE: one measurement into raw.tsv.
record() {
	printf '%s\t%s\t%s\t%s\n' "$@" >>"$work/raw.tsv"
}

# start_vm DATA LOG: victoria-metrics on DATA; waits for /health. Sets VM_PID, VM_URL
# and VM_START_SECONDS. Returns 1 (its log's last line in VM_ERROR) if it exits first.
start_vm() {
	local data=$1 log=$2 port start i
	port=$(free_port) || return 1
	VM_URL=http://127.0.0.1:$port
	[ "$BENCH_VM_COLD" != 1 ] || drop_caches
	start=$(now)
	"$VICTORIA_METRICS" -storageDataPath="$data" -retentionPeriod=100y \
		-httpListenAddr="127.0.0.1:$port" </dev/null >"$log" 2>&1 &
	VM_PID=$!
	bench_pids+=("$VM_PID")
	for ((i = 0; i < VM_START_TIMEOUT * 50; i++)); do
		if [ "$(curl -s --max-time 2 "$VM_URL/health" 2>/dev/null)" = OK ]; then
			VM_START_SECONDS=$(elapsed "$start" "$(now)")
			return 0
		fi
		kill -0 "$VM_PID" 2>/dev/null || break
		sleep 0.02
	done
	stop_pid "$VM_PID" "$VM_STOP_TIMEOUT"
	VM_ERROR=$(grep -m1 -E 'fatal|panic' "$log" | sed "s/^.*\t//; s|$work/||g" | cut -c1-200)
	[ -n "$VM_ERROR" ] || VM_ERROR="no /health within ${VM_START_TIMEOUT}s"
	return 1
}

# export_digest FILE: "SERIES SAMPLES DIGEST" of an export (one JSON line per series);
# the digest is the sum of the lines' hashes, so the order of the lines does not matter.
export_digest() {
	"$PYTHON3" - "$1" <<'EOF'
import hashlib, sys
series = samples = digest = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        line = line.rstrip(b"\n")
        if not line:
            continue
        start = line.rindex(b'"timestamps":[') + len(b'"timestamps":[')
        stamps = line[start:line.index(b"]", start)]
        series += 1
        samples += stamps.count(b",") + 1 if stamps else 0
        digest += int.from_bytes(hashlib.blake2b(line, digest_size=8).digest(), "little")
print(series, samples, "%016x" % (digest % (1 << 64)))
EOF
}

# check_export METHOD ROUND PASS FILE: the export holds the manifest's series and samples
# and the same lines as the first export of the run.
check_export() {
	local method=$1 round=$2 pass=$3 file=$4 series samples digest
	read -r series samples digest < <(export_digest "$file") || return 1
	rm -f "$file"
	if [ "$series" != "$want_series" ] || [ "$samples" != "$want_samples" ]; then
		echo "$BENCH_NAME: $method round $round export $pass: $series series, $samples samples;" \
			"the manifest has $want_series and $want_samples" >&2
		return 1
	fi
	[ -s "$work/digest" ] || echo "$digest" >"$work/digest"
	if [ "$digest" != "$(cat "$work/digest")" ]; then
		echo "$BENCH_NAME: $method round $round export $pass: right counts, other lines" \
			"(digest $digest, first export $(cat "$work/digest"))" >&2
		return 1
	fi
	record "$method" "$round" "export$pass series" "$series"
	record "$method" "$round" "export$pass samples" "$samples"
}

# vm_pass METHOD ROUND PASS DATA [DAEMON]: start, export, check, stop; the times and the
# CPU of victoria-metrics (+ the FUSE daemon's) go into raw.tsv.
vm_pass() {
	local method=$1 round=$2 pass=$3 data=$4 daemon=${5:-} cpu0 cpu1 start
	local log="$work/vm-$method-$round-$pass.log" file="$work/export.json"
	cpu0=$(cpu_of "$daemon")
	if ! start_vm "$data" "$log"; then
		echo "$BENCH_NAME: $method round $round: victoria-metrics did not start: $VM_ERROR" >&2
		record "$method" "$round" "start$pass" "FAILED: $VM_ERROR"
		return 1
	fi
	cpu1=$(awk -v a="$(cpu_of "$VM_PID")" -v b="$(cpu_of "$daemon")" -v c="$cpu0" \
		'BEGIN { print a + b - c }')
	record "$method" "$round" "start$pass" "$VM_START_SECONDS"
	record "$method" "$round" "start$pass cpu" "$cpu1"
	start=$(now)
	if ! curl -sS --fail --max-time "$EXPORT_TIMEOUT" -o "$file" \
		"$VM_URL/api/v1/export?match%5B%5D=%7B__name__%21%3D%22%22%7D&start=0"; then
		record "$method" "$round" "export$pass" "FAILED: curl"
		stop_pid "$VM_PID" "$VM_STOP_TIMEOUT"
		return 1
	fi
	record "$method" "$round" "export$pass" "$(elapsed "$start" "$(now)")"
	record "$method" "$round" "export$pass cpu" "$(awk -v a="$(cpu_of "$VM_PID")" \
		-v b="$(cpu_of "$daemon")" -v c="$cpu0" -v d="$cpu1" 'BEGIN { print a + b - c - d }')"
	stop_pid "$VM_PID" "$VM_STOP_TIMEOUT" || {
		record "$method" "$round" "stop$pass" "FAILED: killed"
		return 1
	}
	check_export "$method" "$round" "$pass" "$file"
}

# tree_digest DIR: one digest of every path below DIR with its type, size, mode and
# mtime, and of every file's contents (not the atimes: reading sets them).
tree_digest() {
	(
		cd "$1" || exit 1
		find . -printf '%P\t%y\t%s\t%m\t%T@\n' | LC_ALL=C sort &&
			find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
	) | sha256sum | cut -d' ' -f1
}

# make_lower: the fuse-overlayfs lowerdir, $work/lower, materialized once and digested.
make_lower() {
	local start
	start=$(now)
	"$VMUNION" materialize -q "${volumes[@]}" "$work/lower" >"$work/lower.log" 2>&1 || {
		record fuse-overlayfs 0 lower "FAILED: materialize: $(tail -1 "$work/lower.log")"
		return 1
	}
	record fuse-overlayfs 0 lower "$(elapsed "$start" "$(now)")"
	lower_digest=$(tree_digest "$work/lower") || {
		record fuse-overlayfs 0 lower "FAILED: cannot digest $work/lower"
		return 1
	}
}

# check_lower ROUND: the lowerdir is as make_lower left it.
check_lower() {
	local digest
	digest=$(tree_digest "$work/lower")
	if [ "$digest" != "$lower_digest" ]; then
		echo "$BENCH_NAME: fuse-overlayfs round $1: its lowerdir $work/lower changed" \
			"(digest $digest, before the rounds $lower_digest)" >&2
		record fuse-overlayfs "$1" "lower check" "FAILED: changed"
		return 1
	fi
	record fuse-overlayfs "$1" "lower check" 1
}

# on_mount METHOD ROUND PASSES LOG CMD...: mounts $work/mnt with `CMD... MNT`, runs
# victoria-metrics on it PASSES times (1, or 2: again on the used upper), unmounts.
on_mount() {
	local method=$1 round=$2 passes=$3 log=$4 mnt="$work/mnt" pass
	shift 4
	mount_fuse "$log" "$mnt" "$@" || {
		record "$method" "$round" setup "FAILED: no mount"
		unmount_fuse "$mnt" "$MOUNT_DAEMON"
		return 1
	}
	record "$method" "$round" setup "$MOUNT_SECONDS"
	for ((pass = 1; pass <= passes; pass++)); do
		vm_pass "$method" "$round" "$pass" "$mnt" "$MOUNT_DAEMON" || break
	done
	unmount_fuse "$mnt" "$MOUNT_DAEMON"
	((pass > passes))
}

# run_method METHOD ROUND: one round of METHOD, from its setup to its clean-up.
run_method() {
	local method=$1 round=$2 start status=0 upper="$work/upper"
	case "$method" in
	materialized)
		rm -rf "$work/copy"
		start=$(now)
		"$VMUNION" materialize -q "${volumes[@]}" "$work/copy" >"$work/materialize.log" 2>&1 ||
			{ record "$method" "$round" setup "FAILED: $(tail -1 "$work/materialize.log")"; return 1; }
		record "$method" "$round" setup "$(elapsed "$start" "$(now)")"
		vm_pass "$method" "$round" 1 "$work/copy" && vm_pass "$method" "$round" 2 "$work/copy" ||
			status=1
		rm -rf "$work/copy"
		;;
	read-only)
		on_mount "$method" "$round" 1 "$work/vmunionfs-$method-$round.log" "$VMUNIONFS" -f \
			"${volumes[@]}" || status=1
		;;
	preview)
		rm -rf "$upper"
		on_mount "$method" "$round" 2 "$work/vmunionfs-$method-$round.log" "$VMUNIONFS" -f \
			-o "upper=$upper" "${volumes[@]}" || status=1
		rm -rf "$upper"
		;;
	fuse-overlayfs)
		rm -rf "$work/ovl-upper" "$work/ovl-work"
		mkdir "$work/ovl-upper" "$work/ovl-work" ||
			{ record "$method" "$round" setup "FAILED: mkdir"; return 1; }
		on_mount "$method" "$round" 2 "$work/fuse-overlayfs-$round.log" "$FUSE_OVERLAYFS" -f \
			-o "lowerdir=$work/lower,upperdir=$work/ovl-upper,workdir=$work/ovl-work" ||
			status=1
		rm -rf "$work/ovl-upper" "$work/ovl-work"
		check_lower "$round" || status=1
		;;
	esac
	return "$status"
}

files=$(find "${volumes[@]}" -type f | wc -l)
mib=$(du -sm "${volumes[@]}" | awk '{ s += $1 } END { print s }')
overlay_skip=""
command -v "$FUSE_OVERLAYFS" >/dev/null ||
	overlay_skip="not installed ($FUSE_OVERLAYFS not found; apt-get install fuse-overlayfs)"
echo "victoria-metrics on the preview and on fuse-overlayfs against the materialized copy," \
	"$(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  $("$VMUNIONFS" --version 2>&1 | head -1); victoria-metrics" \
	"$(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo '(not from Debian)')"
if [ -z "$overlay_skip" ]; then
	echo "  fuse-overlayfs" \
		"$(dpkg-query -W -f '${Version}' fuse-overlayfs 2>/dev/null || echo '(not from Debian)'):" \
		"lowerdir one materialized copy, written once and only read; fresh upperdir and" \
		"workdir every round"
else
	echo "  fuse-overlayfs: skipped: $overlay_skip"
fi
echo "  set: ${#volumes[@]} volumes, $want_series series, $want_samples samples, $files files," \
	"$mib MiB ($set_dir)"
echo "  $([ "$BENCH_VM_COLD" = 1 ] && echo "cold cache (drop_caches before every start)" ||
	echo "warm cache"); median of $BENCH_REPEAT rounds, methods round-robin; $(nproc) CPUs"

# Warm the cache for every method alike (the set was just written, or comes from disk).
find "${volumes[@]}" -type f -exec cat {} + >/dev/null
failed=0
log "read-only mount: does victoria-metrics start on it?"
run_method read-only 1 || true
methods=(materialized preview)
if [ -z "$overlay_skip" ]; then
	log "fuse-overlayfs: materializing its lowerdir once (outside the timers)"
	if make_lower; then
		methods+=(fuse-overlayfs)
	else
		echo "$BENCH_NAME: fuse-overlayfs: no lowerdir: $(tail -1 "$work/lower.log")" >&2
		failed=1
	fi
fi
for ((round = 1; round <= BENCH_REPEAT; round++)); do
	for ((k = 0; k < ${#methods[@]}; k++)); do
		method=${methods[$(((k + round) % ${#methods[@]}))]}
		log "round $round/$BENCH_REPEAT: $method"
		run_method "$method" "$round" || failed=1
	done
done

"$PYTHON3" - "$work/raw.tsv" "$failed" "$overlay_skip" <<'EOF' || failed=1
import statistics, sys

raw = {}
for line in open(sys.argv[1]):
    method, _, what, value = line.rstrip("\n").split("\t", 3)
    raw.setdefault((method, what), []).append(value)
overlay_skip = sys.argv[3]

def median(method, what):
    values = raw.get((method, what), [])
    if not values or any(v.startswith("FAILED") for v in values):
        return None
    return statistics.median(float(v) for v in values)

def failure(method, what):
    for v in raw.get((method, what), []):
        if v.startswith("FAILED"):
            return v[len("FAILED: "):]
    return None

columns = [("setup", "setup s"), ("start1", "start s"), ("start1 cpu", "cpu"),
           ("export1", "export s"), ("export1 cpu", "cpu"), ("start2", "start2 s"),
           ("start2 cpu", "cpu"), ("export2", "export2 s"), ("export2 cpu", "cpu")]
lower = median("fuse-overlayfs", "lower")
print()
print("%-15s" % "method" + "".join("%10s" % head for _, head in columns))
for method, note in (("materialized", "setup: vmunion materialize"),
                     ("preview", "setup: the mount, fresh upper"),
                     ("fuse-overlayfs", "setup: the mount, fresh upperdir + workdir" +
                      (" (lowerdir: materialized once, %.2f s)" % lower if lower else ""))):
    if method == "fuse-overlayfs" and overlay_skip:
        print("%-15s skipped: %s" % (method, overlay_skip))
        continue
    if method == "fuse-overlayfs" and failure(method, "lower"):
        print("%-15s FAILED: no lowerdir: %s" % (method, failure(method, "lower")))
        continue
    row = [median(method, what) for what, _ in columns]
    print("%-15s" % method + "".join("%10s" % ("%.2f" % v if v is not None else "FAILED")
                                     for v in row) + "   " + note)
ro = raw.get(("read-only", "start1"), ["FAILED: not tried"])[0]
if ro.startswith("FAILED"):
    print("%-15s victoria-metrics does not start: %s" % ("read-only", ro[len("FAILED: "):]))
else:
    print("%-15s victoria-metrics starts in %.2f s (round 1 only)" % ("read-only", float(ro)))

def ratio(a, b, what):
    """a's median over b's, wall and CPU, as text; None when a run failed."""
    x, y = median(a, what), median(b, what)
    if x is None or y is None:
        return None
    xc, yc = median(a, what + " cpu"), median(b, what + " cpu")
    return "%.2fx (CPU %s)" % (x / y, "%.2fx" % (xc / yc) if xc and yc else "-")

peers = ["preview"] + ([] if overlay_skip else ["fuse-overlayfs"])
pairs = [(p, "materialized") for p in peers] + [("preview", "fuse-overlayfs")] * (len(peers) > 1)
print()
print("time over the materialized copy's (wall; CPU of victoria-metrics + the FUSE daemon)%s:"
      % (", and the preview's over fuse-overlayfs' (below 1x: the preview is faster)"
         if len(peers) > 1 else ""))
print(("  %-22s" % "" + "".join("%-26s" % ("%s / %s" % (a, b) if b != "materialized" else a)
                                for a, b in pairs)).rstrip())
met = True
for what, label in (("start1", "startup"), ("export1", "full export"),
                    ("start2", "startup, used upper"), ("export2", "export, used upper")):
    cells = [ratio(a, b, what) for a, b in pairs]
    print(("  %-22s" % label + "".join("%-26s" % (c or "n/a (a run failed)")
                                       for c in cells)).rstrip())
    p, m = median("preview", what), median("materialized", what)
    if p is None or m is None or (what in ("start1", "export1") and p / m > 1.2):
        met = False
print("  target (issue 11): startup and full export on the preview <= 1.2x the materialized"
      " copy: %s" % ("met" if met else "NOT met"))
checks = raw.get(("fuse-overlayfs", "lower check"), [])
if checks:
    bad = sum(1 for v in checks if v.startswith("FAILED"))
    print("  fuse-overlayfs' lowerdir after each of its %d rounds: %s" % (
        len(checks), "CHANGED in %d (see the messages)" % bad if bad else
        "unchanged (paths, types, sizes, modes, mtimes, contents)"))
series = sorted(set(v for (m, w), vs in raw.items() if w.endswith(" series") for v in vs))
samples = sorted(set(v for (m, w), vs in raw.items() if w.endswith(" samples") for v in vs))
checked = sum(len(v) for (m, w), v in raw.items() if w.endswith(" series"))
if sys.argv[2] != "0":
    print("  A RUN FAILED OR AN EXPORT WAS WRONG (see the messages): the numbers above are void")
print("  exports checked: %d, each %s series and %s samples (the manifest's), the same lines"
      % (checked, "/".join(series), "/".join(samples)))
EOF
exit "$failed"
