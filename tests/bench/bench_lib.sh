# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# shellcheck disable=SC2034  # MOUNT_SECONDS and MOUNT_DAEMON are for the sourcing script
# tests/bench/bench_lib.sh - mounts, timers and clean-up shared by read.sh, vm.sh and
# scale.sh.
#
# The sourcing script sets BENCH_NAME (for messages), calls bench_help "$@" first and
# bench_scratch to get its scratch dir $work, whose EXIT trap unmounts what is left and
# stops what runs. Every wait here is bounded: MOUNT_TIMEOUT (300), UNMOUNT_TIMEOUT (300)
# seconds.

MOUNT_TIMEOUT=${MOUNT_TIMEOUT-300}
UNMOUNT_TIMEOUT=${UNMOUNT_TIMEOUT-300}
bench_mounts=() # mountpoints we mounted (or are mounting)
bench_daemons=() # their daemons, same index
bench_pids=() # other processes of ours to stop at exit (victoria-metrics)

# bench_help "$@": on -h or --help, prints the script's header comment (but its licence
# and shellcheck lines) and exits.
bench_help() {
	case "${1:-}" in
	-h | --help)
		sed -n '2,/^set -u/p' "$0" | sed '$d; /^# \(SPDX\|shellcheck\)/d; s/^# \{0,1\}//'
		exit 0
		;;
	esac
}

# bench_scratch NAME: creates the scratch dir $work as BENCH_DIR/NAME.XXXXXX (its real
# path: the mount table has those) and arms the clean-up.
bench_scratch() {
	mkdir -p "$BENCH_DIR" || die "cannot create $BENCH_DIR"
	work=$(mktemp -d "$BENCH_DIR/$1.XXXXXX") || die "cannot create a scratch dir"
	work=$(cd "$work" && pwd -P) || die "cannot enter $work"
	trap 'bench_cleanup' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

die() {
	echo "$BENCH_NAME: $*" >&2
	exit 2
}

log() {
	printf '[%4ds] %s\n' "$SECONDS" "$*" >&2
}

now() {
	date +%s.%N
}

# elapsed START END: END - START in seconds.
elapsed() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'
}

# positive_knobs NAME...: each variable must hold a positive integer of at most 9
# digits (an empty one too is refused). The bound comes before any arithmetic: test
# and $(( )) take no more than 64 bits, and no knob needs a billion.
positive_knobs() {
	local knob
	for knob in "$@"; do
		case "${!knob}" in
		'' | *[!0-9]*) die "$knob must be a positive integer (got '${!knob}')" ;;
		??????????*) die "$knob must be a positive integer of at most 9 digits (got '${!knob}')" ;;
		esac
		[ "${!knob}" -gt 0 ] || die "$knob must be a positive integer (got '${!knob}')"
	done
}

# CPU seconds (user+sys, all threads) used so far by process PID; 0 if it is gone.
cpu_of() {
	local pid=$1
	if [ -z "$pid" ] || [ ! -r "/proc/$pid/stat" ]; then
		echo 0
		return
	fi
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' \
		"/proc/$pid/stat"
}

# is_mounted MNT: from the mount table, without touching the (maybe hung) file system.
is_mounted() {
	awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# mount_fuse LOG MNT CMD...: runs `CMD... MNT` (a FUSE daemon in the foreground) and
# waits until MNT is in the mount table and answers a stat of its root. Sets
# MOUNT_SECONDS (wall, from the start of the daemon) and MOUNT_DAEMON. The daemon's
# output goes to LOG.
mount_fuse() {
	local log=$1 mnt=$2 start i
	shift 2
	mkdir -p "$mnt" || return 1
	start=$(now)
	"$@" "$mnt" </dev/null >"$log" 2>&1 &
	MOUNT_DAEMON=$!
	bench_mounts+=("$mnt")
	bench_daemons+=("$MOUNT_DAEMON")
	for ((i = 0; i < MOUNT_TIMEOUT * 100; i++)); do
		if is_mounted "$mnt" && timeout 10 stat -c %i "$mnt" >/dev/null 2>&1; then
			MOUNT_SECONDS=$(elapsed "$start" "$(now)")
			return 0
		fi
		kill -0 "$MOUNT_DAEMON" 2>/dev/null || break
		sleep 0.01
	done
	if kill -0 "$MOUNT_DAEMON" 2>/dev/null; then
		echo "$BENCH_NAME: ${1##*/} did not mount $mnt within ${MOUNT_TIMEOUT}s:" >&2
	else
		wait "$MOUNT_DAEMON"
		echo "$BENCH_NAME: ${1##*/} exited (status $?) before it mounted $mnt:" >&2
	fi
	sed 's/^/    /' "$log" >&2
	[ -s "$log" ] || echo "    (it printed nothing)" >&2
	return 1
}

# unmount_fuse MNT PID: unmounts a mount of mount_fuse, whichever daemon serves it
# (umount, which as root takes any mount; fusermount3 -u; a lazy unmount last); bounded.
# Waits for the daemon to exit (vmunionfs removes a private upper at exit), kills it at
# last.
unmount_fuse() {
	local mnt=$1 pid=$2 i
	if is_mounted "$mnt"; then
		timeout -k 5 "$UNMOUNT_TIMEOUT" umount "$mnt" 2>/dev/null ||
			timeout -k 5 "$UNMOUNT_TIMEOUT" fusermount3 -u "$mnt" 2>/dev/null ||
			timeout -k 5 30 umount -l "$mnt" 2>/dev/null ||
			echo "$BENCH_NAME: cannot unmount $mnt" >&2
	else
		kill "$pid" 2>/dev/null # interrupted while it was still mounting
	fi
	wait_exit "$pid" "$UNMOUNT_TIMEOUT" "daemon $pid did not exit" || true
	for i in "${!bench_mounts[@]}"; do
		[ "${bench_daemons[$i]}" != "$pid" ] || unset 'bench_mounts[i]' 'bench_daemons[i]'
	done
	return 0
}

# wait_exit PID WAIT_S WHAT [SIGNAL]: waits up to WAIT_S seconds for PID to exit (with
# SIGNAL: sending it at once and again every second), then says "WHAT within WAIT_S s;
# killing it" and SIGKILLs it. Returns 1 if it had to.
wait_exit() {
	local pid=$1 wait_s=$2 what=$3 sig=${4:-} i status=0
	for ((i = 0; i < wait_s * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		[ -z "$sig" ] || ((i % 10)) || kill "-$sig" "$pid" 2>/dev/null
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "$BENCH_NAME: $what within ${wait_s}s; killing it" >&2
		kill -9 "$pid" 2>/dev/null
		status=1
	fi
	wait "$pid" 2>/dev/null
	return "$status"
}

# stop_pid PID WAIT_S: SIGINT (victoria-metrics flushes and exits), SIGKILL after WAIT_S.
# The SIGINT is repeated every second: started in the background by a non-interactive
# shell, victoria-metrics inherits SIGINT ignored and drops one that comes before it has
# opened its storage (a Ctrl-C during its start, a start that timed out), which cost a
# wait of WAIT_S and a SIGKILL. Returns 1 if it had to be killed.
stop_pid() {
	local pid=$1 wait_s=$2 i status=0
	wait_exit "$pid" "$wait_s" "process $pid did not exit on SIGINT" INT || status=1
	for i in "${!bench_pids[@]}"; do
		[ "${bench_pids[$i]}" != "$pid" ] || unset 'bench_pids[i]'
	done
	return "$status"
}

# shellcheck disable=SC2317  # runs from the sourcing script's EXIT trap
bench_cleanup() {
	local pid i
	for pid in "${bench_pids[@]}"; do
		stop_pid "$pid" 60
	done
	for i in "${!bench_mounts[@]}"; do
		unmount_fuse "${bench_mounts[$i]}" "${bench_daemons[$i]}"
	done
	if [ "${KEEP:-0}" = 1 ]; then
		echo "$BENCH_NAME: KEEP=1: data and logs kept in $work" >&2
	elif [ -n "${work:-}" ]; then
		rm -rf "$work"
	fi
}
