#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs a command and fails if it fails or writes anything at all on stderr:
# fsafe, and a library that uses it optionally, must be silent by default.
err=$(mktemp) || exit 1
"$@" 2>"$err"
rc=$?
if [ -s "$err" ]; then
    echo "FAIL: unexpected stderr from: $*" >&2
    cat "$err" >&2
    [ $rc -eq 0 ] && rc=1
fi
rm -f "$err"
exit $rc
