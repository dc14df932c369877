#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs a command and fails if it fails or writes anything at all on stderr:
# fsafe, and a library that uses it optionally, must be silent by default
# (CPython 3.12+'s own warning about fork with threads is not counted).
err=$(mktemp) || exit 1
"$@" 2>"$err"
rc=$?
# CPython 3.12+ warns about forking with threads itself: not fsafe's.
sed -E -f "$(dirname "$0")/python-fork-warning.sed" "$err" >"$err.own" && mv "$err.own" "$err"
if [ -s "$err" ]; then
    echo "FAIL: unexpected stderr from: $*" >&2
    cat "$err" >&2
    [ $rc -eq 0 ] && rc=1
fi
rm -f "$err"
exit $rc
