#!/bin/sh
# SPDX-License-Identifier: MIT
# FSAFE_VERBOSE prints the effective configuration and one line per fork, and
# changes nothing else.
#   verbose.sh FSAFE_RUN BINDIR VERSION
. "$(dirname "$0")/lib.sh"
prog="$bin/test_dropin_prog plain"
"$run" $prog >"$tmp/out.quiet" 2>/dev/null
"$run" --verbose --warn-ms=5 --locks=legacy_lock $prog >"$tmp/out" 2>"$tmp/err"
[ $? = 3 ] || fail "status changed"
cmp -s "$tmp/out.quiet" "$tmp/out" || fail "output changed"
grep -q "^${M}fsafe $1 in test_dropin_prog: verbose=1 stats=0 warn_ms=5 .* locks=legacy_lock\$" "$tmp/err" \
    || fail "no configuration line"
[ "$(mcount "^${M}fork #" "$tmp/err")" = 1 ] || fail "expected one fork line"
grep -q "^${M}fork #1 in pid [0-9]*: auto mode found no other thread in a tracked lock or libc call; took 0 of 0 registered locks" "$tmp/err" \
    || fail "fork line"
grep -q "FSAFE_LOCKS: legacy_lock: symbol not found" "$tmp/err" \
    || fail "unresolved symbol not reported (the program does not load liblegacy_test.so)"
ok "verbose:"
cat "$tmp/err"
