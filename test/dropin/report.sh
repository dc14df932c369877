#!/bin/sh
# SPDX-License-Identifier: MIT
# Auto mode's report of a fork that waited too long names the lock and the
# function that took it, from the symbol tables: libfsafe-elf.so reads them,
# and without FSAFE_LOCKS it is not preloaded, so the report loads it itself
# (from the directory of the library it is in, once, in the parent after the
# fork).  The legacy library's worker (a static function) holds legacy_lock
# for 1 s; with FSAFE_AUTO_WAIT_MS=100 every fork times out and reports.
#   report.sh FSAFE_RUN BINDIR lazy|fallback
#     lazy:     the build tree's libraries: the static function is named.
#     fallback: libfsafe-auto.so copied where there is no libfsafe-elf.so:
#               the exported lock name only (dladdr), the caller as
#               library+offset, and no other line.
. "$(dirname "$0")/lib.sh"
prog=$bin/test_dropin_retrofit
auto_lib=$(sed -n "s/^auto_lib='\(.*\)'$/\1/p" "$run")
[ -f "$auto_lib" ] || fail "cannot find the libraries in $run"
held="^${M}  mutex 0x[0-9a-f]* legacy_lock (\(test_dropin_retrofit\|liblegacy_test\.so\)) held by thread [0-9]*, taken at liblegacy_test\.so+0x[0-9a-f]*"
case $1 in
lazy) ;;
fallback)
    mkdir "$tmp/lib" && cp "$auto_lib" "$tmp/lib/" || fail "copy"
    auto_lib=$tmp/lib/${auto_lib##*/}
    ;;
*) fail "unknown case $1" ;;
esac
LD_PRELOAD=$auto_lib FSAFE_AUTO_WAIT_MS=100 "$prog" ok 2 >"$tmp/out" 2>"$tmp/err" ||
    fail "status $?"
reports=$(mcount "^${M}fork waited [0-9]* ms (FSAFE_AUTO_WAIT_MS) for 1 lock" "$tmp/err")
[ "$reports" = 2 ] || fail "$reports timeout reports, expected 2"
case $1 in
lazy)
    [ "$(mcount "$held (worker+0x[0-9a-f]*)" "$tmp/err")" = 2 ] ||
        fail "the report did not name the static function 'worker' (reader not loaded?)"
    ;;
fallback)
    [ "$(mcount "$held$" "$tmp/err")" = 2 ] || fail "not two lines with the exported name only"
    [ "$(wc -l <"$tmp/err")" = 4 ] || fail "other lines than the two reports"
    ;;
esac
ok "$1: $(grep "held by thread" "$tmp/err" | head -1 | sed "s/^fsafe\[[0-9]*\]: *//")"
