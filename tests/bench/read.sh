#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# shellcheck source-path=SCRIPTDIR
# tests/bench/read.sh - read-path benchmark of vmunionfs against the volumes themselves
# (native) and against other FUSE union file systems, on the same work.
#
# Usage: tests/bench/read.sh [SIZE_MB]        (as root; SIZE_MB default 1024)
# The tables give MB (10^6 bytes) and MB/s; SIZE_MB and LARGE_MB are MiB (2^20 bytes).
#
# Workloads, each run with a cold page cache (sync; echo 3 > /proc/sys/vm/drop_caches
# right before the timer starts):
#   seq   read every data part file start to end with a 1 MiB buffer: SIZE_MB MiB in all,
#         over VOLUMES volumes of large parts (1 to 64 MiB, real gen-B2 layout)
#   rand  RAND_READS random 4 KiB preads (fixed seed, offsets uniform over the bytes)
#         over the .bin files of the same set; every file is opened before the caches
#         are dropped, so only the preads are timed
#   reread  the seq work again with a warm cache (only the second pass is timed)
#   large   sequential 1 MiB reads of one large part file (values.bin of LARGE_MB MiB, in
#           the first volume), cold: issue 11's "first read of a large part file"
#   large2  the same file again with a warm cache (only the second pass is timed): issue
#           11's "re-read of cached data", with one open in all (reread opens a file
#           every few MiB)
#   par   the seq work by 4 parallel readers, each on its own share of the files
#   walk  os.walk + lstat of every entry, over VOLUMES volumes of WALK_PARTS small parts
#         each (5 files per part)
#   walk2 the walk again with a warm cache (only the second pass is timed)
# A mount is timed from the start of the daemon until the mountpoint is in the mount
# table and answers a stat of its root. On the walk set, each FUSE method is mounted
# twice: with a cold cache (mount-cold) and again warm (mount); the native line of both
# is `find VOLUME... -printf '%s %T@\n'`, the floor for anything that must list and stat
# every file. The daemon's RSS is read after
# the mount (rss-mount) and after the walk runs (rss-walk), also in bytes per walk-set file.
# Methods (each FUSE file system is mounted once per set; runs go round-robin):
#   native           the volume directories themselves: the baseline of "vs native"
#   vmunionfs-ro     vmunionfs VOL:VOL:... MNT (read-only: no upper)
#   vmunionfs-upper  vmunionfs -o upper=DIR VOL:VOL:... MNT (writable preview)
#   fuse-overlayfs   fuse-overlayfs -o lowerdir=v0:v1:... MNT (no upperdir: read-only)
#   mergerfs         mergerfs -o ro v0:v1:... MNT
#   mergerfs-autofull  the same with -o cache.files=auto-full
#   unionfs-fuse     unionfs -o ro v0=RO:v1=RO:... MNT
# Every tool runs with its default options otherwise.
#
# Environment knobs:
#   VOLUMES=4  WALK_PARTS=700  RAND_READS=20000  REPEAT=5 (the median is reported)
#   LARGE_MB=1024 (the large part's values.bin; the part holds about 1.8x that on disk,
#   and read_gen.py refuses to start if the set and it do not fit; an empty LARGE_MB= is
#   refused, not taken as 1024;
#   large2 is a warm re-read only if about 2x that fits in free memory: read through the
#   daemon, the file is cached twice, as the mount's and as the volume's)
#   WORKS="seq reread large large2 par rand walk walk2"  METHODS="native vmunionfs-ro vmunionfs-upper
#   fuse-overlayfs mergerfs mergerfs-autofull unionfs-fuse"  BENCH_DIR=/var/tmp (a disk: tmpfs cannot be read cold)
#   VMUNIONFS=path/to/vmunionfs (default: $top_builddir, the repo root, /tmp/b-bench,
#   then PATH)   KEEP=1 keeps the generated data and the daemon logs
#   MOUNT_TIMEOUT=300 UNMOUNT_TIMEOUT=300 WORK_TIMEOUT=600 (seconds; every wait is bounded)
#   MANY_SET=DIR  use DIR (written by `read_gen.py many DIR --volumes VOLUMES`) as the walk
#   set instead of generating one; it is only read
#
# WALK_PARTS=700 (~17k entries) keeps a run of every method short. Missing peer tools
# are skipped with a note (Debian: apt-get install -y fuse-overlayfs mergerfs unionfs-fuse).
#
# Exit status: 0 every run passed, 1 some run or mount failed (it shows as FAILED in
# the table), 2 setup error.
set -u

BENCH_NAME=read.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_srcdir=$(cd "$here/../.." && pwd)
# shellcheck source=bench_lib.sh
. "$here/bench_lib.sh"
bench_help "$@"

SIZE_MB=${1:-1024}
VOLUMES=${VOLUMES-4}
WALK_PARTS=${WALK_PARTS-700}
RAND_READS=${RAND_READS-20000}
REPEAT=${REPEAT-5}
LARGE_MB=${LARGE_MB-1024} # set but empty is refused below, not taken as the default
WORKS=${WORKS:-seq reread large large2 par rand walk walk2}
METHODS=${METHODS:-native vmunionfs-ro vmunionfs-upper fuse-overlayfs mergerfs mergerfs-autofull unionfs-fuse}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
WORK_TIMEOUT=${WORK_TIMEOUT-600}
PYTHON3=${PYTHON3:-python3}

positive_knobs SIZE_MB VOLUMES WALK_PARTS RAND_READS REPEAT LARGE_MB MOUNT_TIMEOUT \
	UNMOUNT_TIMEOUT WORK_TIMEOUT
[ "$SIZE_MB" -ge "$VOLUMES" ] || die "SIZE_MB must be at least VOLUMES"
[ "$(id -u)" -eq 0 ] || die "run as root (mounts, and drop_caches for cold reads)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"
[ -w /proc/sys/vm/drop_caches ] || die "/proc/sys/vm/drop_caches is not writable"
command -v "$PYTHON3" >/dev/null || die "python3 is missing"

if [ -z "${VMUNIONFS:-}" ]; then
	for candidate in ${top_builddir:+"$top_builddir/vmunionfs"} "$top_srcdir/vmunionfs" \
		/tmp/b-bench/vmunionfs "$(command -v vmunionfs 2>/dev/null)"; do
		if [ -n "$candidate" ] && [ -x "$candidate" ]; then
			VMUNIONFS=$candidate
			break
		fi
	done
fi
if [ -z "${VMUNIONFS:-}" ] || [ ! -x "$VMUNIONFS" ]; then
	die "no vmunionfs binary: build it (see README.md) or set VMUNIONFS"
fi

# ---------------------------------------------------------------------------
# Mounts: bench_lib records each before it can exist; its EXIT trap undoes them.

bench_scratch vmunionfs-bench
fstype=$(stat -f -c %T "$work") || die "BENCH_DIR $BENCH_DIR is not usable"
case "$fstype" in
tmpfs | ramfs) die "BENCH_DIR $BENCH_DIR is $fstype: cold-cache reads need a disk" ;;
esac
: >"$work/raw.tsv"
: >"$work/mounts.tsv"
: >"$work/rss.tsv"

have_method() {
	case "$1" in
	native | vmunionfs-ro | vmunionfs-upper) return 0 ;;
	fuse-overlayfs) command -v fuse-overlayfs >/dev/null ;;
	mergerfs | mergerfs-autofull) command -v mergerfs >/dev/null ;;
	unionfs-fuse) command -v unionfs >/dev/null || command -v unionfs-fuse >/dev/null ;;
	*) die "unknown method '$1'" ;;
	esac
}

# The command line that mounts SET with METHOD, in the foreground, but for the mountpoint.
mount_command() {
	local method=$1 set=$2 colon="" ro="" v
	for ((v = 0; v < VOLUMES; v++)); do
		colon="$colon${colon:+:}$work/$set/v$v"
		ro="$ro${ro:+:}$work/$set/v$v=RO"
	done
	case "$method" in
	vmunionfs-ro) echo "$VMUNIONFS -f $colon" ;;
	vmunionfs-upper) echo "$VMUNIONFS -f -o upper=$work/upper-$set $colon" ;;
	fuse-overlayfs) echo "fuse-overlayfs -f -o lowerdir=$colon" ;;
	mergerfs) echo "mergerfs -f -o ro $colon" ;;
	mergerfs-autofull) echo "mergerfs -f -o ro,cache.files=auto-full $colon" ;;
	unionfs-fuse) echo "$(command -v unionfs || command -v unionfs-fuse) -f -o ro $ro" ;;
	esac
}

declare -A mnt_of pid_of

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# do_mount METHOD SET [LABEL]: mounts at $work/mnt-METHOD; records the time to a usable
# mount as LABEL (default "mount").
do_mount() {
	local method=$1 set=$2 label=${3:-mount} cmd
	[ "$method" != vmunionfs-upper ] || rm -rf "$work/upper-$set" # a fresh upper
	cmd=$(mount_command "$method" "$set")
	# shellcheck disable=SC2086  # split on purpose: no spaces in our paths
	if ! TMPDIR="$work" mount_fuse "$work/$method-$set.log" "$work/mnt-$method" $cmd; then
		printf '%s(%s)\t%s\tFAILED\n' "$label" "$set" "$method" >>"$work/mounts.tsv"
		return 1
	fi
	printf '%s(%s)\t%s\t%s\n' "$label" "$set" "$method" "$MOUNT_SECONDS" >>"$work/mounts.tsv"
	mnt_of[$method]=$work/mnt-$method
	pid_of[$method]=$MOUNT_DAEMON
}

# unmount_method METHOD: unmounts one mount of do_mount (the cold one, before a warm one).
unmount_method() {
	unmount_fuse "${mnt_of[$1]}" "${pid_of[$1]}"
	unset 'mnt_of[$1]' 'pid_of[$1]'
}

# native_scan SET LABEL: the native floor of a mount, find -printf of every volume.
native_scan() {
	local set=$1 label=$2 start v roots=()
	for ((v = 0; v < VOLUMES; v++)); do
		roots+=("$work/$set/v$v")
	done
	start=$(now)
	find "${roots[@]}" -printf '%s %T@\n' >/dev/null
	printf '%s(%s)\tnative\t%s\n' "$label" "$set" "$(elapsed "$start" "$(now)")" \
		>>"$work/mounts.tsv"
}

# record_rss SET LABEL: VmRSS of every mounted daemon, in KiB.
record_rss() {
	local set=$1 label=$2 method rss
	for method in "${!pid_of[@]}"; do
		rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/${pid_of[$method]}/status" 2>/dev/null)
		[ -n "$rss" ] || continue
		printf '%s(%s)\t%s\t%s\n' "$label" "$set" "$method" "$rss" >>"$work/rss.tsv"
	done
}

# Unmounts every mount of SET (failed ones too) in the order of mounting, recording the
# time to the daemon's exit of those that worked.
unmount_set() {
	local set=$1 i mnt method start
	for i in "${!bench_mounts[@]}"; do
		mnt=${bench_mounts[$i]}
		method=${mnt##*/mnt-}
		start=$(now)
		unmount_fuse "$mnt" "${bench_daemons[$i]}"
		[ -z "${mnt_of[$method]:-}" ] ||
			printf 'unmount(%s)\t%s\t%s\n' "$set" "$method" "$(elapsed "$start" "$(now)")" \
				>>"$work/mounts.tsv"
	done
	mnt_of=()
	pid_of=()
}

# run_work WORK METHOD SET: one timed run, appended to raw.tsv (or a FAILED line).
run_work() {
	local w=$1 method=$2 set=$3 roots=() out cpu0 cpu1 v extra=() pid="" err
	if [ "$method" = native ]; then
		for ((v = 0; v < VOLUMES; v++)); do
			roots+=("$work/$set/v$v")
		done
	else
		roots=("${mnt_of[$method]}")
		pid=${pid_of[$method]}
	fi
	local tool=$w
	case "$w" in
	seq | reread | par) extra=(--files "$work/$set/files.txt") ;;
	large) tool=seq extra=(--files "$work/$set/large.txt") ;;
	large2) tool=reread extra=(--files "$work/$set/large.txt") ;;
	rand) extra=(--files "$work/$set/files.txt" --reads "$RAND_READS" --seed 42) ;;
	esac
	cpu0=$(cpu_of "$pid")
	# --foreground: in the shell's process group, a Ctrl-C reaches the work too
	if out=$(timeout --foreground -k 10 "$WORK_TIMEOUT" "$PYTHON3" "$here/read_work.py" "$tool" \
		"${extra[@]}" "${roots[@]}" 2>"$work/err.txt"); then
		cpu1=$(cpu_of "$pid")
		printf '%s\t%s\t%s\t%s\n' "$w" "$method" "$out" "$(elapsed "$cpu0" "$cpu1")" \
			>>"$work/raw.tsv"
		log "  $w $method: $(echo "$out" | cut -c1-90)"
		return 0
	fi
	err=$(grep . "$work/err.txt" | tail -1)
	[ -n "$err" ] || err="timed out after ${WORK_TIMEOUT}s"
	printf '%s\t%s\tFAILED\t%s\n' "$w" "$method" "$err" >>"$work/raw.tsv"
	log "  $w $method: FAILED: $err"
	return 1
}

# ---------------------------------------------------------------------------
# Plan, header, data

want_big=0
want_large=0
want_many=0
for w in $WORKS; do
	case "$w" in
	seq | reread | par | rand) want_big=1 ;;
	large | large2) want_big=1 want_large=1 ;;
	walk | walk2) want_many=1 ;;
	*) die "unknown work '$w' (seq, reread, large, large2, par, rand, walk, walk2)" ;;
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
	echo "vmunionfs read benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), Linux $(uname -r), $(nproc) CPUs"
	echo "  $("$VMUNIONFS" --version 2>&1 | head -1) [$VMUNIONFS]"
	for pkg in fuse-overlayfs mergerfs unionfs-fuse; do
		version=$(dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null) &&
			echo "  $pkg $version"
	done
	[ "${#skipped[@]}" -eq 0 ] || echo "  skipped (not installed): ${skipped[*]}"
	echo "  data: $work ($fstype)"
	[ "$want_big" = 0 ] || echo "  seq/rand set: $VOLUMES volumes, $SIZE_MB MiB of parts"
	[ "$want_large" = 0 ] ||
		echo "  large: one part file of $LARGE_MB MiB (values.bin, in the first volume)"
	[ "$want_many" = 0 ] || echo "  walk set: $VOLUMES volumes x $WALK_PARTS parts"
	case " $WORKS " in
	*" rand "*) echo "  rand: $RAND_READS random reads" ;;
	esac
	echo "  every run: sync + drop_caches first (a VM host's cache is not dropped: an untimed"
	echo "  native pass warms it for everyone); median of $REPEAT runs, methods round-robin"
	echo "  NOTE: fuse-overlayfs, mergerfs and unionfs-fuse show a naive union of the volume"
	echo "  dirs (every file of every volume; parts.json, indexdb tables, lock files are not"
	echo "  merged); vmunionfs shows the merged vmstorage tree. The part files read are the"
	echo "  same files in every view; walk counts differ by those few merged entries."
} | tee "$work/header.txt"

if [ "$want_big" = 1 ]; then
	log "generating the seq/rand set: $VOLUMES volumes, $SIZE_MB MiB of parts"
	large=()
	[ "$want_large" = 0 ] || large=(--large-mb "$LARGE_MB")
	"$PYTHON3" "$here/read_gen.py" big "$work/big" --volumes "$VOLUMES" \
		--total-mb "$SIZE_MB" "${large[@]}" >&2 || die "read_gen.py big failed"
fi
if [ "$want_many" = 1 ] && [ -n "${MANY_SET:-}" ]; then
	[ -f "$MANY_SET/files.txt" ] || die "MANY_SET $MANY_SET has no files.txt (read_gen.py many)"
	ln -s "$(cd "$MANY_SET" && pwd)" "$work/many"
elif [ "$want_many" = 1 ]; then
	log "generating the walk set: $VOLUMES volumes x $WALK_PARTS parts"
	"$PYTHON3" "$here/read_gen.py" many "$work/many" --volumes "$VOLUMES" \
		--parts "$WALK_PARTS" >&2 || die "read_gen.py many failed"
fi
sync

# ---------------------------------------------------------------------------
# Runs: per set, mount every method, then REPEAT rounds of every work x method,
# the order of the methods rotated every round; then unmount.

failed=0
for set in big many; do
	set_works=()
	for w in $WORKS; do
		case "$set:$w" in
		big:seq | big:reread | big:large | big:large2 | big:par | big:rand | many:walk | many:walk2)
			set_works+=("$w")
			;;
		esac
	done
	[ "${#set_works[@]}" -gt 0 ] || continue
	log "[$set] warming the host cache (untimed native pass)"
	if [ "$set" = big ]; then
		"$PYTHON3" "$here/read_work.py" seq --files "$work/big/files.txt" \
			"$work/big"/v* >/dev/null || die "warm-up read failed"
		[ "$want_large" = 0 ] ||
			"$PYTHON3" "$here/read_work.py" seq --files "$work/big/large.txt" \
				"$work/big"/v* >/dev/null || die "warm-up read failed"
	else
		"$PYTHON3" "$here/read_work.py" walk "$work/many"/v* >/dev/null ||
			die "warm-up walk failed"
	fi
	ready=()
	if [ "$set" = many ]; then
		drop_caches
		native_scan many mount-cold
		native_scan many mount
	fi
	for method in "${methods[@]}"; do
		if [ "$method" = native ]; then
			ready+=(native)
			continue
		fi
		if [ "$set" = many ]; then
			log "[$set] mounting $method, cold"
			drop_caches
			do_mount "$method" "$set" mount-cold && unmount_method "$method"
		fi
		log "[$set] mounting $method"
		if do_mount "$method" "$set"; then
			ready+=("$method")
		else
			failed=1
			for w in "${set_works[@]}"; do
				printf '%s\t%s\tFAILED\tmount failed\n' "$w" "$method" >>"$work/raw.tsv"
			done
		fi
	done
	[ "$set" != many ] || record_rss many rss-mount
	n=${#ready[@]}
	for ((r = 0; r < REPEAT; r++)); do
		for w in "${set_works[@]}"; do
			log "[$set] $w, round $((r + 1))/$REPEAT"
			for ((k = 0; k < n; k++)); do
				run_work "$w" "${ready[$(((k + r) % n))]}" "$set" || failed=1
			done
		done
	done
	[ "$set" != many ] || record_rss many rss-walk
	log "[$set] unmounting"
	unmount_set "$set"
done

# ---------------------------------------------------------------------------
# The table: median per (work, method), ratio of the times against native.

files_many=$( [ -f "$work/many/files.txt" ] && wc -l <"$work/many/files.txt" || echo 0)
"$PYTHON3" - "$work/raw.tsv" "$work/mounts.tsv" "$work/rss.tsv" "$files_many" "${methods[@]}" \
	<<'EOF' | tee "$work/table.txt"
import json, sys

raw, mounts, rss, files_many, methods = (sys.argv[1], sys.argv[2], sys.argv[3],
                                         int(sys.argv[4]), sys.argv[5:])
runs, failures, works = {}, {}, []
for line in open(raw):
    work, method, out, extra = line.rstrip("\n").split("\t", 3)
    if work not in works:
        works.append(work)
    if out == "FAILED":
        failures.setdefault((work, method), extra)
        continue
    r = json.loads(out)
    r["cpu"] = float(extra or 0)
    runs.setdefault((work, method), []).append(r)

def median_run(rs):
    rs = sorted(rs, key=lambda r: r["seconds"])
    return rs[(len(rs) - 1) // 2]

rows = []
for w in works:
    base = runs.get((w, "native"))
    native = median_run(base)["seconds"] if base else None
    group = []
    for m in methods:
        if (w, m) in failures and (w, m) not in runs:
            group.append((w, m, "FAILED", "-", "-", "-", failures[(w, m)][:70]))
            continue
        if (w, m) not in runs:
            continue
        rs = runs[(w, m)]
        r = median_run(rs)
        s = r["seconds"]
        spread = "%.2f-%.2f" % (min(x["seconds"] for x in rs), max(x["seconds"] for x in rs))
        if w in ("seq", "reread", "large", "large2", "par"):
            rate = "%.0f MB/s" % (r["bytes"] / 1e6 / s)
            what = "%d files, %.0f MB" % (r["files"], r["bytes"] / 1e6)
        elif w in ("walk", "walk2"):
            rate = "%.0f entries/s" % (r["ops"] / s)
            what = "%d files + %d dirs" % (r["files"], r["dirs"])
        else:
            rate = "%.0f reads/s" % (r["ops"] / s)
            what = "%d x 4 KiB, crc %s%s" % (r["ops"], r["crc"],
                                            ", %d SHORT" % r["short"] if r["short"] else "")
        if (w, m) in failures:
            what += "; some runs FAILED: " + failures[(w, m)][:40]
        ratio = "%.2fx" % (s / native) if native else "-"
        cpu = "%.2f" % r["cpu"] if m != "native" else "-"
        group.append((w, m, "%.2f" % s, rate, ratio, cpu, "%s (runs %s s)" % (what, spread)))
    rows.append(group)
mount_rows, native_of = [], {}
for line in open(mounts):
    work, method, secs = line.rstrip("\n").split("\t")
    mount_rows.append((work, method, secs))
    if method == "native" and secs != "FAILED":
        native_of[work] = float(secs)
group = []
for work, method, secs in mount_rows:
    if group and group[-1][0] != work:
        rows.append(group)
        group = []
    native = native_of.get(work)
    ratio = "%.2fx" % (float(secs) / native) if secs != "FAILED" and native else "-"
    what = "find VOLUME... -printf '%s %T@\\n'" if method == "native" else ""
    group.append((work, method, secs if secs == "FAILED" else "%.2f" % float(secs),
                  "-", ratio, "-", what))
if group:
    rows.append(group)
group = []
for line in open(rss):
    work, method, kib = line.rstrip("\n").split("\t")
    if group and group[-1][0] != work:
        rows.append(group)
        group = []
    per_file = "%.0f bytes/file" % (int(kib) * 1024 / files_many) if files_many else "-"
    group.append((work, method, "-", "%.1f MiB" % (int(kib) / 1024), "-", "-",
                  "%s (%d files in the walk set)" % (per_file, files_many)))
if group:
    rows.append(group)

head = ("work", "method", "seconds", "rate", "vs native", "daemon CPU s", "what was done")
flat = [r for g in rows for r in g]
widths = [max(len(str(r[i])) for r in flat + [head]) for i in range(len(head))]
fmt = "  ".join(("%%-%ds" if i in (0, 1, 6) else "%%%ds") % w for i, w in enumerate(widths))
print()
print((fmt % head).rstrip())
print((fmt % tuple("-" * w for w in widths)).rstrip())
for i, g in enumerate(rows):
    if i:
        print()
    for r in g:
        print((fmt % r).rstrip())
print()
print("vs native: time / native time (lower is better). daemon CPU: user+sys of the FUSE")
print("daemon during the run. mount: start to a usable mount (vmunionfs scans the volumes,")
print("checks, builds the upper tree), warm cache; mount-cold: the same after drop_caches;")
print("native of both: find -printf of the volumes. rss-mount/rss-walk: the daemon's VmRSS")
print("after mounting and after the walk runs. unmount: until the daemon has exited.")
EOF
exit "$failed"
