#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# shellcheck source-path=SCRIPTDIR
# tests/e2e/check-jobs.sh - `vmunion check --deep` prints the same report,
# byte for byte (but for its run time), whatever --jobs says: on the sample
# sets, and on copies with corrupt blocks in the middle of part files, whose
# errors must all be reported, in volume and path order, naming the file.
set -u
# shellcheck source=lib.sh
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"

[ -x "$VMUNION" ] || tap_bail "$VMUNION not built"
require_cmd "$PYTHON3"

# deep_report NAME JOBS [--json] VOLUME... : check --deep output in
# $SCRATCH/NAME.JOBS[.json] with the run time masked; sets RC.
deep_report() {
	local out=$SCRATCH/$1.$2 jobs=$2
	shift 2
	[ "${1:-}" = --json ] && out=$out.json
	"$VMUNION" check --deep --jobs "$jobs" "$@" 2>"$out.err" </dev/null |
		sed -E 's/, [0-9]+\.[0-9]+ s$/, T s/; s/^(\s*"seconds":).*/\1 0/' >"$out"
	RC=${PIPESTATUS[0]}
}

# same_for_all_jobs NAME WANT_RC VOLUME... : text and JSON reports with
# --jobs 1, 2 and 5 (more workers than CPUs here) exit WANT_RC and match.
same_for_all_jobs() {
	local name=$1 want=$2 jobs json
	shift 2
	for json in "" --json; do
		for jobs in 1 2 5; do
			deep_report "$name" "$jobs" ${json:+"$json"} "$@"
			tap_is "$RC" "$want" "$name: check --deep --jobs $jobs ${json:-(text)} exits $want"
		done
		for jobs in 2 5; do
			cmp -s "$SCRATCH/$name.1${json:+.json}" "$SCRATCH/$name.$jobs${json:+.json}"
			tap_ok $? "$name: --jobs $jobs ${json:-(text)} prints what --jobs 1 prints" ||
				tap_diag "$(diff "$SCRATCH/$name.1${json:+.json}" \
					"$SCRATCH/$name.$jobs${json:+.json}" | head -n 20)"
		done
	done
}

for set in v1.79.5 v1.96.0-cluster v1.150.0-cluster; do
	same_for_all_jobs "$set" 0 "$DATA_DIR/$set"/node0 "$DATA_DIR/$set"/node1 \
		"$DATA_DIR/$set"/node2 "$DATA_DIR/$set"/node3
	grep -q "deep decoding; .* decoded, T s$" "$SCRATCH/$set.2"
	tap_ok $? "$set: the report says what it decoded" || tap_diag "$(tail -n 3 "$SCRATCH/$set.2")"
done

# ---------------------------------------------------------------------------
# Corrupt blocks past the first read of each file (items.bin is read ahead
# in growing windows: the bad block comes from a later one), in two volumes.

src=$DATA_DIR/v1.150.0-cluster
copy_volume "$src/node0" "$SCRATCH/bad/node0"
copy_volume "$src/node1" "$SCRATCH/bad/node1"
b0=$SCRATCH/bad/node0 b1=$SCRATCH/bad/node1
bad_files=(
	"$b0:data/indexdb/2024_02/18EB741E3ED99438/items.bin"
	"$b0:data/small/2024_03/18EB741E3F355C0D/index.bin"
	"$b1:data/indexdb/2024_03/18EB741E3AAB8D6D/lens.bin"
	"$b1:data/small/2024_02/18EB741E3A2012E7/index.bin"
)
overwrite() { # FILE OFFSET : 64 bytes of 0xA5 at OFFSET
	head -c 64 /dev/zero | tr '\0' '\245' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
overwrite "$b0/data/indexdb/2024_02/18EB741E3ED99438/items.bin" 200000 &&
	overwrite "$b0/data/small/2024_03/18EB741E3F355C0D/index.bin" 30000 &&
	truncate -s 10000 "$b1/data/indexdb/2024_03/18EB741E3AAB8D6D/lens.bin" &&
	truncate -s 40000 "$b1/data/small/2024_02/18EB741E3A2012E7/index.bin"
tap_ok $? "corrupted four part files in copies of two volumes"
snapshot_volumes "$b0" "$b1"

same_for_all_jobs corrupt 2 "$b0" "$b1" "$src/node2"
grep -q "^Result: 4 errors, 0 warnings" "$SCRATCH/corrupt.2"
tap_ok $? "corrupt: 4 errors, one per corrupt file" || tap_diag "$(grep -A 8 errors "$SCRATCH/corrupt.2")"

# The error lines, in report order, name the four files in volume and path
# order (the findings are sorted by volume, then path).
got=$(grep -E '^    data/.*\.bin: ' "$SCRATCH/corrupt.2" | sed -E 's/^    ([^:]*): .*/\1/')
want=$(printf '%s\n' "${bad_files[@]}" | sed 's/^[^:]*://')
tap_is "$got" "$want" "corrupt: the errors name the corrupt files, in order"
json_paths=$("$PYTHON3" -c 'import json, sys
j = json.load(open(sys.argv[1]))
print("\n".join("%d:%s" % (f["volume"], f["path"]) for f in j["findings"] if f["severity"] == "error"))' \
	"$SCRATCH/corrupt.2.json")
tap_is "$json_paths" "$(printf '%s\n' "${bad_files[@]}" | sed "s|^$b0:|0:|; s|^$b1:|1:|")" \
	"corrupt: --json names the same files, with their volume"
grep -q "lens.bin: block at offset [0-9]* size [0-9]* past end of file (size 10000)" "$SCRATCH/corrupt.2"
tap_ok $? "corrupt: the truncated lens.bin says where its block should have been" ||
	tap_diag "$(grep lens.bin "$SCRATCH/corrupt.2")"

assert_volumes_unchanged "check --deep does not write"
tap_done
