#!/bin/sh
# SPDX-License-Identifier: MIT
# The README's drop-in section documents every setting of the option table
# (a row in the settings table) and every fsafe-run option.
#   docs.sh FSAFE_RUN BINDIR
. "$(dirname "$0")/lib.sh"
readme=$top/README.md
sed -n '/^## Drop-in use/,/^## /p' "$readme" >"$tmp/section"
[ -s "$tmp/section" ] || fail "no '## Drop-in use' section in README.md"
for v in $(settings); do
    grep -q "^| \`$v\` |" "$tmp/section" || fail "README: no table row for $v"
done
"$run" --help | sed -n 's/^ *\(-., \)\{0,1\}\(--[a-z-]*\).*/\2/p' >"$tmp/opts"
for o in $(cat "$tmp/opts"); do
    grep -q -- "$o" "$tmp/section" || fail "README does not mention $o"
done
ok "$(settings | wc -l) settings and $(wc -l <"$tmp/opts") options documented"
