#!/bin/bash
# The demo of the README's Quick start: build if needed, then on the shipped
# sample volumes (four v1.79.5 nodes) show the plan, mount them read-only,
# then start Debian's victoria-metrics on a writable preview and print how
# many series the merged volume serves. --install first installs the Debian
# packages it needs (as root). Cleans up everything it mounts or starts.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

PACKAGES="build-essential autoconf automake libtool pkg-config libfuse3-dev fuse3
libzstd-dev libcjson-dev libmicrohttpd-dev victoria-metrics python3 curl ca-certificates"

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
	[ -n "$vm_pid" ] && kill -INT "$vm_pid" 2>/dev/null && wait "$vm_pid" 2>/dev/null
	for m in "$work/ro" "$work/preview"; do
		mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m"
	done
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/ro" "$work/preview"

set_dir="$ROOT/tests/data/v1.79.5"
vols=("$set_dir"/node0 "$set_dir"/node1 "$set_dir"/node2 "$set_dir"/node3)

echo
echo "== vmunion plan (four v1.79.5 volumes, 2000 series each)"
./vmunion plan "${vols[@]}" | sed -n '1,/^Renamed/p'

echo "== read-only mount: $work/ro"
./vmunionfs "${vols[@]}" "$work/ro"
echo "merged partitions: $(ls "$work/ro/data/small" | grep -v snapshots | tr '\n' ' ')"
echo "indexdb tables:    $(ls "$work/ro/indexdb" | grep -v snapshots | tr '\n' ' ')"
echo "parts in 2024_02:  $(ls "$work/ro/data/small/2024_02" | grep -cv -e txn -e tmp)"
fusermount3 -u "$work/ro"

echo
echo "== writable preview (upper $work/upper) with victoria-metrics on 127.0.0.1"
./vmunionfs -o upper="$work/upper" "${vols[@]}" "$work/preview"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
victoria-metrics -storageDataPath="$work/preview" -retentionPeriod=100y \
	-httpListenAddr="127.0.0.1:$port" >"$work/vm.log" 2>&1 &
vm_pid=$!
for _ in $(seq 1 120); do
	curl -fsS --max-time 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
	sleep 0.5
done
count=$(python3 tests/e2e/vm_compare.py "http://127.0.0.1:$port" "$set_dir/manifest.json" --count-only)
python3 tests/e2e/vm_compare.py "http://127.0.0.1:$port" "$set_dir/manifest.json" >"$work/compare.out" || true
head -n 2 "$work/compare.out"
echo "merged series served by victoria-metrics: $count (expected 8000)"
kill -INT "$vm_pid" && wait "$vm_pid" || true
vm_pid=
fusermount3 -u "$work/preview"
[ "$count" = 8000 ]
