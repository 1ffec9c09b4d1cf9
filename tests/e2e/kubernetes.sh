#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# contrib/kubernetes: the manifests hold what the runbook asks for (checked
# by k8s_manifests.py: fuse sidecar, read-only retiring PVCs, emptyDir upper,
# mount propagation, the surviving PVC writable only for the commit, a
# bookworm-slim Containerfile built from the tarball), the checker catches a
# broken manifest, and the command lines of the manifests run here as they
# are, with the PVC paths mapped to copies of the v1.96.0-cluster volumes and
# the vmselect URL to a fake vmselect: vmunionfs mounts the merged view,
# verify --live counts every retiring volume as its manifest says, and
# materialize --into runs when this build has it.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd "$PYTHON3"
"$PYTHON3" -c 'import yaml' 2>/dev/null || _require_fail "python3-yaml not installed"
[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"

k8s=$top_srcdir/contrib/kubernetes
set_dir=$DATA_DIR/v1.96.0-cluster
snapshot_volumes "$set_dir"/node*

"$PYTHON3" "$E2E_DIR/k8s_manifests.py" "$k8s" >"$SCRATCH/commands.json" 2>"$SCRATCH/check.err"
tap_ok $? "the manifests pass every check" || tap_diag <"$SCRATCH/check.err"

# A broken copy of the manifests must be caught.
broken() { # NAME SED-EXPR FILE EXPECTED-MESSAGE
	rm -rf "$SCRATCH/x" && mkdir -p "$SCRATCH/x/y" && cp -r "$k8s" "$SCRATCH/x/y/k8s" &&
		cp "$top_srcdir/configure.ac" "$SCRATCH/x/"
	sed -i "$2" "$SCRATCH/x/y/k8s/$3"
	"$PYTHON3" "$E2E_DIR/k8s_manifests.py" "$SCRATCH/x/y/k8s" >/dev/null 2>"$SCRATCH/broken.err"
	[ $? = 1 ] && grep -q -- "$4" "$SCRATCH/broken.err"
	tap_ok $? "checker catches: $1" || tap_diag <"$SCRATCH/broken.err"
}
broken "a writable retiring PVC in the preview" \
	's/claimName: vmstorage-db-vmstorage-3, readOnly: true/claimName: vmstorage-db-vmstorage-3/' \
	preview-pod.yaml "the retiring PVC vmstorage-db-vmstorage-3 is read-only"
broken "vmunionfs not privileged" 's/privileged: true/privileged: false/' preview-pod.yaml \
	"vmunionfs is privileged"
broken "vmstorage not on the mount" 's|-storageDataPath=/merged/vm|-storageDataPath=/merged|' \
	preview-pod.yaml "vmstorage runs on the mount"
broken "the surviving PVC read-only in the commit" \
	's|{ name: node0, mountPath: /vm/node0 }|{ name: node0, mountPath: /vm/node0, readOnly: true }|' \
	commit-job.yaml "only the surviving volume /vm/node0 is writable"
broken "a stage not on bookworm-slim" 's/^FROM debian:bookworm-slim$/FROM debian:trixie/' \
	Containerfile "every stage FROM debian:bookworm-slim"
broken "a library missing from the image" 's/ libcurl4-openssl-dev//' Containerfile \
	"installs libcurl4-openssl-dev"

# The fake vmselect stands for http://127.0.0.1:8481 and http://vmselect:8481.
"$PYTHON3" "$E2E_DIR/fake_vmselect.py" "$SCRATCH/port" "$SCRATCH/requests" \
	--lifetime 300 >"$SCRATCH/fake.log" 2>&1 &
fake=$!
on_exit "kill $fake 2>/dev/null; wait $fake 2>/dev/null"
wait_for 20 test -s "$SCRATCH/port"
tap_ok $? "fake vmselect listening" || tap_done
fake_url="http://127.0.0.1:$(cat "$SCRATCH/port")"
for n in 0 1 2 3; do
	copy_volume "$set_dir/node$n" "$SCRATCH/vm/node$n"
done

# commands ROLE : the argv of each manifest command of ROLE, one per line,
# words separated by \x01, with the pod's paths and URLs mapped to the test's.
commands() {
	"$PYTHON3" - "$SCRATCH/commands.json" "$1" "$SCRATCH" "$fake_url" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
scratch, url = sys.argv[3], sys.argv[4]
def mapped(w):
    for prefix in ("/vm/", "/merged/", "/preview/"):
        if w.startswith(prefix):
            return scratch + w
        if w.startswith("upper=" + prefix):
            return "upper=" + scratch + w[6:]
    return {"http://127.0.0.1:8481": url, "http://vmselect:8481": url}.get(w, w)
for c in j["commands"]:
    if c["role"] == sys.argv[2]:
        sys.stdout.write("\x01".join(mapped(w) for w in c["argv"]) + "\n")
PY
}

# expect_missing VOLUME... : the output says each volume's series (as many as
# its manifest has) are all missing, with the manifest's sample count.
expect_missing() {
	local ok=0 v n s c
	for v in "$@"; do
		n=$(basename "$v")
		s=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["volumes"][sys.argv[2]]["series_count"])' "$set_dir/manifest.json" "$n")
		c=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["volumes"][sys.argv[2]]["sample_count"])' "$set_dir/manifest.json" "$n")
		grep -q "$n: $s series, $c samples: $s series missing" "$SCRATCH/out" || ok=1
	done
	return $ok
}

# --- the preview Pod: vmunionfs, then verify --live ---
mapfile -t lines < <(commands vmunionfs)
tap_is "${#lines[@]}" 1 "one vmunionfs command (the preview)"
IFS=$'\x01' read -r -a argv <<<"${lines[0]}"
mnt=${argv[-1]}
opts=() vols=()
for ((i = 1; i < ${#argv[@]} - 1; i++)); do
	case ${argv[$i]} in
	-o) opts+=(-o "${argv[$((i + 1))]}") && i=$((i + 1)) ;;
	-*) opts+=("${argv[$i]}") ;;
	*) vols+=("${argv[$i]}") ;;
	esac
done
tap_is "${vols[*]}" "$SCRATCH/vm/node2 $SCRATCH/vm/node3" "... on the retiring volumes node2 and node3"
mkdir -p "$SCRATCH/preview/upper"
if [ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ]; then
	mount_union "$mnt" "${vols[@]}" -- "${opts[@]}"
	tap_ok $? "the preview's vmunionfs command mounts (${opts[*]})" || tap_done
	"$VMUNION" verify -q "${vols[@]}" "$mnt" >"$SCRATCH/out" 2>&1
	tap_ok $? "... the merged view of node2 and node3" || tap_diag <"$SCRATCH/out"
else
	tap_skip "needs root and FUSE" "the preview's vmunionfs command mounts"
fi
mapfile -t lines < <(commands "vmunion verify --live")
tap_is "${#lines[@]}" 2 "two verify --live commands (preview, verify Job)"
for line in "${lines[@]}"; do
	IFS=$'\x01' read -r -a argv <<<"$line"
	"$VMUNION" "${argv[@]:1}" >"$SCRATCH/out" 2>&1
	rc=$?
	vols=("${argv[@]:4}")
	[ "${argv[4]}" = --timeout ] && vols=("${argv[@]:6}")
	tap_is "$rc" 1 "${argv[*]:1:3} ... ${vols[*]##*/}: runs, exit 1 on a vmselect serving nothing"
	expect_missing "${vols[@]}"
	tap_ok $? "... counting ${vols[*]##*/} as the manifest has them" || tap_diag <"$SCRATCH/out"
done
[ -n "${mnt:-}" ] && _mnt_is_mounted "$(_canon_mnt "$mnt")" && {
	unmount_union "$mnt"
	tap_ok $? "preview unmounted"
}

# --- the commit Job ---
mapfile -t lines < <(commands "vmunion materialize")
tap_is "${#lines[@]}" 1 "one materialize command (the commit Job)"
IFS=$'\x01' read -r -a argv <<<"${lines[0]}"
tap_is "${argv[*]:1:3}" "materialize --into $SCRATCH/vm/node0" "... --into the surviving volume node0"
if "$VMUNION" materialize --help 2>&1 | grep -q -- --into; then
	"$VMUNION" "${argv[@]:1}" >"$SCRATCH/out" 2>&1
	tap_ok $? "the commit Job's command runs" || tap_diag <"$SCRATCH/out"
else
	tap_skip "this vmunion has no materialize --into" "the commit Job's command runs"
fi

assert_volumes_unchanged
tap_done
