#!/bin/sh
# SPDX-License-Identifier: MIT
# Which of CPython's locks fsafe makes fork-safe, per interpreter (issue 28,
# part 2): for each PYTHON, each lock of test/python/held_lock.py (a
# threading.Lock, an RLock, a buffered file's lock, held by another thread at
# os.fork()) and issue 15's logging program (test/python/mp_logging.py), run
#   without fsafe: the child must hang (the fault is there), and
#   under fsafe-run: every child must complete, with nothing on stderr but
#   the interpreter's own fork warning (test/interp/no-stderr.sh).
# A cell reads "yes" only when both hold: fsafe made the difference.  "no"
# when the child hangs under fsafe-run too; "no hang" when even the plain run
# did not hang (nothing to show); "FAILED" for any other outcome.
#   test/platforms/python-versions.sh BUILD-DIR PYTHON...
# e.g. test/platforms/python-versions.sh build $(pyenv root)/versions/3.*/bin/python3 /usr/bin/python3
# Prints a Markdown table; exit 1 if a cell is FAILED or nothing was run.
set -u
[ $# -ge 2 ] || { echo "usage: $0 BUILD-DIR PYTHON..." >&2; exit 2; }
build=$(cd "$1" && pwd) || exit 2
shift
here=$(cd "$(dirname "$0")/.." && pwd)
run=$build/fsafe-run
[ -x "$run" ] || { echo "python-versions.sh: $run not found (build first)" >&2; exit 2; }
py_dir=$here/python
noerr=$here/interp/no-stderr.sh
bad=0

cell() { # cell WITHOUT-COMMAND -- WITH-COMMAND: yes / no / no hang / FAILED
    without=""
    while [ "$1" != -- ]; do without="$without '$1'"; shift; done
    shift
    if eval "$without" >/dev/null 2>&1; then
        if "$noerr" "$run" "$@" >/dev/null 2>&1; then echo yes
        elif "$run" "$@" >/dev/null 2>&1; then echo "FAILED (stderr)"
        else echo no
        fi
    else
        echo "no hang"
    fi
}

echo "| Python | threading.Lock | RLock | buffered file | logging (issue 15) |"
echo "|---|---|---|---|---|"
for py in "$@"; do
    v=$("$py" -c 'import platform; print(platform.python_version())' 2>/dev/null) ||
        { echo "| $py | cannot run | | | |"; bad=1; continue; }
    row="| $v ($py)"
    for w in lock rlock buffered; do
        c=$(cell "$py" "$py_dir/held_lock.py" --what "$w" --expect hang --forks 3 -- \
                 "$py" "$py_dir/held_lock.py" --what "$w" --expect ok)
        row="$row | $c"
        case $c in FAILED*) bad=1 ;; esac
    done
    c=$(cell "$py" "$py_dir/mp_logging.py" --expect hang --workers 20 --timeout 2 -- \
             "$py" "$py_dir/mp_logging.py" --expect ok --workers 50)
    case $c in FAILED*) bad=1 ;; esac
    echo "$row | $c |"
done
exit $bad
