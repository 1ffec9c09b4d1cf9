#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The demo of the README's Quick start: build if needed, then walk the
# scale-down of docs/scale-down.md on the shipped sample volumes (four
# v1.79.5 nodes): the plan and the 4 -> 2 targets, check, a read-only mount,
# Debian's victoria-metrics on a writable preview checked with
# `vmunion verify --live`, then (when this vmunion has materialize --into)
# the commit of target 0 into copies of its volumes, victoria-metrics on the
# committed volume, verify --live again, and the rollback. The shipped
# volumes are never written. --install first installs the Debian packages
# it needs (as root). Cleans up everything it mounts or starts.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# The build, the demo, and what the test suite (Quick start command 2) uses.
PACKAGES="build-essential autoconf automake libtool pkg-config libfuse3-dev fuse3
libzstd-dev libcjson-dev libcurl4-openssl-dev libmicrohttpd-dev victoria-metrics python3
python3-yaml curl ca-certificates util-linux procps xfsprogs e2fsprogs attr strace
bash-completion systemd"

if [ "${1:-}" = --install ]; then
	echo "== installing: $PACKAGES" | tr '\n' ' '
	echo
	apt-get update -q
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES
fi

if [ ! -x "$ROOT/vmunionfs" ] || [ ! -x "$ROOT/vmunion" ]; then
	echo "== building"
	[ -x configure ] || ./autogen.sh
	[ -f Makefile ] || ./configure --enable-werror
	make -j"$(nproc)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vmunionfs-demo.XXXXXX")
vm_pid=
cleanup() {
	stop_vm
	for m in "$work/ro" "$work/preview"; do
		mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m"
	done
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/ro" "$work/preview"

# start_vm DIR : victoria-metrics on DIR on a free loopback port ($url).
start_vm() {
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	victoria-metrics -storageDataPath="$1" -retentionPeriod=100y \
		-httpListenAddr="127.0.0.1:$port" >>"$work/vm.log" 2>&1 &
	vm_pid=$!
	url="http://127.0.0.1:$port"
	for _ in $(seq 1 120); do
		curl -fsS --max-time 2 "$url/health" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	echo "victoria-metrics did not start on $1" >&2
	return 1
}

stop_vm() {
	if [ -n "$vm_pid" ]; then
		kill -INT "$vm_pid" 2>/dev/null && wait "$vm_pid" 2>/dev/null
	fi
	vm_pid=
}

set_dir="$ROOT/tests/data/v1.79.5"
vols=("$set_dir"/node0 "$set_dir"/node1 "$set_dir"/node2 "$set_dir"/node3)

echo
echo "== vmunion plan (four v1.79.5 volumes, 2000 series each)"
./vmunion plan "${vols[@]}" | sed -n '1,/^Renamed/p'

echo "== vmunion plan --targets 2 (scale 4 nodes down to 2)"
./vmunion plan --targets 2 "${vols[@]}" | sed -n '1,/^$/p'

echo "== vmunion check"
./vmunion check "${vols[@]}" | tail -n 3

echo
echo "== read-only mount: $work/ro"
./vmunionfs "${vols[@]}" "$work/ro"
echo "merged partitions: $(ls "$work/ro/data/small" | grep -v snapshots | tr '\n' ' ')"
echo "indexdb tables:    $(ls "$work/ro/indexdb" | grep -v snapshots | tr '\n' ' ')"
echo "parts in 2024_02:  $(ls "$work/ro/data/small/2024_02" | grep -cv -e txn -e tmp)"
fusermount3 -u "$work/ro"

echo
echo "== writable preview (upper $work/upper) with victoria-metrics on 127.0.0.1"
./vmunionfs -o upper="$work/upper" "${vols[@]}" "$work/preview"
start_vm "$work/preview"
count=$(python3 tests/e2e/vm_compare.py "$url" "$set_dir/manifest.json" --count-only)
echo "merged series served by victoria-metrics: $count (expected 8000)"
echo "== vmunion verify --live $url (every series, every sample, per volume)"
./vmunion verify --live "$url" "${vols[@]}"
stop_vm
fusermount3 -u "$work/preview"
[ "$count" = 8000 ]

help=$(./vmunion materialize --help 2>&1 || true)
if ! grep -q -- --into <<<"$help"; then
	echo
	echo "== (this vmunion has no materialize --into: the commit and rollback steps are skipped)"
	exit 0
fi

# Target 0 of the proposal, committed into copies of its volumes: the
# shipped volumes stay as they are.
mapfile -t target < <(./vmunion plan --targets 2 --json "${vols[@]}" | python3 -c '
import json, sys
t = json.load(sys.stdin)["targets"][0]
print(t["into"])
for v in t["volumes"]:
    print(v["path"])')
into_src=${target[0]}
copies=() into=
for v in "${target[@]:1}"; do
	cp -a "$v" "$work/$(basename "$v")"
	copies+=("$work/$(basename "$v")")
	[ "$v" = "$into_src" ] && into=$work/$(basename "$v")
done
echo
echo "== vmunion materialize --into $into ${copies[*]}"
./vmunion materialize --into "$into" "${copies[@]}"
start_vm "$into"
echo "== vmunion verify --live $url on the committed volume (the target's volumes)"
./vmunion verify --live "$url" "${target[@]:1}"
stop_vm
echo "== vmunion rollback $into"
./vmunion rollback "$into"
if diff -r "$into" "$into_src" >"$work/rollback.diff"; then
	echo "rolled back: $into equals $into_src again"
else
	echo "after the rollback, $into differs from $into_src:"
	head -n 5 "$work/rollback.diff"
fi
