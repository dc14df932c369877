#!/bin/sh
# SPDX-License-Identifier: MIT
# compare_preload.sh LIB PROGRAM [ARGS...]
# Runs PROGRAM plainly and with LD_PRELOAD=LIB; stdout, stderr and the exit
# status must be identical (fsafe changes nothing in a program that registers
# nothing).
set -u
lib=$1; shift
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$@" >"$dir/out1" 2>"$dir/err1"; rc1=$?
LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" "$@" >"$dir/out2" 2>"$dir/err2"; rc2=$?
fail=0
cmp -s "$dir/out1" "$dir/out2" || { echo "FAIL: stdout differs"; diff "$dir/out1" "$dir/out2"; fail=1; }
cmp -s "$dir/err1" "$dir/err2" || { echo "FAIL: stderr differs"; diff "$dir/err1" "$dir/err2"; fail=1; }
[ "$rc1" = "$rc2" ] || { echo "FAIL: exit status $rc1 plain, $rc2 with fsafe"; fail=1; }
# The preloaded run must really have loaded fsafe: asked, it reports at exit.
# (PROGRAM itself, not sh: a libfsafe.so built for musl loads into musl
# programs only, one built for arm64 into arm64 programs only; and musl's
# loader has no LD_DEBUG.)
LD_PRELOAD="$lib" FSAFE_STATS=1 "$@" 2>&1 >/dev/null | grep -q '^fsafe\[[0-9]*\]: stats for ' ||
  { echo "FAIL: $lib did not load"; fail=1; }
[ $fail = 0 ] && echo "ok: identical stdout ($(wc -l <"$dir/out1") lines), stderr and exit status ($rc1)"
exit $fail
