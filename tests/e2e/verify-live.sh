#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# vmunion verify --live: Debian's victoria-metrics on a correct merged tree
# serves every series with every sample (exit 0, whole and --sample); on a
# tree missing one volume it fails naming that volume and its counts; with
# dedup it fails with short counts and says dedup explains them; with a
# short retention it says so; series deleted through the API are not
# expected; it passes on a preview mount (the runbook's step 5); the commands
# of plan --targets run; an unreachable node or a failing URL is exit 2; bad
# usage is 64. The cluster path (vmselect URL per tenant) is run against a
# fake vmselect: the right paths are asked and the counts from the cluster
# volumes equal the manifest's. The volumes stay byte-identical.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd "$PYTHON3"
require_vm
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

single=("$DATA_DIR/v1.79.5"/node*)
cluster=("$DATA_DIR/v1.96.0-cluster"/node*)
snapshot_volumes "${single[@]}" "${cluster[@]}" "$DATA_DIR/v1.150.0-cluster"/node*

# manifest SET EXPR : a value of a manifest (python expr on m).
manifest() {
	"$PYTHON3" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$DATA_DIR/$1/manifest.json" "$2"
}

# live [ARGS...] : vmunion verify --live ARGS, output in $TAP_OUT, status in $rc.
live() {
	"$VMUNION" verify "$@" >"$SCRATCH/live.out" 2>&1
	rc=$?
	TAP_OUT=$SCRATCH/live.out
}

# --- a correct merged tree ---
"$VMUNION" materialize -q "${single[@]}" "$SCRATCH/all"
tap_ok $? "materialized v1.79.5 (4 volumes)" || tap_done
vm_start "$SCRATCH/all" "$(free_port)"
tap_ok $? "victoria-metrics on the merged tree" || tap_done
url=$VM_URL

live --live "$url" "${single[@]}"
tap_is "$rc" 0 "verify --live passes on the merged tree" || tap_diag <"$TAP_OUT"
series=$(manifest v1.79.5 'm["generated"]["series_count"]')
samples=$(manifest v1.79.5 'm["generated"]["sample_count"]')
grep -q "checking $series series, $samples samples, 4 partitions of 4 volumes" "$TAP_OUT" &&
	[ "$(grep -c ': all served$' "$TAP_OUT")" = 4 ] && grep -q '^OK: ' "$TAP_OUT"
tap_ok $? "... counted $series series and $samples samples from the volumes (the manifest's), all 4 volumes served" ||
	tap_diag <"$TAP_OUT"
for n in 0 3; do
	want="$(manifest v1.79.5 "m['volumes']['node$n']['series_count']") series, $(manifest v1.79.5 "m['volumes']['node$n']['sample_count']") samples: all served"
	grep -q "node$n: $want" "$TAP_OUT"
	tap_ok $? "... node$n: $want" || tap_diag <"$TAP_OUT"
done

live --live "$url" --sample 7 --seed 3 "${single[@]}"
tap_is "$rc" 0 "--sample 7 passes"
grep -q "checking 28 series" "$TAP_OUT"
tap_ok $? "... checking 7 series per volume" || tap_diag <"$TAP_OUT"
live --live "$url/" --sample 20000 "${single[@]}"
tap_is "$rc" 0 "--sample larger than a volume checks all of it (and a URL with a trailing /)"
grep -q "checking $series series" "$TAP_OUT"
tap_ok $? "... all $series series"

# plan --targets prints the runbook's commands; run its verify --live lines.
"$VMUNION" plan --targets 2 --json "${single[@]}" >"$SCRATCH/targets.json"
tap_ok $? "plan --targets 2 --json" || tap_diag <"$SCRATCH/targets.json"
"$PYTHON3" - "$SCRATCH/targets.json" "$url" >"$SCRATCH/targets.sh" <<'PY'
import json, shlex, sys
j = json.load(open(sys.argv[1]))
for t in j["targets"]:
    vols = [v["path"] for v in t["volumes"]]
    assert t["into"] in vols, t
    rest = [v for v in vols if v != t["into"]]
    cmds = [c for c in t["commands"] if not c.startswith("#")]
    want = [
        ["vmunion", "check", "--deep"] + vols,
        ["vmunion", "verify", "--live", "http://127.0.0.1:18428"] + vols,
        ["vmunion", "materialize", "--into", t["into"]] + vols,
        ["vmunion", "verify", "--live", "http://NODE:8428"] + rest,
        ["vmunion", "finalize", t["into"]],
    ]
    words = [shlex.split(c.rstrip("&")) for c in cmds]
    for w in want:
        assert w in words, (w, words)
    assert any(w[0] == "vmunionfs" and w[-1].endswith("/mnt") and w[-1 - len(vols):-1] == vols
               for w in words), words
    for w in words:
        if w[:3] == ["vmunion", "verify", "--live"]:
            w[3] = sys.argv[2]
            print(" ".join(shlex.quote(x) for x in w))
PY
tap_ok $? "... every target: check, vmunionfs preview, verify --live, materialize --into, verify --live of the retiring volumes, finalize" ||
	tap_diag <"$SCRATCH/targets.json"
ok=0
while read -r line; do
	eval "${line/#vmunion/\"\$VMUNION\"}" >"$SCRATCH/t.out" 2>&1 || { ok=1; tap_diag <"$SCRATCH/t.out"; }
done <"$SCRATCH/targets.sh"
[ "$(grep -c . "$SCRATCH/targets.sh")" = 4 ]
tap_ok $((ok + $?)) "... its 4 verify --live commands pass on the merged node"

vm_stop
tap_ok $? "victoria-metrics stopped cleanly"

# --- the runbook's preview: victoria-metrics on the mount with an upper ---
if [ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] && command -v fusermount3 >/dev/null 2>&1; then
	mnt=$(scratch_dir mnt)
	mount_union "$mnt" "${single[@]}" -- -o upper="$SCRATCH/upper"
	tap_ok $? "preview: mounted with an upper" || tap_done
	vm_start "$mnt" "$(free_port)"
	tap_ok $? "preview: victoria-metrics on the mount" || tap_done
	live --live "$VM_URL" "${single[@]}"
	tap_is "$rc" 0 "preview: verify --live passes (the volumes are locked shared by the mount)" ||
		tap_diag <"$TAP_OUT"
	vm_stop
	tap_ok $? "preview: victoria-metrics stopped"
	unmount_union "$mnt"
	tap_ok $? "preview: unmounted"
else
	tap_skip "needs root and FUSE" "preview: verify --live on the mount"
fi

# --- dedup on the node: counts short, explained ---
vm_start "$SCRATCH/all" "$(free_port)" -dedup.minScrapeInterval=5m
tap_ok $? "victoria-metrics with -dedup.minScrapeInterval=5m" || tap_done
live --live "$VM_URL" --sample 5 --seed 9 "${single[@]}"
tap_is "$rc" 1 "verify --live fails: samples 60 s apart are deduplicated"
grep -q "0 series missing, 5 series short" "$TAP_OUT" && grep -q "^  short: fusetest_" "$TAP_OUT" &&
	grep -q "hint: the node deduplicates (-dedup.minScrapeInterval=5m" "$TAP_OUT"
tap_ok $? "... series short, named with their counts per partition, dedup named as the cause" ||
	tap_diag <"$TAP_OUT"
cp "$TAP_OUT" "$SCRATCH/first.out"
live --live "$VM_URL" --sample 5 --seed 9 "${single[@]}"
cmp -s "$TAP_OUT" "$SCRATCH/first.out"
tap_ok $? "--sample with the same --seed picks the same series"
live --live "$VM_URL" --sample 5 --seed 10 "${single[@]}"
! cmp -s "$TAP_OUT" "$SCRATCH/first.out"
tap_ok $? "... and another --seed others"
vm_stop

# --- a tree missing one volume ---
"$VMUNION" materialize -q "${single[@]:0:3}" "$SCRATCH/three"
tap_ok $? "materialized node0..node2 only" || tap_done
vm_start "$SCRATCH/three" "$(free_port)"
tap_ok $? "victoria-metrics on it" || tap_done
live --live "$VM_URL" "${single[@]}"
tap_is "$rc" 1 "verify --live fails on a node missing node3"
n3_series=$(manifest v1.79.5 "m['volumes']['node3']['series_count']")
n3_samples=$(manifest v1.79.5 "m['volumes']['node3']['sample_count']")
grep -q "node3: $n3_series series, $n3_samples samples: $n3_series series missing, 0 series short; the node serves 0 of the $n3_samples samples" "$TAP_OUT"
tap_ok $? "... naming node3 with its counts ($n3_series series, $n3_samples samples missing)" ||
	tap_diag <"$TAP_OUT"
[ "$(grep -c '^  missing: fusetest_.*vol="node3".*samples)$' "$TAP_OUT")" = 5 ] &&
	[ "$(grep -c ': all served$' "$TAP_OUT")" = 3 ] && grep -q "^DIFFERENT: $n3_series series" "$TAP_OUT"
tap_ok $? "... 5 of its series named, the 3 other volumes served" || tap_diag <"$TAP_OUT"
live --live "$VM_URL" --sample 4 "${single[@]}"
tap_is "$rc" 1 "--sample 4 fails too"
grep -q "node3: 4 series, [0-9]* samples: 4 series missing" "$TAP_OUT"
tap_ok $? "... with node3's 4 picked series missing" || tap_diag <"$TAP_OUT"
live --live "$VM_URL" "${single[@]:0:3}"
tap_is "$rc" 0 "verify --live of the three volumes it holds passes"
vm_stop

# --- series deleted through the API are not expected on the node ---
vm_start "$SCRATCH/three" "$(free_port)"
tap_ok $? "victoria-metrics on the node0..node2 tree, to delete series" || tap_done
sel='fusetest_memory_bytes{vol="node1"}'
deleted=$(http_get "$VM_URL/api/v1/series?start=1700000000&match%5B%5D=$("$PYTHON3" -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$sel")" |
	"$PYTHON3" -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))')
curl -fsS --max-time 30 --data-urlencode "match[]=$sel" "$VM_URL/api/v1/admin/tsdb/delete_series"
tap_ok $? "deleted the $deleted series $sel"
vm_stop
cp -a "$SCRATCH/three" "$SCRATCH/three-copy"
vm_start "$SCRATCH/three-copy" "$(free_port)"
tap_ok $? "victoria-metrics on a copy of that tree" || tap_done
live --live "$VM_URL" "$SCRATCH/three"
tap_is "$rc" 0 "verify --live of the tree with deleted series passes" || tap_diag <"$TAP_OUT"
[ "$deleted" -gt 0 ] && grep -q "three: $deleted series deleted through the API not checked" "$TAP_OUT"
tap_ok $? "... and says the $deleted deleted series were not checked" || tap_diag <"$TAP_OUT"
vm_stop

# --- retention shorter than the data's age (it deletes the partitions) ---
vm_start "$SCRATCH/three" "$(free_port)" -retentionPeriod=1
tap_ok $? "victoria-metrics with -retentionPeriod=1 (month)" || tap_done
live --live "$VM_URL" "${single[@]:0:3}"
tap_is "$rc" 1 "verify --live fails: retention dropped the 2024 samples"
grep -q "hint: the node's -retentionPeriod=1 drops samples before about" "$TAP_OUT"
tap_ok $? "... and names -retentionPeriod as the cause" || tap_diag <"$TAP_OUT"
vm_stop

# --- I/O errors and usage ---
port=$(free_port)
live --live "http://127.0.0.1:$port" "${single[0]}"
tap_is "$rc" 2 "unreachable node: exit 2"
grep -q "http://127.0.0.1:$port/api/v1/export: the node is unreachable" "$TAP_OUT"
tap_ok $? "... saying the node is unreachable" || tap_diag <"$TAP_OUT"
live --live "http://127.0.0.1:$port" "$SCRATCH/no-such-volume"
tap_is "$rc" 2 "a missing VOLUME: exit 2"
grep -q "no-such-volume" "$TAP_OUT"
tap_ok $? "... naming it" || tap_diag <"$TAP_OUT"
tap_fails "an ftp:// URL: usage" "$VMUNION" verify --live "ftp://127.0.0.1/" "${single[0]}"
for bad in "--sample 0" "--sample x" "--tenant a:b" "--timeout 0"; do
	# shellcheck disable=SC2086  # split on purpose
	live --live "$url" $bad "${single[0]}"
	tap_is "$rc" 64 "$bad: exit 64"
done
live --live "$url"
tap_is "$rc" 64 "no VOLUME: exit 64"
"$VMUNION" verify --live "$url" --help | grep -q -- "--sample N"
tap_ok $? "verify --live --help lists --sample"

# --- cluster volumes against a (fake) vmselect ---
"$PYTHON3" "$E2E_DIR/fake_vmselect.py" "$SCRATCH/port" "$SCRATCH/requests" --dedup 1m \
	--lifetime 300 >"$SCRATCH/fake.log" 2>&1 &
fake=$!
on_exit "kill $fake 2>/dev/null; wait $fake 2>/dev/null"
wait_for 20 test -s "$SCRATCH/port"
tap_ok $? "fake vmselect listening" || tap_done
fake_url="http://127.0.0.1:$(cat "$SCRATCH/port")"
for set in v1.96.0-cluster v1.150.0-cluster; do
	: >"$SCRATCH/requests"
	live --live "$fake_url" "$DATA_DIR/$set"/node*
	tap_is "$rc" 1 "$set on a vmselect serving nothing: exit 1"
	[ "$(sort -u "$SCRATCH/requests" | grep -c .)" = 2 ] &&
		grep -qx "/select/0:0/prometheus/api/v1/export" "$SCRATCH/requests" &&
		grep -qx "/metrics" "$SCRATCH/requests"
	tap_ok $? "... asked /select/0:0/prometheus/api/v1/export (tenant 0:0 of the volumes) and /metrics" ||
		tap_diag <"$SCRATCH/requests"
	ok=0
	for n in 0 1 2 3; do
		s=$(manifest "$set" "m['volumes']['node$n']['series_count']")
		c=$(manifest "$set" "m['volumes']['node$n']['sample_count']")
		grep -q "node$n: $s series, $c samples: $s series missing" "$TAP_OUT" || ok=1
	done
	grep -q "^  missing: 0:0 fusetest_" "$TAP_OUT" || ok=1
	tap_ok $ok "... every volume's series and samples counted as the manifest has them, named with their tenant" ||
		tap_diag <"$TAP_OUT"
done
grep -q "hint: the node deduplicates (-dedup.minScrapeInterval=1m)" "$TAP_OUT"
tap_ok $? "... the vmselect's dedup flag read from its /metrics" || tap_diag <"$TAP_OUT"
: >"$SCRATCH/requests"
live --live "$fake_url" --tenant 0 --sample 3 "${cluster[@]}"
tap_is "$rc" 1 "--tenant 0 --sample 3: exit 1"
grep -q "checking 12 series" "$TAP_OUT" && grep -qx "/select/0:0/prometheus/api/v1/export" "$SCRATCH/requests"
tap_ok $? "... 3 series per volume, asked of tenant 0:0" || tap_diag <"$TAP_OUT"
live --live "$fake_url" --tenant 7:1 "${cluster[@]}"
tap_is "$rc" 1 "--tenant 7:1 (not on the volumes): exit 1"
grep -q "nothing to check: the volumes hold no series of that tenant" "$TAP_OUT"
tap_ok $? "... saying nothing was checked" || tap_diag <"$TAP_OUT"
live --live "$fake_url/nope" "${cluster[0]}"
tap_is "$rc" 2 "an HTTP error status: exit 2"
grep -q "HTTP status 404" "$TAP_OUT"
tap_ok $? "... showing the status" || tap_diag <"$TAP_OUT"

assert_volumes_unchanged
tap_done
