#!/bin/sh
# SPDX-License-Identifier: MIT
# Every setting of the option table (src/core/config.c) has a row in README.md's
# settings table and an entry in fsafe(3)'s ENVIRONMENT; every fsafe-run
# option (from --help) is in README.md's fsafe-run table and in fsafe-run(1)'s
# OPTIONS; every public function of include/fsafe.h has a page in doc/man.
#   docs.sh FSAFE_RUN BINDIR
. "$(dirname "$0")/lib.sh"
readme=$top/README.md man=$top/doc/man
# The man sources with roff's \- turned into -, one section at a time.
section() { sed 's/\\-/-/g' "$1" | sed -n "/^\.SH $2/,/^\.SH /p"; }
sed -n '/^## Settings/,/^## /p' "$readme" >"$tmp/readme-settings"
[ -s "$tmp/readme-settings" ] || fail "no '## Settings' section in README.md"
section "$man/fsafe.3" ENVIRONMENT >"$tmp/fsafe.3-environment"
section "$man/fsafe-run.1" OPTIONS >"$tmp/fsafe-run.1-options"
section "$man/fsafe-run.1" "\"EXIT STATUS\"" >"$tmp/fsafe-run.1-exit"
[ -s "$tmp/fsafe-run.1-exit" ] || section "$man/fsafe-run.1" "EXIT STATUS" >"$tmp/fsafe-run.1-exit"
n=0
for v in $(settings); do
    n=$((n + 1))
    grep -q "^| \`$v\` |" "$tmp/readme-settings" || fail "README.md settings table: no row for $v"
    grep -q "^\.BR* $v\( \|$\)" "$tmp/fsafe.3-environment" || fail "fsafe(3) ENVIRONMENT: no entry for $v"
done
[ "$n" -ge 11 ] || fail "only $n settings read from src/core/config.c"
"$run" --help | sed -n 's/^ *\(-., \)\{0,1\}\(--[a-z-]*\).*/\2/p' >"$tmp/opts"
[ "$(wc -l <"$tmp/opts")" -ge 14 ] || fail "too few options parsed from fsafe-run --help"
for o in $(cat "$tmp/opts"); do
    grep -q -- "^|.*\`$o[ =\`]" "$tmp/readme-settings" || fail "README.md fsafe-run table: no row for $o"
    grep -q -- "^\.B[IR]* \(.* \)\{0,1\}\"\{0,1\}$o\( \|=\|\"\|$\)" "$tmp/fsafe-run.1-options" || fail "fsafe-run(1) OPTIONS: no entry for $o"
done
# The exit statuses fsafe-run --help gives are the ones fsafe-run(1) and README give.
for s in 2 126 127; do
    "$run" --help | grep -q "$s" || fail "fsafe-run --help does not give exit status $s"
    grep -q "^$s \| $s " "$tmp/fsafe-run.1-exit" || fail "fsafe-run(1) EXIT STATUS does not give $s"
    grep -q "exit status.*$s\|$s.*exit status\|^| $s " "$tmp/readme-settings" || fail "README.md does not give exit status $s"
done
# Every public function (declared FSAFE_API or static inline in fsafe.h) has a page.
sed -n 's/^\(FSAFE_API\|static inline\) [a-z_ *]*[ *]\(fsafe_[a-z_]*\)(.*/\2/p' "$top/include/fsafe.h" | sort -u >"$tmp/functions"
[ "$(wc -l <"$tmp/functions")" -ge 12 ] || fail "too few functions parsed from include/fsafe.h"
for f in $(cat "$tmp/functions"); do
    [ -f "$man/$f.3" ] || fail "no man page doc/man/$f.3"
done
ok "$n settings, $(wc -l <"$tmp/opts") options, $(wc -l <"$tmp/functions") functions documented"
