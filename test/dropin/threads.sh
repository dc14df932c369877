#!/bin/sh
# SPDX-License-Identifier: MIT
# FSAFE_WARN_THREADS: a warning at the first fork made with other threads
# alive, again only when their number changes, and the total at exit.
#   threads.sh FSAFE_RUN BINDIR
. "$(dirname "$0")/lib.sh"
prog=$bin/test_dropin_prog
"$run" --warn-threads "$prog" threads 3 >"$tmp/out" 2>"$tmp/err" || fail "status $?"
pid='[0-9][0-9]*'
grep -q "^${M}forking with 3 other threads alive; locks not registered" "$tmp/err" \
    || fail "wrong count or wording"
grep -q "^${M}test_dropin_prog: 1 of 1 forks were made with other threads alive (at most 3)\$" \
    "$tmp/err" || fail "no total at exit"
[ "$(wc -l <"$tmp/err")" = 2 ] || fail "expected the warning and the total"
# 30 forks: 15 with 2 other threads, then 15 with 4: one line each, one total.
"$run" --warn-threads "$prog" threads 2 15 2 >"$tmp/out30" 2>"$tmp/err30" || fail "status $?"
[ "$(mcount "^${M}forking with 2 other threads alive; locks not" "$tmp/err30")" = 1 ] \
    || fail "first warning not said exactly once"
[ "$(mcount "^${M}forking with 4 other threads alive (was 2)\$" "$tmp/err30")" = 1 ] \
    || fail "the change from 2 to 4 threads not said exactly once"
[ "$(mcount "^${M}test_dropin_prog: 30 of 30 forks were made with other threads alive (at most 4)\$" \
    "$tmp/err30")" = 1 ] || fail "no total (30 of 30, at most 4) at exit"
[ "$(wc -l <"$tmp/err30")" = 3 ] || fail "30 forks: expected 3 lines, not $(wc -l <"$tmp/err30")"
"$run" --warn-threads "$prog" threads 0 >"$tmp/out0" 2>"$tmp/err0" || fail "status $?"
[ ! -s "$tmp/err0" ] || fail "warned for a single-threaded fork"
"$run" "$prog" threads 3 >"$tmp/out1" 2>"$tmp/err1" || fail "status $?"
[ ! -s "$tmp/err1" ] || fail "warned without the setting"
cmp -s "$tmp/out" "$tmp/out1" || fail "output changed"
ok "30 forks:"
cat "$tmp/err30"
