# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are for the tests that source us
# tests/e2e/lib.sh - helpers for the end-to-end TAP shell tests.
#
# Source it first thing from a test run by automake's tap-driver:
#
#   #!/bin/bash
#   set -u
#   . "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
#   require_root_fuse
#   mnt=$(scratch_dir mnt)
#   mount_union "$mnt" "$DATA_DIR/v1.79.5/node0" "$DATA_DIR/v1.79.5/node1"
#   tap_ok $? "mounted"
#   ...
#   tap_done
#
# Rules of use (each is there for a reason explained at the helper):
# - Do not use `set -e`: tap_ok and friends return non-zero on a failed
#   check so that `tap_ok ... || tap_diag ...` works.
# - Call on_exit, mount_union, vm_start and snapshot_volumes in the test's
#   own shell, never inside $( ... ) or ( ... ): state and cleanup
#   registrations made in a subshell are lost when it exits.
#   (scratch_dir is safe in $( ... ).)
# - Every background process writes to a log file, never to stdout: the
#   tap-driver reads stdout until EOF, so a daemon holding it open would
#   hang `make check`.
#
# Environment knobs:
#   top_srcdir, top_builddir  set by `make check`; default: the repo root
#   VMUNIONFS                 daemon binary (default $top_builddir/vmunionfs)
#   VICTORIA_METRICS          VM binary (default: victoria-metrics in PATH)
#   E2E_TIMEOUT               watchdog for the whole test in s (default 900, 0=off)
#   E2E_REQUIRE_ALL=1         missing prerequisites fail instead of skipping (CI)
#   KEEP_SCRATCH=1            keep the scratch dir (its path is printed)
#   E2E_SANITIZER_LOG_DIR     if set, vmunionfs daemons write ASan/UBSan
#                             reports there (log_path); .ci/run sets it
#   MOUNT_TIMEOUT, UNMOUNT_TIMEOUT, VM_START_TIMEOUT, VM_STOP_TIMEOUT  (s)

if [ -n "${_E2E_LIB_LOADED:-}" ]; then
	return 0
fi
_E2E_LIB_LOADED=1

# ---------------------------------------------------------------------------
# Paths

_e2e_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$_e2e_lib_dir/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir
E2E_DIR="$top_srcdir/tests/e2e"
DATA_DIR="$top_srcdir/tests/data"
VMUNIONFS="${VMUNIONFS:-$top_builddir/vmunionfs}"
VMUNION="${VMUNION:-$top_builddir/vmunion}"
# vmunion with the crash points of the crash tests (never installed).
VMUNION_TEST="${VMUNION_TEST:-$top_builddir/tests/vmunion-test}"
VICTORIA_METRICS="${VICTORIA_METRICS:-victoria-metrics}"
# Only the standard library is used, so any python3 >= 3.5 will do.
PYTHON3="${PYTHON3:-python3}"

# The shell that sourced us: cleanup runs only there, never in subshells
# (bash resets traps in subshells anyway, this is belt and braces).
_E2E_MAIN_PID=$$

# ---------------------------------------------------------------------------
# TAP output (plan-less: the plan is printed by tap_done at the end)

_tap_n=0
_tap_failed=0

# tap_diag MSG... : print diagnostics as TAP comments, one "# " per line.
# Without arguments it reads them from stdin: `some_cmd | tap_diag`.
tap_diag() {
	local line
	if [ "$#" -eq 0 ]; then
		cat
	else
		printf '%s\n' "$*"
	fi | while IFS= read -r line || [ -n "$line" ]; do
		printf '# %s\n' "$line"
	done
}

# tap_ok STATUS DESC : "ok" if STATUS is 0, else "not ok". Returns 0/1.
tap_ok() {
	local status=$1
	shift
	_tap_n=$((_tap_n + 1))
	if [ "$status" -eq 0 ] 2>/dev/null; then
		printf 'ok %d - %s\n' "$_tap_n" "$*"
		return 0
	fi
	_tap_failed=$((_tap_failed + 1))
	printf 'not ok %d - %s\n' "$_tap_n" "$*"
	tap_diag "status: $status"
	return 1
}

# tap_todo STATUS REASON DESC : a check of a known defect ("# TODO REASON"):
# a failure is expected and does not fail the test (XFAIL); once it passes,
# automake reports XPASS, which fails the suite: then drop the TODO.
tap_todo() {
	local status=$1 reason=$2
	shift 2
	_tap_n=$((_tap_n + 1))
	if [ "$status" -eq 0 ] 2>/dev/null; then
		printf 'ok %d - %s # TODO %s\n' "$_tap_n" "$*" "$reason"
	else
		printf 'not ok %d - %s # TODO %s\n' "$_tap_n" "$*" "$reason"
	fi
}

# tap_is GOT WANT DESC : string equality check with got/want diagnostics.
tap_is() {
	local got=$1 want=$2
	shift 2
	if [ "$got" = "$want" ]; then
		tap_ok 0 "$*"
		return 0
	fi
	_tap_n=$((_tap_n + 1))
	_tap_failed=$((_tap_failed + 1))
	printf 'not ok %d - %s\n' "$_tap_n" "$*"
	tap_diag "got:  '$got'"
	tap_diag "want: '$want'"
	return 1
}

# tap_run DESC CMD... : run CMD (stdin /dev/null, stdout+stderr to a file
# whose path is left in TAP_OUT), check that it exits 0; on failure show the
# end of its output. tap_fails DESC CMD... : the same, but CMD must fail.
_tap_cmd_seq=0
tap_run() {
	_tap_cmd 0 "$@"
}
tap_fails() {
	_tap_cmd 1 "$@"
}
_tap_cmd() {
	local want_fail=$1 desc=$2 rc
	shift 2
	_tap_cmd_seq=$((_tap_cmd_seq + 1))
	TAP_OUT="$SCRATCH/cmd.$_tap_cmd_seq.out"
	"$@" >"$TAP_OUT" 2>&1 </dev/null
	rc=$?
	if [ "$want_fail" = 1 ]; then
		[ "$rc" -ne 0 ]
		tap_ok $? "$desc" && return 0
		tap_diag "expected a failure, got status 0: $*"
	else
		tap_ok "$rc" "$desc" && return 0
		tap_diag "command: $*"
	fi
	tail -n 20 "$TAP_OUT" | tap_diag
	return 1
}

# tap_skip REASON DESC : one skipped check ("ok N - DESC # SKIP REASON").
tap_skip() {
	local reason=$1
	shift
	_tap_n=$((_tap_n + 1))
	printf 'ok %d - %s # SKIP %s\n' "$_tap_n" "$*" "$reason"
}

# tap_skip_all REASON : skip the whole test. Only valid before any check.
tap_skip_all() {
	printf '1..0 # SKIP %s\n' "$*"
	_tap_planned=1
	exit 0
}

# tap_bail REASON : abort the whole test run (tap-driver reports ERROR).
tap_bail() {
	printf 'Bail out! %s\n' "$*"
	_tap_planned=1
	exit 1
}

# tap_done : print the plan and exit 1 if any check failed. A test that ran
# no check at all is a failure, not a silent pass.
tap_done() {
	if [ "$_tap_n" -eq 0 ]; then
		tap_ok 1 "test ran no checks"
	fi
	printf '1..%d\n' "$_tap_n"
	_tap_planned=1
	if [ "$_tap_failed" -gt 0 ]; then
		tap_diag "$_tap_failed of $_tap_n checks failed"
		exit 1
	fi
	exit 0
}

# ---------------------------------------------------------------------------
# Cleanup registry

_cleanup=()

# on_exit CMD [ARGS...] : run CMD at exit (reverse order of registration).
# With one argument it is eval'd as a shell string ("kill $pid; rm x"); with
# several, they are a command and its arguments, quoted safely.
on_exit() {
	if [ "$#" -eq 1 ]; then
		_cleanup+=("$1")
	else
		_cleanup+=("$(printf '%q ' "$@")")
	fi
}

# Pops each command before running it, so a signal arriving in the middle
# (or EXIT after INT) does not run anything twice, and a failing command
# does not stop the others.
_run_cleanup() {
	[ "${BASHPID:-$$}" = "$_E2E_MAIN_PID" ] || return 0
	local i cmd
	while [ "${#_cleanup[@]}" -gt 0 ]; do
		i=$((${#_cleanup[@]} - 1))
		cmd=${_cleanup[$i]}
		unset "_cleanup[$i]"
		_cleanup=("${_cleanup[@]}")
		eval "$cmd" || true
	done
}

_on_exit_trap() {
	local rc=$?
	_run_cleanup
	if [ -z "${_tap_planned:-}" ] && [ "$_tap_n" -gt 0 ]; then
		# Test died before tap_done: make the TAP stream say so instead of
		# leaving an unterminated plan-less stream.
		printf 'not ok %d - test exited early (status %d)\n' $((_tap_n + 1)) "$rc"
		printf '1..%d\n' $((_tap_n + 1))
		[ "$rc" -ne 0 ] || rc=1
	fi
	exit "$rc"
}

_on_signal_trap() {
	local sig=$1 code=$2
	trap - "$sig"
	tap_diag "caught SIG$sig, cleaning up"
	exit "$code" # runs the EXIT trap
}

trap _on_exit_trap EXIT
trap '_on_signal_trap INT 130' INT
trap '_on_signal_trap TERM 143' TERM
trap '_on_signal_trap HUP 129' HUP

# ---------------------------------------------------------------------------
# Scratch directory: one per test, made at source time so that
# `d=$(scratch_dir)` (a subshell) still refers to a registered directory.

_scratch_make() {
	local base=${TMPDIR:-/tmp} name
	name=$(basename "${0%.sh}")
	SCRATCH=$(mktemp -d "$base/vmunionfs-e2e-$name.XXXXXX") || {
		echo "Bail out! cannot create a scratch dir under $base"
		exit 1
	}
	export SCRATCH
	if [ "${KEEP_SCRATCH:-0}" = 1 ]; then
		on_exit "tap_diag 'scratch dir kept: $SCRATCH'"
	else
		# chmod the dirs first: tests may leave read-only trees behind. Never
		# chmod files: a hard link (materialize --mode link) shares its mode
		# with the source volume.
		on_exit _scratch_cleanup
	fi
}

_scratch_cleanup() {
	local m
	# Never rm -rf through a mount that is still there (a failed cleanup
	# or a test that mounted by hand): detach whatever is under SCRATCH.
	while IFS= read -r m; do
		[ -n "$m" ] || continue
		tap_diag "still mounted at exit: $m (lazy unmount)"
		fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done < <(awk -v t="$SCRATCH/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo)
	find "$SCRATCH" -type d -exec chmod u+rwx {} + 2>/dev/null
	rm -rf "$SCRATCH"
}
_scratch_make

# scratch_dir [NAME] : print the test's scratch dir, or (with NAME) create
# and print the subdirectory NAME of it. Removed at exit.
scratch_dir() {
	if [ "$#" -eq 0 ]; then
		printf '%s\n' "$SCRATCH"
		return 0
	fi
	mkdir -p "$SCRATCH/$1" && printf '%s\n' "$SCRATCH/$1"
}

# ---------------------------------------------------------------------------
# Small utilities

# wait_for TIMEOUT_S CMD... : poll CMD every 0.1 s until it succeeds.
# Returns 0 on success, 1 on timeout.
wait_for() {
	local timeout=$1
	shift
	local deadline=$((SECONDS + timeout))
	while :; do
		"$@" && return 0
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# require_cmd CMD... : skip the test unless every CMD is available.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || _require_fail "$c not found"
	done
}

_require_fail() {
	if [ "${E2E_REQUIRE_ALL:-0}" = 1 ]; then
		tap_bail "prerequisite missing (E2E_REQUIRE_ALL=1): $*"
	fi
	tap_skip_all "$*"
}

# require_root_fuse : skip unless we can mount FUSE file systems.
require_root_fuse() {
	[ "$(id -u)" -eq 0 ] || _require_fail "needs root"
	[ -c /dev/fuse ] || _require_fail "no /dev/fuse"
	command -v fusermount3 >/dev/null 2>&1 || _require_fail "no fusermount3"
	command -v mountpoint >/dev/null 2>&1 || _require_fail "no mountpoint(1)"
}

# require_vm : skip unless victoria-metrics and python3 are there.
require_vm() {
	command -v "$VICTORIA_METRICS" >/dev/null 2>&1 ||
		_require_fail "$VICTORIA_METRICS not found (apt-get install victoria-metrics)"
	command -v "$PYTHON3" >/dev/null 2>&1 || _require_fail "python3 not found"
}

# http_get URL [TIMEOUT_S] : print the body; non-zero on error or HTTP >= 400.
http_get() {
	local url=$1 timeout=${2:-10}
	if command -v curl >/dev/null 2>&1; then
		curl -fsS --max-time "$timeout" "$url"
	else
		"$PYTHON3" -c '
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as r:
    sys.stdout.buffer.write(r.read())
' "$url" "$timeout"
	fi
}

# free_port : print a TCP port on 127.0.0.1 that is free right now.
free_port() {
	if command -v "$PYTHON3" >/dev/null 2>&1; then
		"$PYTHON3" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
		return
	fi
	# Fallback: random ports until nothing answers on one.
	local p i
	for i in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 1
}

# _log_tail FILE [N] : the last N lines of a log as TAP diagnostics.
_log_tail() {
	local f=$1 n=${2:-30}
	[ -s "$f" ] || return 0
	tap_diag "--- last $n lines of $f:"
	tap_diag "$(tail -n "$n" "$f")"
}

# _pid_alive PID : true while PID exists and is not a zombie.
_pid_alive() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	st=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)
	[ "$st" != Z ]
}

# _stop_pid PID SIG WAIT_S : send SIG, wait up to WAIT_S for the exit, then
# SIGKILL. Returns 0 if it exited after SIG, 1 if it had to be killed.
_stop_pid() {
	local pid=$1 sig=$2 waits=$3
	_pid_alive "$pid" || return 0
	kill -s "$sig" "$pid" 2>/dev/null
	if wait_for "$waits" eval "! _pid_alive $pid"; then
		return 0
	fi
	tap_diag "pid $pid ignored SIG$sig for ${waits}s, sending SIGKILL"
	kill -s KILL "$pid" 2>/dev/null
	wait_for 10 eval "! _pid_alive $pid" ||
		tap_diag "pid $pid still there after SIGKILL"
	return 1
}

# ---------------------------------------------------------------------------
# vmunionfs mounts

declare -A _MNT_PIDS=()  # mountpoint -> daemon pid(s)
declare -A _MNT_CONN=()  # mountpoint -> /sys/fs/fuse/connections/<N>
declare -A _MNT_LOG=()   # mountpoint -> log file
_mnt_seq=0

# _canon_mnt DIR : absolute path with symlinks resolved, as mountinfo shows
# it. Only the parent is resolved: touching DIR itself would ask the FUSE
# daemon, which may be hung or gone.
_canon_mnt() {
	local d=${1%/} parent
	[ -n "$d" ] || d=/
	parent=$(cd "$(dirname "$d")" 2>/dev/null && pwd -P) || parent=$(dirname "$d")
	parent=${parent%/}
	printf '%s/%s\n' "$parent" "$(basename "$d")"
}

# _mnt_is_mounted DIR : true if DIR is a mount point in the kernel's table.
# Reads mountinfo instead of stat'ing DIR, which would hang on a stuck FUSE
# daemon and fail with ENOTCONN on a dead one.
# copy_sample_volume: vol, a copy of the 1.79 sample node0 in the scratch
# dir, snapshotted for assert_volumes_unchanged.
copy_sample_volume() {
	vol="$SCRATCH/vols/node0"
	copy_volume "$DATA_DIR/v1.79.5/node0" "$vol" || tap_bail "cannot copy the volume"
	snapshot_volumes "$vol"
}

# read_ahead_kb_of MNT: how far the kernel reads ahead in the mount at MNT.
read_ahead_kb_of() {
	cat "/sys/class/bdi/$(mountpoint -d "$1")/read_ahead_kb"
}

_mnt_is_mounted() {
	awk -v m="$1" '
		function unesc(s) { gsub(/\\040/, " ", s); gsub(/\\011/, "\t", s);
		                    gsub(/\\012/, "\n", s); gsub(/\\134/, "\\", s); return s }
		unesc($5) == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# _mnt_conn DIR : print the FUSE connection number (minor of st_dev) of DIR.
_mnt_conn() {
	awk -v m="$1" '
		function unesc(s) { gsub(/\\040/, " ", s); gsub(/\\011/, "\t", s);
		                    gsub(/\\012/, "\n", s); gsub(/\\134/, "\\", s); return s }
		unesc($5) == m { split($3, d, ":"); c = d[2] } END { if (c != "") print c }' \
		/proc/self/mountinfo
}

# _daemon_pids BIN MNT : pids running BIN whose last argument is MNT.
# The daemon forks away from the process we started, so look it up.
_daemon_pids() {
	local bin=$1 mnt=$2 p last
	bin=$(readlink -f "$bin")
	# -ef stats both (no readlink per process: hundreds of forks take
	# tens of seconds on a loaded machine).
	for p in /proc/[0-9]*; do
		[ "$p/exe" -ef "$bin" ] || continue
		last=$(tr '\0' '\n' 2>/dev/null <"$p/cmdline" | tail -n 1)
		[ "$last" = "$mnt" ] && printf '%s\n' "${p#/proc/}"
	done
}

# mount_union MOUNTPOINT VOLUME... [-- EXTRA_VMUNIONFS_ARGS...]
# Runs "$VMUNIONFS" EXTRA... VOLUME... MOUNTPOINT, waits up to
# MOUNT_TIMEOUT (10) s for the mount and registers the unmount as cleanup.
# Works both when the daemon forks to the background (default) and with -f.
# Returns non-zero (with the daemon's log as diagnostics) if it did not mount.
# The daemon's stdout/stderr go to $SCRATCH/vmunionfs.N.log (MOUNT_LOG).
mount_union() {
	local mnt vols=() extra=() seen_dd=0 a
	if [ "$#" -lt 2 ]; then
		tap_diag "usage: mount_union MOUNTPOINT VOLUME... [-- ARGS...]"
		return 2
	fi
	mnt=$1
	shift
	for a in "$@"; do
		if [ "$seen_dd" = 0 ] && [ "$a" = -- ]; then
			seen_dd=1
		elif [ "$seen_dd" = 0 ]; then
			vols+=("$a")
		else
			extra+=("$a")
		fi
	done
	mkdir -p "$mnt" || return 1
	mnt=$(_canon_mnt "$mnt")
	if [ ! -x "$VMUNIONFS" ]; then
		tap_diag "mount_union: $VMUNIONFS not built"
		return 1
	fi
	_mnt_seq=$((_mnt_seq + 1))
	MOUNT_LOG="$SCRATCH/vmunionfs.$_mnt_seq.log"
	_MNT_LOG[$mnt]=$MOUNT_LOG
	{ printf '+'; printf ' %q' "$VMUNIONFS" "${extra[@]}" "${vols[@]}" "$mnt"; echo; } >"$MOUNT_LOG"

	# Register the cleanup before starting, so that even an interrupted
	# wait leaves nothing mounted.
	on_exit "_unmount_quiet '$mnt'"
	local -a env=()
	if [ -n "${E2E_SANITIZER_LOG_DIR:-}" ]; then
		# The daemon's stderr goes to /dev/null once it is detached, and
		# its exit status reaches nobody: sanitizer reports (leaks at exit)
		# go to files that .ci/run checks instead.
		env=(env "ASAN_OPTIONS=${ASAN_OPTIONS:-}:log_path=$E2E_SANITIZER_LOG_DIR/vmunionfs-asan"
			"UBSAN_OPTIONS=${UBSAN_OPTIONS:-}:log_path=$E2E_SANITIZER_LOG_DIR/vmunionfs-ubsan")
	fi
	"${env[@]}" "$VMUNIONFS" "${extra[@]}" "${vols[@]}" "$mnt" >>"$MOUNT_LOG" 2>&1 </dev/null &
	local pid=$! rc='' deadline=$((SECONDS + ${MOUNT_TIMEOUT:-10}))
	while :; do
		if mountpoint -q "$mnt" 2>/dev/null; then
			break
		fi
		if [ -z "$rc" ] && ! _pid_alive "$pid"; then
			wait "$pid"
			rc=$?
			if [ "$rc" -ne 0 ]; then
				tap_diag "mount_union: vmunionfs exited with status $rc"
				_log_tail "$MOUNT_LOG"
				return 1
			fi
			# Status 0: the parent returned after daemonizing; the mount
			# should already be there, but give it the remaining time.
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			tap_diag "mount_union: $mnt not mounted after ${MOUNT_TIMEOUT:-10}s"
			_log_tail "$MOUNT_LOG"
			_unmount_quiet "$mnt"
			_stop_pid "$pid" TERM 5 || true
			return 1
		fi
		sleep 0.1
	done
	_MNT_CONN[$mnt]=$(_mnt_conn "$mnt")
	_MNT_PIDS[$mnt]=$(_daemon_pids "$VMUNIONFS" "$mnt" | tr '\n' ' ')
	if [ -z "${_MNT_PIDS[$mnt]// /}" ] && _pid_alive "$pid"; then
		_MNT_PIDS[$mnt]=$pid
	fi
	# For the watchdog, which runs in another process.
	printf '%s\t%s\t%s\n' "$mnt" "${_MNT_CONN[$mnt]}" "${_MNT_PIDS[$mnt]}" \
		>>"$SCRATCH/.mounts"
	return 0
}

# union_pids MOUNTPOINT : print the pid(s) of the daemon serving MOUNTPOINT
# (for kill tests). Empty if unknown.
union_pids() {
	local mnt
	mnt=$(_canon_mnt "$1")
	printf '%s\n' "${_MNT_PIDS[$mnt]:-}"
}

# union_pid MOUNTPOINT : print the pid of the daemon serving MOUNTPOINT
# (the first, if more are known).
union_pid() {
	local pids
	pids=$(union_pids "$1")
	printf '%s\n' "${pids%% *}"
}

# fds_of PID : print how many fds PID holds.
fds_of() {
	ls "/proc/$1/fd" | wc -l
}

# hard_fd_limit PID : print PID's hard limit of fds.
hard_fd_limit() {
	prlimit --pid "$1" --nofile --noheadings --output HARD --raw
}

# tight_fd_limit PID : lowers PID's soft fd limit to twice the fds it holds
# plus 16, so that a few files fill a daemon's fd cache (it keeps half of
# the limit); sets $idle, the fds it held, and $limit.
tight_fd_limit() {
	idle=$(fds_of "$1")
	limit=$((2 * idle + 16))
	prlimit --pid "$1" --nofile="$limit:$(hard_fd_limit "$1")"
}

# unmount_union MOUNTPOINT : fusermount3 -u, wait up to UNMOUNT_TIMEOUT (10)
# s for the mount and then the daemon to go away; falls back to a lazy
# unmount, aborting the FUSE connection and killing the daemon. Returns 0
# only if the clean unmount worked and the daemon exited by itself.
unmount_union() {
	local mnt t=${UNMOUNT_TIMEOUT:-30} ok=0 pid
	mnt=$(_canon_mnt "$1")
	if _mnt_is_mounted "$mnt"; then
		if ! fusermount3 -u "$mnt" 2>>"$SCRATCH/fusermount.log"; then
			tap_diag "unmount_union: fusermount3 -u $mnt failed"
			_log_tail "$SCRATCH/fusermount.log" 5
		fi
		if ! wait_for "$t" eval "! _mnt_is_mounted '$mnt'"; then
			tap_diag "unmount_union: $mnt still mounted after ${t}s, lazy unmount"
			ok=1
			_force_unmount "$mnt"
		fi
	fi
	# Wait for the daemon to exit: it flushes logs (and ASan reports) then,
	# and the next test must not race with it.
	for pid in ${_MNT_PIDS[$mnt]:-}; do
		if ! wait_for "$t" eval "! _pid_alive $pid"; then
			tap_diag "unmount_union: daemon $pid still running ${t}s after unmount"
			ok=1
			_stop_pid "$pid" TERM 5 || true
		fi
	done
	_MNT_PIDS[$mnt]=
	return "$ok"
}

# _force_unmount MNT : for stuck daemons: abort the FUSE connection (fails
# all pending requests with ENOTCONN), then detach the mount.
_force_unmount() {
	local mnt=$1 conn=${_MNT_CONN[$1]:-}
	[ -n "$conn" ] || conn=$(_mnt_conn "$mnt")
	if [ -n "$conn" ] && [ -w "/sys/fs/fuse/connections/$conn/abort" ]; then
		echo 1 >"/sys/fs/fuse/connections/$conn/abort" 2>/dev/null
	fi
	fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
}

# Cleanup form: never fails, keeps quiet when already unmounted.
_unmount_quiet() {
	local mnt=$1
	if _mnt_is_mounted "$mnt" || [ -n "${_MNT_PIDS[$mnt]:-}" ]; then
		unmount_union "$mnt" || true
	fi
}

# ---------------------------------------------------------------------------
# Volume snapshots

# tree_checksum [--mtime] DIR : one line per entry under DIR, sorted by path:
#   path<TAB>type<TAB>size<TAB>mode[<TAB>mtime]<TAB>sha256
# type: f file, d dir, l symlink (sha256 of the target), other find(1)
# letters for the rest. Directory sizes are "-" (they depend on the fs).
tree_checksum() {
	local with_mtime=0
	if [ "${1:-}" = --mtime ]; then
		with_mtime=1
		shift
	fi
	local dir=$1
	[ -d "$dir" ] || {
		echo "tree_checksum: $dir is not a directory" >&2
		return 1
	}
	# python3 rather than find|sha256sum: one lstat per entry, odd names
	# (spaces, newlines) escaped, no xargs corner cases, hashes streamed.
	"$PYTHON3" - "$dir" "$with_mtime" <<'PY'
import hashlib, os, stat, sys
root, with_mtime = sys.argv[1], sys.argv[2] == "1"
out = []
def entries():
    yield root  # the root itself: its mtime moves when entries come and go
    def fail(err):
        raise err  # an unreadable dir must not silently drop out
    for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
        for name in dirnames + filenames:
            yield os.path.join(dirpath, name)
for p in entries():
    rel = os.path.relpath(p, root)
    st = os.lstat(p)
    m = st.st_mode
    if stat.S_ISDIR(m):
        t, size, digest = "d", "-", "-"
    elif stat.S_ISREG(m):
        t, size = "f", str(st.st_size)
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
    elif stat.S_ISLNK(m):
        t, size = "l", str(st.st_size)
        digest = hashlib.sha256(os.fsencode(os.readlink(p))).hexdigest()
    else:
        t, size, digest = "o", "-", "-"
    cols = [rel.encode("unicode_escape").decode("ascii"), t, size, "%04o" % stat.S_IMODE(m)]
    if with_mtime:
        cols.append(str(st.st_mtime_ns))
    cols.append(digest)
    out.append("\t".join(cols))
out.sort()
sys.stdout.write("\n".join(out) + ("\n" if out else ""))
PY
}

_snap_dirs=()
_snap_files=()

# snapshot_volumes DIR... : remember tree_checksum --mtime of each DIR
# (added to those snapshotted before; assert_volumes_unchanged checks all).
# mtimes are included: rewriting a file with the same bytes still counts
# as writing to a read-only volume.
snapshot_volumes() {
	local d f
	for d in "$@"; do
		f="$SCRATCH/.snapshot.${#_snap_files[@]}"
		tree_checksum --mtime "$d" >"$f" || return 1
		_snap_dirs+=("$d")
		_snap_files+=("$f")
	done
}

# assert_volumes_unchanged [DESC] : one TAP check per snapshotted DIR.
assert_volumes_unchanged() {
	local desc=${1:-volume unchanged} i now rc=0
	for i in "${!_snap_dirs[@]}"; do
		now="$SCRATCH/.snapshot.$i.now"
		tree_checksum --mtime "${_snap_dirs[$i]}" >"$now" 2>&1
		if cmp -s "${_snap_files[$i]}" "$now"; then
			tap_ok 0 "$desc: ${_snap_dirs[$i]}"
		else
			tap_ok 1 "$desc: ${_snap_dirs[$i]}"
			tap_diag "$(diff "${_snap_files[$i]}" "$now" | head -n 20)"
			rc=1
		fi
	done
	return "$rc"
}

# copy_volume SRC DEST : a writable copy of a volume (e.g. a fixture node).
copy_volume() {
	mkdir -p "$(dirname "$2")" && cp -a "$1" "$2" && chmod -R u+w "$2"
}

# padded_set BYTES : writable copies of the four v1.79.5 volumes in
# $SCRATCH/set, each values.bin carrying BYTES of random bytes at its end
# (victoria-metrics reads blocks at the offsets its index gives and never
# looks at the tail, so it still serves the set in full): big enough for a
# kill to land in the middle of a copy. Sets the array vols.
padded_set() {
	local n f
	head -c "$1" /dev/urandom >"$SCRATCH/pad.bin" || tap_bail "cannot write the padding"
	vols=()
	for n in 0 1 2 3; do
		copy_volume "$DATA_DIR/v1.79.5/node$n" "$SCRATCH/set/node$n" ||
			tap_bail "cannot copy node$n"
		for f in "$SCRATCH/set/node$n"/data/small/*/*/values.bin; do
			cat "$SCRATCH/pad.bin" >>"$f"
		done
		vols+=("$SCRATCH/set/node$n")
	done
	rm -f "$SCRATCH/pad.bin"
}

# copy_two_volumes: copies the sample's node0 and node1 into $vols (set to
# $SCRATCH/vols), for a test that changes them; bails out if it cannot.
copy_two_volumes() {
	vols="$SCRATCH/vols"
	copy_volume "$DATA_DIR/v1.79.5/node0" "$vols/node0" &&
		copy_volume "$DATA_DIR/v1.79.5/node1" "$vols/node1"
	tap_ok $? "copied two volumes" || tap_bail "cannot copy the sample volumes"
}

# shared_volumes : copy_two_volumes, readable by every user, in a scratch
# dir every user may enter (for allow_other mounts and as_nobody).
shared_volumes() {
	copy_two_volumes
	chmod -R go+rX "$vols"
	chmod 0755 "$SCRATCH"
}

# passthrough_volumes : skips the whole test unless this build has FUSE
# passthrough; else copy_two_volumes, snapshotted.
passthrough_volumes() {
	"$VMUNIONFS" -V | grep -q "passthrough built" || tap_skip_all "no passthrough built"
	copy_two_volumes
	snapshot_volumes "$vols/node0" "$vols/node1"
}

# preview_of_two : writable copies of v1.79.5 node0 and node1 in
# $SCRATCH/vols (snapshotted), mounted as a preview at $mnt (upper
# $SCRATCH/upper).
preview_of_two() {
	copy_two_volumes
	snapshot_volumes "$vols/node0" "$vols/node1"
	mnt=$(scratch_dir mnt)
	mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$SCRATCH/upper"
	tap_ok $? "preview mounted" || tap_bail "no mount"
}

# preview_of_many_lazy_parts COPIES : preview_of_two, each partition of each
# volume given COPIES - 1 copies of its first part under new ids, every
# partition populated (a mkdir and rmdir in it): 8 x COPIES lazy part dirs.
# Sets vols, upper, mnt.
preview_of_many_lazy_parts() {
	local copies=$1 n m
	copy_two_volumes
	for n in node0 node1; do
		python3 - "$vols/$n/data/small" "$n" "$copies" <<'PY' || tap_bail "cannot copy the parts"
import os, shutil, sys
base = 0x18EB73DEA55F0800 + (100000 if sys.argv[2] == "node1" else 0)
for m in sorted(os.listdir(sys.argv[1])):
    month = os.path.join(sys.argv[1], m)
    part = sorted(x for x in os.listdir(month) if "_" in x)[0]
    for i in range(1, int(sys.argv[3])):
        shutil.copytree(os.path.join(month, part),
                        os.path.join(month, "%s_%016X" % (part.rsplit("_", 1)[0], base + i)))
PY
	done
	snapshot_volumes "$vols/node0" "$vols/node1"
	upper=$SCRATCH/upper
	mnt=$(scratch_dir mnt)
	mount_union "$mnt" "$vols/node0" "$vols/node1" -- -o "upper=$upper"
	tap_ok $? "preview mounted" || tap_bail "no mount"
	for m in 2024_01 2024_02 2024_03 2024_04; do
		mkdir "$mnt/data/small/$m/probe" && rmdir "$mnt/data/small/$m/probe" || break
	done
	tap_ok $? "the partitions are populated: $((8 * copies)) lazy part dirs"
}

# tmpfs_upper INODES : a 64 MiB tmpfs of INODES inodes for an upper that
# fills up, unmounted at exit; $upperfs is where it is mounted.
tmpfs_upper() {
	upperfs=$(scratch_dir upperfs)
	mount -t tmpfs -o "size=64m,nr_inodes=$1" vmunionfs-test "$upperfs"
	tap_ok $? "a tmpfs of $1 inodes for the upper" || tap_bail "no tmpfs"
	on_exit "umount -l '$upperfs' 2>/dev/null"
}

# unlink_in_every_part NAME : unlinks NAME from every part dir of every
# partition of data/small on $mnt, as vmstorage's merges do.
unlink_in_every_part() {
	python3 - "$mnt" "$1" <<'PY'
import os, sys
mnt, name = sys.argv[1], sys.argv[2]
for m in sorted(os.listdir(mnt + "/data/small")):
    d = os.path.join(mnt, "data/small", m)
    for p in sorted(os.listdir(d)):
        if "_" in p:
            os.unlink(os.path.join(d, p, name))
PY
}

# shared_preview : preview_of_two, readable by every user, mounted in the
# foreground with allow_other; $pid is the daemon's.
shared_preview() {
	shared_volumes
	snapshot_volumes "$vols/node0" "$vols/node1"
	mnt=$(scratch_dir mnt)
	mount_union "$mnt" "$vols/node0" "$vols/node1" -- -f -o allow_other -o "upper=$SCRATCH/upper"
	tap_ok $? "preview mounted with allow_other" || tap_bail "no mount"
	pid=$(union_pid "$mnt")
}

# asan_build : whether vmunionfs is built with ASan, whose shadow memory and
# quarantine make its VmRSS no measure of the daemon's own.
asan_build() {
	ldd "$VMUNIONFS" 2>/dev/null | grep -q libasan
}

# vm_rss PID : the VmRSS of process PID, in KiB.
vm_rss() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# daemon_settle PID : waits (30 s at most) until daemon PID has used no CPU
# for 2.5 s: the FORGETs a drop_caches queued are processed (the kernel sends
# them interleaved with other requests, so on a loaded machine they reach the
# daemon well after) and its lazy dirs' deferred work is done (within 2 s),
# before its memory is read.
daemon_settle() {
	local pid=$1 last='' now stable=0 deadline=$((SECONDS + 30))
	while [ "$SECONDS" -lt "$deadline" ]; do
		now=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) || return 1
		if [ "$now" = "$last" ]; then
			stable=$((stable + 1))
			[ "$stable" -ge 5 ] && return 0
		else
			stable=0
		fi
		last=$now
		sleep 0.5
	done
	return 1
}

# preview_of_generated_parts [MOUNT_OPTION...] : a preview of read_gen.py's
# 2 x 4000 parts in 4 partitions (readable by all), in one thread (-s: no
# worker started meanwhile counts its buffers in VmRSS). Sets set_dir, upper,
# mnt and pid.
preview_of_generated_parts() {
	set_dir=$(scratch_dir many)
	python3 "$top_srcdir/tests/bench/read_gen.py" many "$set_dir" --volumes 2 --parts 4000 \
		>/dev/null && chmod -R go+rX "$set_dir"
	tap_ok $? "a set of 2 x 4000 parts in 4 partitions" || tap_done
	upper=$SCRATCH/many-upper
	mnt=$(scratch_dir many-mnt)
	# One malloc arena: memory one thread frees (the flusher's deferred
	# work, at times of the load's choosing) is then memory the next may
	# reuse, and VmRSS measures the daemon, not glibc's arenas.
	MALLOC_ARENA_MAX=1 mount_union "$mnt" "$set_dir/v0" "$set_dir/v1" -- -s "$@" \
		-o "upper=$upper"
	tap_ok $? "a preview of it" || tap_done
	pid=$(union_pid "$mnt")
}

# rounds_reuse_memory WHAT : the test's round PARTITION... (WHAT, to the
# files of those partitions of preview_of_generated_parts, then the kernel's
# inodes dropped) on 2024_01 and 2024_02, then on 2024_03 and 2024_04: the
# second round may grow the daemon by under 60 bytes per file of the first,
# whose freed memory it reuses.
rounds_reuse_memory() {
	local files first second
	files=$(find "$set_dir"/v?/data/small/2024_0[12] -mindepth 2 -type f | wc -l)
	round 2024_01 2024_02
	tap_ok $? "round 1: $1, $files files" || tap_done
	daemon_settle "$pid" || tap_diag "the daemon kept working for 30 s"
	first=$(vm_rss "$pid")
	round 2024_03 2024_04
	tap_ok $? "round 2, on the two other partitions" || tap_done
	daemon_settle "$pid" || tap_diag "the daemon kept working for 30 s"
	second=$(vm_rss "$pid")
	check_rss_growth "$first" "$second" "$files" 60 "round 2, $1,"
}

# check_rss_growth BEFORE AFTER FILES LIMIT WHAT : one check that a daemon's
# VmRSS grew from BEFORE to AFTER KiB by under LIMIT bytes per file of FILES,
# over WHAT; skipped on an ASan build.
check_rss_growth() {
	local per_file=$((($2 - $1) * 1024 / $3))
	if asan_build; then
		tap_skip "ASan's shadow memory and quarantine are in VmRSS" "$5: memory per file"
		return 0
	fi
	[ "$per_file" -lt "$4" ]
	tap_ok $? "$5 grew the daemon by $per_file bytes per file (< $4)" ||
		tap_diag "VmRSS $1 KiB -> $2 KiB"
}

# as_nobody CMD... : runs CMD as nobody (65534), with no supplementary groups.
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

# set_acl PATH access|default ENTRY... : writes PATH's POSIX ACL of that
# name (its system.posix_acl_* xattr), each ENTRY tag:id:octal-perm with tag
# u (owner), U (a user), g (the group), G (a group), m (mask), o (others);
# the id is empty but for U and G. Fails where the filesystem has no ACLs.
set_acl() {
	"$PYTHON3" - "$@" <<'PY'
import os, struct, sys
tags = {"u": 0x01, "U": 0x02, "g": 0x04, "G": 0x08, "m": 0x10, "o": 0x20}
path, name = sys.argv[1], "system.posix_acl_" + sys.argv[2]
entries = []
for spec in sys.argv[3:]:
    tag, ident, perm = spec.split(":")
    entries.append((tags[tag], int(perm, 8), int(ident) if ident else 0xffffffff))
value = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)
os.setxattr(path, name, value)
PY
}
# The ACL of a 0755 dir nobody cannot list, for set_acl: user::rwx
# user:nobody:--- group::r-x mask::r-x other::r-x.
NOBODY_DENIED=(u::7 U:65534:0 g::5 m::5 o::5)

# nobody_cannot_read SOURCE REL WHAT VOLUME... : mounts the VOLUMEs read-only
# and as a preview, both allow_other, and checks on each that nobody cannot
# read REL (WHAT, for the messages) while root reads SOURCE's bytes there.
nobody_cannot_read() {
	local source=$1 rel=$2 what=$3 mode mnt extra
	shift 3
	chmod 0755 "$SCRATCH"
	for mode in read-only preview; do
		mnt=$(scratch_dir "mnt-$mode")
		extra=(-o allow_other)
		[ "$mode" = preview ] && extra+=(-o "upper=$SCRATCH/upper")
		mount_union "$mnt" "$@" -- "${extra[@]}"
		tap_ok $? "$mode: mounted with allow_other" || continue
		as_nobody cat "$mnt/$rel" >/dev/null 2>&1
		tap_ok $(($? == 0)) "$mode: nobody cannot read $what through the mount either"
		cmp -s "$source" "$mnt/$rel"
		tap_ok $? "$mode: root still reads it"
		unmount_union "$mnt"
		tap_ok $? "$mode: unmounted"
	done
}

# ---------------------------------------------------------------------------
# VictoriaMetrics

declare -A _VM_PIDS=() # port -> pid
VM_PID=
VM_URL=
VM_LOG=
VM_PORT=

# vm_start DATA_PATH PORT [EXTRA_FLAGS...]
# Starts victoria-metrics on 127.0.0.1:PORT with -retentionPeriod=100y (the
# fixtures are from 2024; the default 1 month retention would delete them),
# waits up to VM_START_TIMEOUT (60) s for /health, registers a stop as
# cleanup. Sets VM_PID, VM_PORT, VM_URL (http://127.0.0.1:PORT), VM_LOG.
# On failure prints the log tail and returns 1.
vm_start() {
	local data=$1 port=$2
	shift 2
	local log="$SCRATCH/vm-$port.log" t=${VM_START_TIMEOUT:-60}
	"$VICTORIA_METRICS" -storageDataPath="$data" -retentionPeriod=100y \
		-httpListenAddr="127.0.0.1:$port" "$@" >"$log" 2>&1 </dev/null &
	local pid=$!
	_VM_PIDS[$port]=$pid
	on_exit "_vm_cleanup $pid"
	VM_PID=$pid VM_PORT=$port VM_URL="http://127.0.0.1:$port" VM_LOG=$log
	local deadline=$((SECONDS + t))
	while :; do
		if [ "$(http_get "$VM_URL/health" 2 2>/dev/null)" = OK ]; then
			return 0
		fi
		if ! _pid_alive "$pid"; then
			wait "$pid"
			tap_diag "vm_start: victoria-metrics on $data exited with status $?"
			_log_tail "$log"
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			tap_diag "vm_start: no /health on port $port after ${t}s"
			_log_tail "$log"
			_vm_cleanup "$pid"
			return 1
		fi
		sleep 0.2
	done
}

_vm_cleanup() {
	_pid_alive "$1" || return 0
	_stop_pid "$1" INT "${VM_STOP_TIMEOUT:-60}" || true
	wait "$1" 2>/dev/null || true
}

# vm_stop [PORT] : clean stop (SIGINT, wait up to VM_STOP_TIMEOUT (60) s,
# then SIGKILL) of the instance on PORT (default: the last vm_start).
# Returns the process's exit status (0 = clean shutdown, with its data
# flushed), or 1 if it had to be killed.
vm_stop() {
	local port=${1:-$VM_PORT} pid rc
	pid=${_VM_PIDS[$port]:-}
	[ -n "$pid" ] || {
		tap_diag "vm_stop: no instance on port $port"
		return 1
	}
	unset "_VM_PIDS[$port]"
	if ! _stop_pid "$pid" INT "${VM_STOP_TIMEOUT:-60}"; then
		wait "$pid" 2>/dev/null
		_log_tail "$SCRATCH/vm-$port.log"
		return 1
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	# 127: not our child (already reaped elsewhere): it did exit.
	[ "$rc" -eq 127 ] && rc=0
	[ "$rc" -eq 0 ] || _log_tail "$SCRATCH/vm-$port.log"
	return "$rc"
}

# vm_flush [URL] : make recently imported samples searchable.
vm_flush() {
	http_get "${1:-$VM_URL}/internal/force_flush" 30 >/dev/null
}

# vm_compare URL MANIFEST [ARGS...] : run vm_compare.py (see there).
vm_compare() {
	"$PYTHON3" "$E2E_DIR/vm_compare.py" "$@"
}

# ---------------------------------------------------------------------------
# Watchdog: a test stuck on a FUSE request would hang `make check` for
# good. After E2E_TIMEOUT seconds, abort our FUSE connections (pending
# requests fail, the stuck command returns), kill our daemons and TERM the
# test, whose trap then cleans up. It polls once a second so it dies soon
# after the test and never holds the TAP pipe for long.

# _watchdog_kill_children PID SIG : signal the direct children of PID other
# than the calling (watchdog) process.
_watchdog_kill_children() {
	local parent=$1 sig=$2 st pid ppid
	for st in /proc/[0-9]*/stat; do
		read -r pid _ ppid < <(sed 's/^\([0-9]*\) (.*) . \([0-9]*\) .*/\1 x \2/' "$st" 2>/dev/null) || continue
		[ "$ppid" = "$parent" ] && [ "$pid" != "$BASHPID" ] &&
			kill -s "$sig" "$pid" 2>/dev/null
	done
}

_watchdog_start() {
	local timeout=${E2E_TIMEOUT:-900}
	[ "$timeout" -gt 0 ] 2>/dev/null || return 0
	(
		trap - EXIT INT TERM HUP
		main=$_E2E_MAIN_PID
		end=$((SECONDS + timeout))
		# sleep's stdout is /dev/null: an orphaned sleep must not keep the
		# TAP pipe open after we are killed.
		while [ "$SECONDS" -lt "$end" ]; do
			kill -0 "$main" 2>/dev/null || exit 0
			sleep 1 >/dev/null
		done
		echo "# watchdog: test still running after ${timeout}s, aborting it"
		if [ -f "$SCRATCH/.mounts" ]; then
			while IFS=$'\t' read -r m conn pids; do
				if [ -n "$conn" ] && [ -w "/sys/fs/fuse/connections/$conn/abort" ]; then
					echo 1 >"/sys/fs/fuse/connections/$conn/abort" 2>/dev/null
				fi
				fusermount3 -uz "$m" 2>/dev/null
				for p in $pids; do
					# Only if the pid is still a vmunionfs (not reused).
					[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$(readlink -f "$VMUNIONFS")" ] &&
						kill -KILL "$p" 2>/dev/null
				done
			done <"$SCRATCH/.mounts"
		fi
		# bash defers a trap while it waits for a foreground command: TERM
		# the test first (the trap is then pending), then its children
		# (except us), so the trap runs as soon as the command ends.
		kill -TERM "$main" 2>/dev/null
		_watchdog_kill_children "$main" TERM
		end=$((SECONDS + 30))
		while [ "$SECONDS" -lt "$end" ]; do
			kill -0 "$main" 2>/dev/null || exit 0
			sleep 1 >/dev/null
		done
		_watchdog_kill_children "$main" KILL
		kill -KILL "$main" 2>/dev/null
	) &
	_WATCHDOG_PID=$!
	on_exit "kill $_WATCHDOG_PID 2>/dev/null; wait $_WATCHDOG_PID 2>/dev/null"
}
_watchdog_start
