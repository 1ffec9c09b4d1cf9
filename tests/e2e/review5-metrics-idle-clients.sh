#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review5: the metrics endpoint takes at most 16 connections, each kept 10 s
# when idle (metrics.c: MHD_OPTION_CONNECTION_LIMIT 16, TIMEOUT 10). Any
# local user who opens 16 connections and sends nothing (and opens them
# again every 10 s) keeps vmagent's scrape from being answered: the preview
# looks down to monitoring. A scrape must still be answered while idle
# clients hold connections (a limit per client, a larger pool with a short
# idle timeout, or a listener that drops the oldest idle connection).
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

unmount_union "$mnt"
tap_ok $? "unmounted"
assert_volumes_unchanged
tap_done
