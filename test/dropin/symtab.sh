#!/bin/sh
# SPDX-License-Identifier: MIT
# FSAFE_LOCKS finds names that nm shows but the dynamic symbol table does not:
#   symtab.sh FSAFE_RUN BINDIR without|global|static|libstatic|ambiguous|stripped|futex
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
futex) # a futex word laid out as Rust's std::sync::Mutex: refused, the data left whole
    lib=$bin/libfsafe_futexlock.so
    nm -D "$lib" | grep -Eq ' U (pthread_mutex_|pthread_cond_|mtx_|cnd_)' &&
        fail "libfsafe_futexlock.so imports a mutex function: the test proves nothing"
    "$run" --no-auto --locks=futex_registry+0@libfsafe_futexlock.so "$prog" futex >"$tmp/out" \
        2>"$tmp/err" || fail "status $?: $(cat "$tmp/out" "$tmp/err")"
    grep -q "^${M}FSAFE_LOCKS: futex_registry+0@libfsafe_futexlock.so: the name is local to libfsafe_futexlock.so, which calls no mutex function" "$tmp/err" ||
        fail "not refused: $(cat "$tmp/err")"
    ;;
*) fail "unknown case $1" ;;
esac
ok "$1: $(tail -1 "$tmp/out")"
