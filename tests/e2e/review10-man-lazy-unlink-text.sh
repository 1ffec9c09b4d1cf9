#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Review10: 026c3e7 put the new paragraph on unlinks from lazy dirs into
# the middle of a sentence of vmunionfs(1): the line "A file or directory
# of" before it was kept and copied after it, so the page reads "... through
# their population. A file or directory of An unlink from a lazy directory
# populates nothing at once ...". Expected: no sentence cut in two.
set -u
. "${top_srcdir:-$(dirname "$0")/../..}/tests/e2e/lib.sh"
require_cmd python3

# The page's text as a reader gets it: requests dropped, font escapes and
# hyphen escapes resolved, lines joined (no groff needed).
text=$(python3 - "$top_srcdir/man/vmunionfs.1" <<'PY'
import re, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8") if not l.startswith((".", "'"))]
text = " ".join(l.strip() for l in lines)
text = re.sub(r"\\f[BIRP]", "", text).replace("\\-", "-").replace("\\(em", "-")
print(re.sub(r"\s+", " ", text))
PY
)
[ -n "$text" ]
tap_ok $? "vmunionfs.1 read"
! grep -q "directory of An unlink" <<<"$text"
tap_ok $? "no sentence of vmunionfs(1) is cut by the paragraph on unlinks from lazy dirs" ||
	grep -o ".\{60\}directory of An unlink.\{40\}" <<<"$text" | tap_diag
tap_is "$(grep -o "A file or directory of" <<<"$text" | wc -l)" 1 "\"A file or directory of\" is said once"
tap_done
