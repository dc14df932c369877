#!/bin/sh
# SPDX-License-Identifier: MIT
# An FSAFE_ variable named like a misspelt setting gets one warning naming the
# setting, and nothing else changes; names far from every setting (other
# programs' FSAFE_BUILD, fsafe-run's FSAFE_RUN_*) are left alone.
#   unknown.sh FSAFE_RUN BINDIR
. "$(dirname "$0")/lib.sh"
prog="$bin/test_dropin_prog plain"
"$run" $prog >"$tmp/out.clean" 2>"$tmp/err.clean"
st_clean=$?
check() { # VARIABLE=VALUE EXPECTED-SUGGESTION ('' = no line)
    env "$1" "$run" $prog >"$tmp/out" 2>"$tmp/err"
    st=$?
    [ "$st" = "$st_clean" ] || fail "$1: status $st"
    cmp -s "$tmp/out.clean" "$tmp/out" || fail "$1: output changed"
    name=${1%%=*}
    if [ -z "$2" ]; then
        [ ! -s "$tmp/err" ] || fail "$1: warned: $(cat "$tmp/err")"
    else
        [ "$(wc -l <"$tmp/err")" = 1 ] || fail "$1: expected one line"
        grep -q "^${M}$name is not a setting of fsafe; did you mean $2? (ignored)\$" "$tmp/err" \
            || fail "$1: $(cat "$tmp/err")"
    fi
}
check FSAFE_STAT=1 FSAFE_STATS
check FSAFE_VERBSOE=1 FSAFE_VERBOSE
check FSAFE_WARN_THREAD=1 FSAFE_WARN_THREADS
check FSAFE_churn=2 FSAFE_CHURN
check FSAFE_LOGFD=2 FSAFE_LOG_FD
check FSAFE_AUTO_WAIT=5 FSAFE_AUTO_WAIT_MS
check FSAFE_BUILD=/tmp ''
check FSAFE_RUN_ANYTHING=1 ''
check FSAFE_RUN_STATS=1 ''
check FSAFE_DEMO_LIB=x ''
ok "misspelt settings named, other FSAFE_ names left alone"
