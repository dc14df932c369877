#!/bin/sh
# SPDX-License-Identifier: MIT
# Every FSAFE_* setting of the option table set to garbage: exactly one warning
# line naming it, and the program's output and status do not change.  First
# one at a time, then all at once.
#   garbage.sh FSAFE_RUN BINDIR
. "$(dirname "$0")/lib.sh"
prog="$bin/test_dropin_prog plain"
"$run" $prog >"$tmp/out.clean" 2>"$tmp/err.clean"
st_clean=$?
[ "$st_clean" = 3 ] || fail "the program should exit 3, got $st_clean"
[ ! -s "$tmp/err.clean" ] || fail "messages without settings"
n=0
for v in $(settings); do
    n=$((n + 1))
    env "$v=garbage!" "$run" $prog >"$tmp/out.$v" 2>"$tmp/err.$v"
    st=$?
    [ "$st" = "$st_clean" ] || fail "$v=garbage!: status $st"
    cmp -s "$tmp/out.clean" "$tmp/out.$v" || fail "$v=garbage!: output changed"
    [ "$(wc -l <"$tmp/err.$v")" = 1 ] || fail "$v=garbage!: expected exactly one line"
    grep -q "^$M$v:" "$tmp/err.$v" || fail "$v=garbage!: the warning does not name $v"
done
[ "$n" -ge 8 ] || fail "only $n settings found in src/core/config.c"
all=
for v in $(settings); do all="$all $v=garbage!"; done
env $all "$run" $prog >"$tmp/out.all" 2>"$tmp/err.all"
st=$?
[ "$st" = "$st_clean" ] || fail "all garbage: status $st"
cmp -s "$tmp/out.clean" "$tmp/out.all" || fail "all garbage: output changed"
[ "$(wc -l <"$tmp/err.all")" = "$n" ] || fail "all garbage: expected $n lines"
for v in $(settings); do
    [ "$(grep -c "^$M$v:" "$tmp/err.all")" = 1 ] || fail "all garbage: not one line for $v"
done
ok "$n settings, one warning each:"
cat "$tmp/err.all"
