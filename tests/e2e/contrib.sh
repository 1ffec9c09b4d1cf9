#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# contrib/: the bash completion loads and completes both programs, the
# systemd unit passes `systemd-analyze verify`, the fstab example has the
# right fields.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"

completion="$top_srcdir/contrib/vmunion.bash-completion"
bash_completion=/usr/share/bash-completion/bash_completion

# complete WORDS... : what bash completes for the last word.
complete_words() {
	bash -c '
		. "$1" || exit 3
		. "$2" || exit 4
		shift 2
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		func=$(complete -p "$1" | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
		[ -n "$func" ] || exit 5
		"$func" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "
	' complete "$bash_completion" "$completion" "$@"
}

if [ -f "$bash_completion" ]; then
	bash -n "$completion"
	tap_ok $? "the completion script parses"
	tap_is "$(complete_words vmunion '')" "--help --version -V -h check materialize plan verify " \
		"vmunion completes its subcommands"
	tap_is "$(complete_words vmunion ma)" "materialize " "vmunion ma<TAB> is materialize"
	tap_is "$(complete_words vmunion check --j)" "--jobs --json " "check --j<TAB>"
	tap_is "$(complete_words vmunion materialize --mode r)" "reflink " "materialize --mode r<TAB>"
	tap_is "$(complete_words vmunionfs -o up)" "upper= " "vmunionfs -o up<TAB>"
	tap_is "$(complete_words vmunionfs -o nocheck,met)" "nocheck,metrics= " \
		"vmunionfs -o nocheck,met<TAB> completes after the comma"
else
	tap_skip "bash-completion is not installed"
fi

if command -v systemd-analyze >/dev/null 2>&1; then
	unit=$(scratch_dir unit)
	# As installed, but naming the built binary (verify checks it exists);
	# --man=no: the man page is not installed yet.
	sed "s|@bindir@|$top_builddir|g" "$top_srcdir/contrib/vmunionfs-preview.service.in" \
		>"$unit/vmunionfs-preview.service"
	systemd-analyze verify --man=no "$unit/vmunionfs-preview.service" >"$SCRATCH/verify.log" 2>&1
	tap_ok $? "systemd-analyze verify accepts the unit" || tap_diag <"$SCRATCH/verify.log"
	# A broken unit must fail, or the check above proves nothing.
	sed "s|^ExecStart=$top_builddir|ExecStart=$unit/missing|" "$unit/vmunionfs-preview.service" \
		>"$unit/broken.service"
	systemd-analyze verify --man=no "$unit/broken.service" >/dev/null 2>&1
	tap_ok $((!$?)) "... and rejects a broken one"
else
	tap_skip "systemd-analyze is not installed"
fi

awk '!/^#/ && NF { if (NF != 6 || $3 !~ /^(fuse\.)?vmunionfs$/) bad++; n++ }
     END { exit !(n >= 2 && !bad) }' "$top_srcdir/contrib/fstab.example"
tap_ok $? "fstab.example: every line has six fields and a vmunionfs type"
tap_done
