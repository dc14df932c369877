# SPDX-License-Identifier: MIT
# Shared by the drop-in test scripts (sourced).  Each script is one CTest test
# and gets: $1 = the build tree's fsafe-run, $2 = the directory holding the
# test programs, then its own arguments.
set -u
run=$1
bin=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$src/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# No FSAFE_* setting from the caller's environment leaks into a test.
for v in $(env | sed -n 's/^\(FSAFE_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset LD_PRELOAD

fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*; do
        [ -f "$f" ] && { echo "--- $(basename "$f"):" >&2; head -c 4000 "$f" >&2; }
    done
    exit 1
}
ok() { echo "ok: $*"; }
# The FSAFE_* names in the option table of src/core/config.c.
settings() { sed -n 's/^ *{"\(FSAFE_[A-Z_]*\)".*/\1/p' "$top/src/core/config.c"; }
# count PATTERN FILE: lines matching a fixed string
count() { grep -cF -- "$1" "$2" || true; }
# The start of one of fsafe's message lines, "fsafe[PID]: ", as a basic or
# extended regular expression; mcount REGEX FILE counts lines matching it.
M='fsafe\[[0-9][0-9]*\]: '
mcount() { grep -c -- "$1" "$2" || true; }
# interp_own FILE...: deletes from each file CPython 3.12+'s own warning
# about forking a multithreaded process (test/interp/python-fork-warning.sed),
# which carries the pid and is printed with or without fsafe.
interp_own() {
    for f; do
        sed -E -f "$top/test/interp/python-fork-warning.sed" "$f" >"$f.own" && mv "$f.own" "$f"
    done
}
