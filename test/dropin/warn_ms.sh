#!/bin/sh
# SPDX-License-Identifier: MIT
# FSAFE_WARN_MS names the lock a fork is stuck on: its name, rank, address and
# the thread holding it.  The legacy worker holds legacy_lock for 1 s.
#   warn_ms.sh FSAFE_RUN BINDIR
. "$(dirname "$0")/lib.sh"
prog=$bin/test_dropin_retrofit
"$run" --no-auto --warn-ms=200 --locks=legacy_lock:mutex:10 "$prog" ok >"$tmp/out" 2>"$tmp/err" \
    || fail "status $?"
addr=$(sed -n 's/^lock \(0x[0-9a-f]*\) worker.*/\1/p' "$tmp/out")
tid=$(sed -n 's/^lock .* worker \([0-9]*\)$/\1/p' "$tmp/out")
[ -n "$addr" ] && [ -n "$tid" ] || fail "the program did not print the lock and worker"
grep -E "^${M}fork has waited [0-9]+ ms for lock 'legacy_lock' \(rank 10, $addr\), held by thread $tid\$" \
    "$tmp/err" >/dev/null || fail "no line naming legacy_lock ($addr) and thread $tid"
[ "$(count "for lock 'legacy_lock'" "$tmp/err")" = 1 ] || fail "warned more than once"
grep -q "^${M}fork got lock 'legacy_lock' after [0-9]* ms" "$tmp/err" || fail "no 'got lock' line"
# Without the setting, not a word.
"$run" --no-auto --locks=legacy_lock:mutex:10 "$prog" ok >"$tmp/out2" 2>"$tmp/err2" || fail "status $?"
[ ! -s "$tmp/err2" ] || fail "messages without --warn-ms"
ok "$(grep 'has waited' "$tmp/err")"
