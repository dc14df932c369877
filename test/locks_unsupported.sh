#!/bin/sh
# SPDX-License-Identifier: MIT
# locks_unsupported.sh LIB PROGRAM [ARGS...]
# In a build without FSAFE_LOCKS (src/retrofit/locks_none.c): PROGRAM preloaded with
# FSAFE_LOCKS set says exactly one line more on stderr, that FSAFE_LOCKS is
# not supported, and otherwise does what it does with FSAFE_LOCKS unset
# (same stdout, other stderr lines and exit status).  An empty FSAFE_LOCKS
# adds nothing.
set -u
lib=$1; shift
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
LD_PRELOAD="$lib" "$@" >"$dir/out1" 2>"$dir/err1"; rc1=$?
LD_PRELOAD="$lib" FSAFE_LOCKS='some_lock:mutex:1,other@libfoo.so' "$@" >"$dir/out2" 2>"$dir/err2"; rc2=$?
LD_PRELOAD="$lib" FSAFE_LOCKS= "$@" >"$dir/out3" 2>"$dir/err3"; rc3=$?
fail=0
msg='^fsafe\[[0-9]*\]: FSAFE_LOCKS is not supported in this build of fsafe'
n=$(grep -c "$msg" "$dir/err2")
[ "$n" = 1 ] || { echo "FAIL: $n 'not supported' lines with FSAFE_LOCKS set, expected 1"; cat "$dir/err2"; fail=1; }
grep -v "$msg" "$dir/err2" >"$dir/err2.rest"
cmp -s "$dir/err1" "$dir/err2.rest" || { echo "FAIL: other stderr differs"; diff "$dir/err1" "$dir/err2.rest"; fail=1; }
cmp -s "$dir/out1" "$dir/out2" || { echo "FAIL: stdout differs with FSAFE_LOCKS set"; fail=1; }
[ "$rc1" = "$rc2" ] || { echo "FAIL: exit status $rc1 unset, $rc2 with FSAFE_LOCKS set"; fail=1; }
cmp -s "$dir/err1" "$dir/err3" && cmp -s "$dir/out1" "$dir/out3" && [ "$rc1" = "$rc3" ] ||
  { echo "FAIL: an empty FSAFE_LOCKS changed the output or the exit status"; fail=1; }
[ $fail = 0 ] && echo "ok: FSAFE_LOCKS set: one line on stderr ($(grep "$msg" "$dir/err2" | sed 's/^fsafe\[[0-9]*\]: //')), otherwise as unset"
exit $fail
