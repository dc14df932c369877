#!/bin/sh
# SPDX-License-Identifier: MIT
# Retrofitting fork safety onto the legacy library, with no code change:
#   retrofit.sh FSAFE_RUN BINDIR without|no-locks|with|with-library|env|unchanged
. "$(dirname "$0")/lib.sh"
prog=$bin/test_dropin_retrofit
case $1 in
without) # no fsafe at all: the child hangs on legacy_lock
    "$prog" hang >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    ;;
no-locks) # fsafe loaded but not told about the lock: still hangs
    "$run" "$prog" hang >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    ;;
with)
    "$run" --locks=legacy_lock:mutex:10 "$prog" ok 3 >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    [ ! -s "$tmp/err" ] || fail "unexpected messages"
    ;;
with-library) # pinned to the library, through a copy relocation if the program has one
    "$run" --locks=legacy_lock@liblegacy_test.so:mutex:10 "$prog" ok >"$tmp/out" 2>"$tmp/err" \
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
*) fail "unknown case $1" ;;
esac
ok "$1: $(tail -1 "$tmp/out")"
