#!/bin/bash
# tests/bench/read.sh - read-path benchmark of vmunionfs against the volumes themselves
# (native) and against other FUSE union file systems.
#
# Usage: tests/bench/read.sh [SIZE_MB]        (as root; SIZE_MB default 1024)
#
# Workloads, each run with cold caches (sync; echo 3 > /proc/sys/vm/drop_caches):
#   seq   read every data part file start to end with a 1 MiB buffer (SIZE_MB in all,
#         spread over VOLUMES volumes of large parts)
#   walk  os.walk + lstat of every entry, over VOLUMES volumes of WALK_PARTS small parts
#   rand  RAND_READS random 4 KiB preads (fixed seed) over the part files of the seq set;
#         the files are opened before the caches are dropped, only the preads are timed
# Methods:
#   native           the volume directories themselves (the baseline of "ratio")
#   vmunionfs-ro     vmunionfs VOL:VOL:... MNT (read-only, private upper in $TMPDIR)
#   vmunionfs-upper  vmunionfs -o upper=DIR ... (writable preview; fresh upper per set)
#   fuse-overlayfs   fuse-overlayfs -o lowerdir=v0:v1:... (no upperdir: read-only)
#   mergerfs         mergerfs -o ro v0:v1:...
#   unionfs-fuse     unionfs -o ro v0=RO:v1=RO:...
#
# Environment knobs:
#   VOLUMES=4 WALK_PARTS=5000 RAND_READS=20000 REPEAT=1 (median of REPEAT runs)
#   WORKS="seq walk rand"  METHODS="native vmunionfs-ro vmunionfs-upper fuse-overlayfs
#   mergerfs unionfs-fuse"  BENCH_DIR=/var/tmp (must be a disk, not tmpfs)
#   VMUNIONFS=path/to/vmunionfs (default: the build dir, /tmp/b-bench, or PATH)
#   KEEP=1 keeps the generated data (its path is printed)
#   MOUNT_TIMEOUT=300 UNMOUNT_TIMEOUT=30 WORK_TIMEOUT=600 (seconds)
# Missing peer tools are skipped with a note (apt-get install -y fuse-overlayfs mergerfs
# unionfs-fuse).
set -u

SIZE_MB=${1:-1024}
VOLUMES=${VOLUMES:-4}
WALK_PARTS=${WALK_PARTS:-5000}
RAND_READS=${RAND_READS:-20000}
REPEAT=${REPEAT:-1}
WORKS=${WORKS:-seq walk rand}
METHODS=${METHODS:-native vmunionfs-ro vmunionfs-upper fuse-overlayfs mergerfs unionfs-fuse}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
KEEP=${KEEP:-0}
MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-300}
UNMOUNT_TIMEOUT=${UNMOUNT_TIMEOUT:-30}
WORK_TIMEOUT=${WORK_TIMEOUT:-600}
PYTHON3=${PYTHON3:-python3}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_srcdir=$(cd "$here/../.." && pwd)

die() {
	echo "read.sh: $*" >&2
	exit 2
}

case "$SIZE_MB" in
'' | *[!0-9]*) die "SIZE_MB must be a number of megabytes (got '$SIZE_MB')" ;;
esac
[ "$SIZE_MB" -ge "$VOLUMES" ] || die "SIZE_MB must be at least VOLUMES"
[ "$(id -u)" -eq 0 ] || die "run as root (mounts, and drop_caches for cold reads)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"
[ -w /proc/sys/vm/drop_caches ] || die "/proc/sys/vm/drop_caches is not writable"
command -v "$PYTHON3" >/dev/null || die "python3 is missing"

if [ -z "${VMUNIONFS:-}" ]; then
	for candidate in "${top_builddir:-$top_srcdir}/vmunionfs" /tmp/b-bench/vmunionfs \
		"$(command -v vmunionfs 2>/dev/null)"; do
		if [ -n "$candidate" ] && [ -x "$candidate" ]; then
			VMUNIONFS=$candidate
			break
		fi
	done
fi
[ -n "${VMUNIONFS:-}" ] && [ -x "$VMUNIONFS" ] ||
	die "no vmunionfs binary: build it or set VMUNIONFS"

fstype=$(stat -f -c %T "$BENCH_DIR" 2>/dev/null) || die "BENCH_DIR $BENCH_DIR is missing"
case "$fstype" in
tmpfs | ramfs) die "BENCH_DIR $BENCH_DIR is $fstype: cold-cache reads need a disk" ;;
esac

# ---------------------------------------------------------------------------
# State and cleanup: every mount is undone in the EXIT trap, even on failure.

work=$(mktemp -d "$BENCH_DIR/vmunionfs-bench.XXXXXX") || die "cannot create a scratch dir"
results="$work/results.tsv"
: >"$results"
cur_mnt=""
cur_pid=""

# is_mounted MNT: from the mount table, without touching the (maybe hung) file system.
is_mounted() {
	awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# elapsed START END: END - START in seconds.
elapsed() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'
}

# unmount MNT PID: bounded; lazy unmount and kill (of our own daemon only) as fallbacks.
unmount() {
	local mnt=$1 pid=$2 i
	if is_mounted "$mnt"; then
		timeout -k 5 "$UNMOUNT_TIMEOUT" umount "$mnt" 2>/dev/null ||
			timeout -k 5 "$UNMOUNT_TIMEOUT" fusermount3 -u "$mnt" 2>/dev/null ||
			timeout -k 5 "$UNMOUNT_TIMEOUT" umount -l "$mnt" 2>/dev/null
	fi
	if [ -n "$pid" ]; then
		for ((i = 0; i < UNMOUNT_TIMEOUT * 10; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "read.sh: daemon $pid did not exit after unmount; killing it" >&2
			kill "$pid" 2>/dev/null
			sleep 1
			kill -9 "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	fi
}

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [ -n "$cur_mnt" ]; then
		unmount "$cur_mnt" "$cur_pid"
	fi
	if [ "$KEEP" = 1 ]; then
		echo "read.sh: KEEP=1: data and logs kept in $work"
	else
		rm -rf "$work"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Methods

have_method() {
	case "$1" in
	native | vmunionfs-ro | vmunionfs-upper) return 0 ;;
	fuse-overlayfs) command -v fuse-overlayfs >/dev/null ;;
	mergerfs) command -v mergerfs >/dev/null ;;
	unionfs-fuse) command -v unionfs >/dev/null || command -v unionfs-fuse >/dev/null ;;
	*) return 1 ;;
	esac
}

# The command line that mounts SET with METHOD at $work/mnt, in the foreground.
mount_command() {
	local method=$1 set=$2 colon="" ro="" v
	for ((v = 0; v < VOLUMES; v++)); do
		colon="$colon${colon:+:}$work/$set/v$v"
		ro="$ro${ro:+:}$work/$set/v$v=RO"
	done
	case "$method" in
	vmunionfs-ro) echo "$VMUNIONFS -f $colon $work/mnt" ;;
	vmunionfs-upper) echo "$VMUNIONFS -f -o upper=$work/upper-$set $colon $work/mnt" ;;
	fuse-overlayfs) echo "fuse-overlayfs -f -o lowerdir=$colon $work/mnt" ;;
	mergerfs) echo "mergerfs -f -o ro $colon $work/mnt" ;;
	unionfs-fuse)
		echo "$(command -v unionfs || command -v unionfs-fuse) -f -o ro $ro $work/mnt"
		;;
	esac
}

# do_mount METHOD SET: mounts, records the mount time; sets cur_mnt/cur_pid.
do_mount() {
	local method=$1 set=$2 log="$work/$1-$2.log" start end i cmd
	mkdir -p "$work/mnt"
	rm -rf "$work/upper-$set"
	cmd=$(mount_command "$method" "$set")
	start=$(date +%s.%N)
	# shellcheck disable=SC2086  # the command line is split on purpose (no spaces in paths)
	TMPDIR="$work" $cmd </dev/null >"$log" 2>&1 &
	cur_pid=$!
	cur_mnt="$work/mnt"
	for ((i = 0; i < MOUNT_TIMEOUT * 50; i++)); do
		if is_mounted "$cur_mnt"; then
			end=$(date +%s.%N)
			printf 'mount(%s)\t%s\t%s\t0\t-\t-\n' "$set" "$method" \
				"$(elapsed "$start" "$end")" >>"$results"
			return 0
		fi
		kill -0 "$cur_pid" 2>/dev/null || break
		sleep 0.02
	done
	echo "read.sh: $method did not mount within ${MOUNT_TIMEOUT}s: $cmd" >&2
	sed 's/^/    /' "$log" >&2
	return 1
}

do_unmount() {
	unmount "$cur_mnt" "$cur_pid"
	cur_mnt=""
	cur_pid=""
}

# CPU seconds (user+sys) used so far by process PID; 0 when there is none.
cpu_of() {
	local pid=$1
	if [ -z "$pid" ] || [ ! -r "/proc/$pid/stat" ]; then
		echo 0
		return
	fi
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' \
		"/proc/$pid/stat"
}

# run_work WORK METHOD SET: REPEAT timed runs; records the median.
run_work() {
	local work_name=$1 method=$2 set=$3 roots=() r out cpu0 cpu1 v extra=()
	if [ "$method" = native ]; then
		for ((v = 0; v < VOLUMES; v++)); do
			roots+=("$work/$set/v$v")
		done
	else
		roots=("$cur_mnt")
	fi
	case "$work_name" in
	seq) extra=(--files "$work/$set/files.txt") ;;
	rand) extra=(--files "$work/$set/files.txt" --reads "$RAND_READS" --seed 42) ;;
	esac
	for ((r = 0; r < REPEAT; r++)); do
		cpu0=$(cpu_of "$cur_pid")
		out=$(timeout -k 10 "$WORK_TIMEOUT" "$PYTHON3" "$here/read_work.py" "$work_name" \
			"${extra[@]}" "${roots[@]}") || {
			echo "read.sh: $work_name on $method failed or timed out" >&2
			return 1
		}
		cpu1=$(cpu_of "$cur_pid")
		printf '%s\t%s\t%s\t%s\n' "$work_name" "$method" "$out" \
			"$(elapsed "$cpu0" "$cpu1")" >>"$work/raw.tsv"
		printf '  %-5s %-16s %s daemon-cpu=%ss\n' "$work_name" "$method" "$out" \
			"$(elapsed "$cpu0" "$cpu1")" >&2
	done
}

# ---------------------------------------------------------------------------
# Data

want_big=0
want_many=0
for w in $WORKS; do
	case "$w" in
	seq | rand) want_big=1 ;;
	walk) want_many=1 ;;
	*) die "unknown work '$w' (seq, walk, rand)" ;;
	esac
done
methods=()
skipped=()
for m in $METHODS; do
	if have_method "$m"; then
		methods+=("$m")
	else
		skipped+=("$m")
	fi
done

{
	echo "vmunionfs read benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $(nproc) CPUs"
	echo "  $("$VMUNIONFS" --version 2>&1 | head -1)"
	for pkg in fuse-overlayfs mergerfs unionfs-fuse; do
		version=$(dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null) &&
			echo "  $pkg $version"
	done
	echo "  scratch: $work ($fstype); cold cache before every run; median of $REPEAT"
	echo "  Note: fuse-overlayfs, mergerfs and unionfs-fuse show a naive union of the volume"
	echo "  dirs (every file of every volume; parts.json, indexdb tables etc. not merged);"
	echo "  vmunionfs shows the merged vmstorage tree. The part files read are the same."
	[ "${#skipped[@]}" -eq 0 ] || echo "  skipped (not installed): ${skipped[*]}"
} | tee "$work/header.txt"

if [ "$want_big" = 1 ]; then
	echo "generating the read set: $VOLUMES volumes, $SIZE_MB MB of parts" >&2
	"$PYTHON3" "$here/read_gen.py" big "$work/big" --volumes "$VOLUMES" \
		--total-mb "$SIZE_MB" >&2 || die "read_gen.py big failed"
fi
if [ "$want_many" = 1 ]; then
	echo "generating the walk set: $VOLUMES volumes x $WALK_PARTS parts" >&2
	"$PYTHON3" "$here/read_gen.py" many "$work/many" --volumes "$VOLUMES" \
		--parts "$WALK_PARTS" >&2 || die "read_gen.py many failed"
fi
sync

# ---------------------------------------------------------------------------
# Runs: per set, per method: mount, every work of the set, unmount.

: >"$work/raw.tsv"
failed=0
for set in big many; do
	set_works=()
	for w in $WORKS; do
		case "$set:$w" in
		big:seq | big:rand | many:walk) set_works+=("$w") ;;
		esac
	done
	[ "${#set_works[@]}" -gt 0 ] || continue
	for method in "${methods[@]}"; do
		echo "[$set] $method" >&2
		if [ "$method" != native ]; then
			do_mount "$method" "$set" || {
				failed=1
				do_unmount
				continue
			}
		fi
		for w in "${set_works[@]}"; do
			run_work "$w" "$method" "$set" || failed=1
		done
		[ "$method" = native ] || do_unmount
	done
done

# ---------------------------------------------------------------------------
# The table: median per (work, method), ratio against native.

"$PYTHON3" - "$work/raw.tsv" "$results" <<'EOF'
import json, statistics, sys
raw, mounts = sys.argv[1], sys.argv[2]
runs = {}
order = []
for line in open(raw):
    work, method, out, cpu = line.rstrip("\n").split("\t")
    key = (work, method)
    if key not in runs:
        runs[key] = []
        order.append(key)
    r = json.loads(out)
    r["cpu"] = float(cpu or 0)
    runs[key].append(r)
def median_run(rs):
    rs = sorted(rs, key=lambda r: r["seconds"])
    return rs[len(rs) // 2]
rows = []
works = []
for w, _ in order:
    if w not in works:
        works.append(w)
for w in works:
    native = median_run(runs[(w, "native")])["seconds"] if (w, "native") in runs else None
    for (w2, m) in order:
        if w2 != w:
            continue
        r = median_run(runs[(w, m)])
        s = r["seconds"]
        if w == "seq":
            rate = "%.0f MB/s" % (r["bytes"] / 1e6 / s)
            what = "%d files, %.0f MB" % (r["files"], r["bytes"] / 1e6)
        elif w == "walk":
            rate = "%.0f entries/s" % (r["ops"] / s)
            what = "%d files, %d dirs" % (r["files"], r["dirs"])
        else:
            rate = "%.0f reads/s" % (r["ops"] / s)
            what = "%d x 4 KiB, crc %s%s" % (r["ops"], r["crc"],
                                            ", %d short" % r["short"] if r["short"] else "")
        ratio = "%.2fx" % (s / native) if native else "-"
        cpu = "%.1f" % r["cpu"] if m != "native" else "-"
        rows.append((w, m, "%.2f" % s, rate, ratio, cpu, what))
for line in open(mounts):
    work, method, secs = line.split("\t")[:3]
    rows.append((work, method, "%.2f" % float(secs), "-", "-", "-", ""))
head = ("work", "method", "seconds", "rate", "vs native", "daemon CPU s", "what was done")
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
fmt = "  ".join("%%-%ds" % w if i in (0, 1, 6) else "%%%ds" % w for i, w in enumerate(widths))
print()
print(fmt % head)
print(fmt % tuple("-" * w for w in widths))
prev = None
for r in rows:
    if prev is not None and r[0] != prev:
        print()
    print(fmt % r)
    prev = r[0]
EOF
exit "$failed"
