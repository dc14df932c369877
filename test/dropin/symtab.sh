#!/bin/sh
# SPDX-License-Identifier: MIT
# FSAFE_LOCKS finds names that nm shows but the dynamic symbol table does not:
#   symtab.sh FSAFE_RUN BINDIR without|global|static|libstatic|ambiguous|stripped
. "$(dirname "$0")/lib.sh"
prog=$bin/test_dropin_symtab
case $1 in
without) # no entry: the child hangs on the program's global
    "$run" --no-auto "$prog" global hang >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    ;;
global) # a global of a program built without -rdynamic
    nm -D "$prog" | grep -q app_lock && fail "app_lock is exported: the test proves nothing"
    "$run" --no-auto --locks=app_lock "$prog" global ok >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    [ ! -s "$tmp/err" ] || fail "unexpected messages"
    ;;
static)
    "$run" --no-auto --locks=app_static_lock "$prog" static ok >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    [ ! -s "$tmp/err" ] || fail "unexpected messages"
    ;;
libstatic) # a library's static, by name@library
    "$run" --no-auto --locks=legacy_static_lock@liblegacy_test.so "$prog" libstatic ok >"$tmp/out" \
        2>"$tmp/err" || fail "status $?"
    [ ! -s "$tmp/err" ] || fail "unexpected messages"
    ;;
ambiguous) # local in two objects: refused with advice; pinned to the program: works
    "$run" --no-auto --locks=dup_lock "$prog" dup hang >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    grep -q "^${M}FSAFE_LOCKS: dup_lock: a local (static or hidden) name in several places (test_dropin_symtab, liblegacy_test.so); name one as dup_lock@library" "$tmp/err" ||
        fail "no message naming both objects"
    "$run" --no-auto --locks=dup_lock@test_dropin_symtab "$prog" dup ok >"$tmp/out" 2>"$tmp/err" ||
        fail "status $? with @program"
    ;;
stripped) # no .symtab and no debug file: the message says why
    cp "$prog" "$tmp/stripped_prog"
    strip "$tmp/stripped_prog" || fail "strip"
    "$run" --no-auto --locks=app_lock "$tmp/stripped_prog" global hang >"$tmp/out" 2>"$tmp/err" ||
        fail "status $?"
    grep -q "^${M}FSAFE_LOCKS: app_lock: symbol not found in the program or the libraries loaded at startup (.* are stripped with no debug file installed (stripped_prog among them)" "$tmp/err" ||
        fail "no message saying the program is stripped"
    ;;
*) fail "unknown case $1" ;;
esac
ok "$1: $(tail -1 "$tmp/out")"
