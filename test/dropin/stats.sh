#!/bin/sh
# SPDX-License-Identifier: MIT
# FSAFE_STATS lists the forks and every registered lock at exit, once, from
# the process that read the setting (forked children that exit() stay quiet).
#   stats.sh FSAFE_RUN BINDIR
. "$(dirname "$0")/lib.sh"
"$run" --no-auto --stats --locks=legacy_lock:mutex:10,legacy_rwlock:rwlock:20 \
    "$bin/test_dropin_retrofit" ok 2 >"$tmp/out" 2>"$tmp/err" || fail "status $?"
[ "$(mcount "^${M}stats for " "$tmp/err")" = 1 ] || fail "expected one stats report"
grep -Eq "^${M}stats for test_dropin_retrofit: 2 forks \(0 via pthread_atfork\), 4 lock acquisitions; the wait before the real fork took [0-9]+\.[0-9]{3} ms in total, [0-9]+\.[0-9]{3} ms at most; 2 locks registered\$" \
    "$tmp/err" || fail "bad summary line"
grep -Eq "^${M}  lock 'legacy_lock' rank 10 \(mutex, 0x[0-9a-f]+\): longest wait [0-9]+\.[0-9]{3} ms\$" \
    "$tmp/err" || fail "legacy_lock not listed"
grep -Eq "^${M}  lock 'legacy_rwlock' rank 20 \(rwlock, 0x[0-9a-f]+\): longest wait 0\.000 ms\$" \
    "$tmp/err" || fail "legacy_rwlock not listed (it is never contended: 0.000 ms)"
! grep -q "lock 'legacy_lock'.*longest wait 0\.000 ms" "$tmp/err" \
    || fail "legacy_lock was held at fork: its longest wait cannot be 0"
# Locks come in rank order.
grep "^${M}  lock" "$tmp/err" | head -1 | grep -q legacy_lock || fail "not in rank order"
# A child that calls exit() does not print its own copy of the counters.
"$run" --no-auto --stats "$bin/test_dropin_prog" flush >"$tmp/out2" 2>"$tmp/err2" || fail "status $?"
[ "$(mcount "^${M}stats for " "$tmp/err2")" = 1 ] || fail "the child printed stats too"
grep -q "stats for test_dropin_prog: 1 forks" "$tmp/err2" || fail "fork not counted"
ok "stats:"
cat "$tmp/err"
