#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review5: the metrics endpoint took at most 16 connections, each kept 10 s
# when idle. Any local user who opened 16 connections and sent nothing (and
# opened them again every 10 s) kept vmagent's scrape from being answered:
# the preview looked down to monitoring. Now a new connection beyond 32
# closes the oldest one of the user who holds the most (metrics.c), so a
# scrape is answered while another user holds or keeps reopening many.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_root_fuse
require_cmd curl setpriv

vols=("$DATA_DIR/v1.79.5/node0" "$DATA_DIR/v1.79.5/node1")
snapshot_volumes "${vols[@]}"
port=$(free_port) || tap_bail "no free port"
mnt=$(scratch_dir mnt)
mount_union "$mnt" "${vols[@]}" -- -o "metrics=127.0.0.1:$port"
tap_ok $? "mounted with metrics on port $port" || tap_bail "no mount"
tap_is "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics")" 200 \
	"a scrape is answered"

chmod 0755 "$SCRATCH"
flag=$(scratch_dir flag) && chmod 0777 "$flag"
setpriv --reuid=65534 --regid=65534 --clear-groups bash -c '
	for i in $(seq 10 49); do
		eval "exec $i<>/dev/tcp/127.0.0.1/$1" 2>/dev/null || break
	done
	touch "$2"
	exec sleep 8' sh "$port" "$flag/held" >/dev/null 2>&1 &
holder=$!
on_exit "kill $holder 2>/dev/null; wait $holder 2>/dev/null"
wait_for 10 test -e "$flag/held"
tap_ok $? "nobody holds 40 idle connections"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics")
tap_is "$code" 200 "a scrape is still answered within 5 s"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

# Hostile: 40 connections reopened as fast as the daemon closes them (each
# new one closes the same user's oldest); every scrape is still answered, and
# the daemon's descriptors stay bounded (CONNECTION_LIMIT 40 in metrics.c);
# root's idle connection, the oldest, is not the one closed.
exec {kept}<>"/dev/tcp/127.0.0.1/$port"
setpriv --reuid=65534 --regid=65534 --clear-groups bash -c '
	while :; do
		for i in $(seq 10 49); do
			eval "exec $i<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
		done
	done' sh "$port" >/dev/null 2>&1 &
churner=$!
on_exit "kill $churner 2>/dev/null; wait $churner 2>/dev/null"
pid=$(union_pids "$mnt")
answered=0 most_fds=0
for i in 1 2 3 4 5 6 7 8; do
	sleep 0.2
	code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics")
	[ "$code" = 200 ] && answered=$((answered + 1))
	fds=$(ls "/proc/${pid// /}/fd" | wc -l)
	[ "$fds" -gt "$most_fds" ] && most_fds=$fds
done
tap_is "$answered" 8 "8 scrapes of 8 answered while nobody reopens 40 connections"
[ "$most_fds" -le 70 ]
tap_ok $? "the daemon holds at most 70 descriptors (most seen: $most_fds)"
evicted=$(curl -s -m 5 "http://127.0.0.1:$port/metrics" |
	sed -n 's/^vmunionfs_metrics_connections_evicted_total //p')
kill "$churner" 2>/dev/null
wait "$churner" 2>/dev/null
[ "${evicted:-0}" -gt 40 ]
tap_ok $? "connections were evicted (${evicted:-none})"
# (within the 10 s that an idle connection is kept; a subshell, for SIGPIPE)
(printf 'GET /metrics HTTP/1.0\r\n\r\n' >&"$kept") 2>/dev/null
tap_is "$(timeout 5 head -1 <&"$kept" | tr -d '\r')" "HTTP/1.1 200 OK" \
	"root's connection, idle through it all, was kept: nobody evicts only their own"
exec {kept}>&-

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
