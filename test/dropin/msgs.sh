#!/bin/sh
# SPDX-License-Identifier: MIT
# Every message line carries the pid of the process that wrote it, as
# "fsafe[PID]: "; the start-up (verbose) and stats lines also name the program.
# A shell that then execs the program keeps its pid, so every line here must
# carry the pid the shell printed; the forked child prints nothing.
#   msgs.sh FSAFE_RUN BINDIR VERSION
. "$(dirname "$0")/lib.sh"
"$run" -v -s --warn-threads sh -c 'echo "pid $$"; exec "$1" threads 1' sh "$bin/test_dropin_prog" \
    >"$tmp/out" 2>"$tmp/err" || fail "status $?"
pid=$(sed -n 's/^pid //p' "$tmp/out")
[ -n "$pid" ] || fail "no pid printed"
[ "$(wc -l <"$tmp/err")" -ge 5 ] || fail "expected at least 5 lines"
grep -v "^fsafe\[$pid\]: " "$tmp/err" >"$tmp/other" && fail "lines without 'fsafe[$pid]: '"
# Start-up lines: one for sh, one for the program it execs; both name it.
grep -q "^fsafe\[$pid\]: fsafe $1 in sh: verbose=1" "$tmp/err" || fail "sh's start-up line"
grep -q "^fsafe\[$pid\]: fsafe $1 in test_dropin_prog: verbose=1" "$tmp/err" \
    || fail "the program's start-up line"
grep -q "^fsafe\[$pid\]: stats for test_dropin_prog: 1 forks" "$tmp/err" || fail "stats line"
ok "all lines from fsafe[$pid]:"
cat "$tmp/err"
