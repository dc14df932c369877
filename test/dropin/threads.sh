#!/bin/sh
# SPDX-License-Identifier: MIT
# FSAFE_WARN_THREADS: one warning per fork with the count of other threads.
#   threads.sh FSAFE_RUN BINDIR
. "$(dirname "$0")/lib.sh"
prog=$bin/test_dropin_prog
"$run" --warn-threads "$prog" threads 3 >"$tmp/out" 2>"$tmp/err" || fail "status $?"
[ "$(wc -l <"$tmp/err")" = 1 ] || fail "expected one line"
grep -Eq "^fsafe: process [0-9]+ is forking with 3 other threads alive" "$tmp/err" \
    || fail "wrong count or wording"
"$run" --warn-threads "$prog" threads 0 >"$tmp/out0" 2>"$tmp/err0" || fail "status $?"
[ ! -s "$tmp/err0" ] || fail "warned for a single-threaded fork"
"$run" "$prog" threads 3 >"$tmp/out1" 2>"$tmp/err1" || fail "status $?"
[ ! -s "$tmp/err1" ] || fail "warned without the setting"
ok "$(cat "$tmp/err")"
