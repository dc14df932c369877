#!/bin/sh
# SPDX-License-Identifier: MIT
# CPython's own fork-related tests, plainly and under fsafe-run (auto mode),
# and a comparison of the two.  Not run by CTest (it takes tens of minutes):
#   test/interp/cpython-tests.sh BUILD/fsafe-run [OUTDIR] [TEST...]
# Needs Debian's libpython3.11-testsuite (apt-get install it).  Writes
# OUTDIR/{plain,fsafe}/<test>.log, prints pass/fail/skip counts per test and
# way, and lists every test case whose result differs.  Exit 0 when nothing
# differs, 1 otherwise.
set -u
run=${1:?usage: $0 FSAFE-RUN [OUTDIR] [TEST...]}
out=${2:-cpython-tests}
[ $# -ge 2 ] && shift 2 || shift $#
tests=${*:-test_fork1 test_threading test_os test_subprocess test_multiprocessing_fork}
py=${PYTHON:-/usr/bin/python3}
if ! $py -c 'import test.support' 2>/dev/null; then
    echo "$0: $py has no test package (apt-get install libpython3.11-testsuite)" >&2
    exit 2
fi
mkdir -p "$out/plain" "$out/fsafe"

# One line per test case: "<id> <result>" from unittest's verbose output.
results() {
    awk '
        /^test[^ ]* \([^)]*\)$/ { id = $1 " " $2; next }   # a docstring line follows
        / \.\.\. / {
            line = $0
            if (match(line, /^test[^ ]* \([^)]*\)/)) id = substr(line, 1, RLENGTH)
            if (id == "") next
            r = ""
            if (line ~ /\.\.\. *ok$/) r = "ok"
            else if (line ~ /\.\.\. *FAIL$/) r = "FAIL"
            else if (line ~ /\.\.\. *ERROR$/) r = "ERROR"
            else if (line ~ /\.\.\. *skipped/) r = "skip"
            else if (line ~ /\.\.\. *expected failure/) r = "xfail"
            else if (line ~ /\.\.\. *unexpected success/) r = "xpass"
            if (r != "") { print id, r; id = "" }
            next
        }
        # A result on a line of its own: output of the test (another
        # process'\''s traceback) came between the id and its result.
        id != "" && /^(ok|FAIL|ERROR)$/ { print id, $1; id = "" }' "$1" | sort -u
}

count() { # file result
    results "$1" | awk -v r="$2" '$NF == r' | wc -l
}

for t in $tests; do
    for way in plain fsafe; do
        log=$out/$way/$t.log
        if [ "$way" = plain ]; then
            $py -m test -v --timeout 1200 "$t" >"$log" 2>&1
        else
            "$run" $py -m test -v --timeout 1200 "$t" >"$log" 2>&1
        fi
        echo "$?" >"$log.rc"
    done
done

status=0
printf '%-28s %-6s %6s %6s %6s %6s %4s\n' test way ok fail error skip rc
for t in $tests; do
    for way in plain fsafe; do
        log=$out/$way/$t.log
        printf '%-28s %-6s %6d %6d %6d %6d %4s\n' "$t" "$way" "$(count "$log" ok)" \
            "$(count "$log" FAIL)" "$(count "$log" ERROR)" "$(count "$log" skip)" "$(cat "$log.rc")"
    done
    results "$out/plain/$t.log" >"$out/plain/$t.results"
    results "$out/fsafe/$t.log" >"$out/fsafe/$t.results"
    if ! cmp -s "$out/plain/$t.results" "$out/fsafe/$t.results" ||
        [ "$(cat "$out/plain/$t.log.rc")" != "$(cat "$out/fsafe/$t.log.rc")" ]; then
        status=1
        echo "differences in $t (< plain, > fsafe-run):"
        diff "$out/plain/$t.results" "$out/fsafe/$t.results" | grep '^[<>]'
    fi
done
exit $status
