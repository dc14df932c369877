#!/bin/sh
# SPDX-License-Identifier: MIT
# Retrofitting fork safety onto the legacy library, with no code change:
#   retrofit.sh FSAFE_RUN BINDIR without|no-locks|with|with-library|env|unchanged|
#                     resolve-errors|offset
. "$(dirname "$0")/lib.sh"
prog=$bin/test_dropin_retrofit
case $1 in
without) # no fsafe at all: the child hangs on legacy_lock
    "$prog" hang >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    ;;
no-locks) # fsafe loaded but not told about the lock: still hangs
    "$run" --no-auto "$prog" hang >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    ;;
with)
    "$run" --no-auto --locks=legacy_lock:mutex:10 "$prog" ok 3 >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    [ ! -s "$tmp/err" ] || fail "unexpected messages"
    ;;
with-library) # pinned to the library, through a copy relocation if the program has one
    "$run" --no-auto --locks=legacy_lock@liblegacy_test.so:mutex:10 "$prog" ok >"$tmp/out" 2>"$tmp/err" \
        || fail "status $?"
    [ ! -s "$tmp/err" ] || fail "unexpected messages"
    ;;
env) # the plain environment variables, without fsafe-run
    lib=$(sed -n "s/^lib='\(.*\)'$/\1/p" "$run")
    [ -f "$lib" ] || fail "cannot find the library in $run"
    LD_PRELOAD=$lib FSAFE_LOCKS=legacy_lock "$prog" ok >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    ;;
unchanged) # neither the program nor the library knows fsafe
    for f in "$prog" "$bin/liblegacy_test.so"; do
        readelf -d "$f" | grep NEEDED >"$tmp/needed" || fail "readelf $f"
        ! grep -q fsafe "$tmp/needed" || fail "$f depends on fsafe"
        ! nm -D "$f" | grep -q fsafe || fail "$f refers to an fsafe symbol"
    done
    echo "no fsafe in $prog or liblegacy_test.so" >"$tmp/out"
    ;;
resolve-errors) # one message per entry that cannot be used; the good ones still work
    "$run" --no-auto --stats --locks='legacy_readonly+0,legacy_readonly,legacy_call,legacy_lock:rwlock,legacy_lock@libc.so.6' \
        --locks='legacy_lock@libfsafe-nope.so,fsafe_no_such_symbol,legacy_not_a_lock' \
        --locks='legacy_lock@liblegacy_test.so:mutex:10' \
        "$prog" ok >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    for m in "legacy_readonly+0: the object at 0x[0-9a-f]* is not in writable memory" \
        "legacy_readonly: the object is 64 bytes, larger than a mutex (40): it is not a lock" \
        "legacy_call: the symbol is a function, not a lock" \
        "legacy_lock: the object is 40 bytes, too small for a rwlock" \
        "legacy_lock@libc.so.6: symbol not found in 'libc.so.6'" \
        "fsafe_no_such_symbol: symbol not found in the program or the libraries loaded at startup" \
        "legacy_not_a_lock: the bytes at 0x[0-9a-f]* in liblegacy_test.so are not a mutex (it has robust-list links"; do
        [ "$(grep -c "^${M}FSAFE_LOCKS: $m" "$tmp/err")" = 1 ] || fail "not one line: $m"
    done
    # A library not loaded (yet) is waited for quietly: plugins load later.
    [ "$(grep -c "FSAFE_LOCKS" "$tmp/err")" = 7 ] || fail "expected exactly 7 FSAFE_LOCKS lines"
    grep -q "stats for .*; 1 locks registered" "$tmp/err" || fail "the good entry was not registered"
    ;;
offset) # a lock inside an object: the object itself is refused, symbol+OFFSET is not
    "$run" --no-auto -v --locks='legacy_registry@liblegacy_test.so,legacy_registry+0@liblegacy_test.so' \
        --locks='legacy_registry+0x30@liblegacy_test.so:mutex:5,legacy_lock:mutex:10' \
        "$prog" ok >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    grep -q "^${M}FSAFE_LOCKS: legacy_registry@liblegacy_test.so: the object is 88 bytes, larger than a mutex (40)" "$tmp/err" ||
        fail "the whole object was not refused by its size"
    grep -q "^${M}FSAFE_LOCKS: legacy_registry+0@liblegacy_test.so: the bytes at 0x[0-9a-f]* in liblegacy_test.so are not a mutex" "$tmp/err" ||
        fail "the object's first bytes were not refused as a mutex"
    grep -q "^${M}FSAFE_LOCKS: registered 'legacy_registry+48' (mutex, rank 5)" "$tmp/err" ||
        fail "the member lock was not registered"
    ;;
*) fail "unknown case $1" ;;
esac
ok "$1: $(tail -1 "$tmp/out")"
