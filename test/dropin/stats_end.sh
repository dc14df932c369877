#!/bin/sh
# SPDX-License-Identifier: MIT
# FSAFE_STATS however the program ends: _exit() and _Exit() (no destructors
# run), after it closed fd 2 (coreutils does), and plain exit(); the program's
# own output and status do not change.
#   stats_end.sh FSAFE_RUN BINDIR _exit|_Exit|close2|exit|no-auto|ls
. "$(dirname "$0")/lib.sh"
how=$1
prog=$bin/test_dropin_prog
case $how in
_exit | _Exit | close2 | exit | no-auto)
    end=$how opts=
    [ "$how" = no-auto ] && end=_exit opts=--no-auto
    "$prog" end "$end" >"$tmp/out.plain" 2>"$tmp/err.plain"
    st_plain=$?
    "$run" $opts --stats "$prog" end "$end" >"$tmp/out" 2>"$tmp/err"
    st=$?
    [ "$st" = "$st_plain" ] && [ "$st" = 5 ] || fail "status $st, without fsafe $st_plain"
    cmp -s "$tmp/out.plain" "$tmp/out" || fail "output changed"
    at=
    case $end in _exit | _Exit) at=' at _exit()' ;; esac
    [ "$(mcount "^${M}stats for " "$tmp/err")" = 1 ] || fail "expected one stats report"
    grep -q "^${M}stats for test_dropin_prog$at: 1 forks (0 via pthread_atfork)" "$tmp/err" \
        || fail "no report for '$how'"
    ;;
ls)
    # coreutils closes stderr before it exits: the report uses fsafe's copy.
    "$run" -s ls / >"$tmp/out" 2>"$tmp/err" || fail "ls: status $?"
    [ "$(mcount "^${M}stats for ls: 0 forks" "$tmp/err")" = 1 ] || fail "no report from ls"
    ;;
*) fail "unknown case $how" ;;
esac
ok "$how: $(cat "$tmp/err")"
