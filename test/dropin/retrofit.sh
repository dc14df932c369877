#!/bin/sh
# SPDX-License-Identifier: MIT
# Retrofitting fork safety onto the legacy library, with no code change:
#   retrofit.sh FSAFE_RUN BINDIR without|no-locks|with|with-library|env|no-reader|
#                     needed|unchanged|resolve-errors|offset|
#                     linked-run|linked-preload|linked-reversed
. "$(dirname "$0")/lib.sh"
prog=$bin/test_dropin_retrofit
# The libraries fsafe-run preloads (the build tree's: absolute paths).
lib=$(sed -n "s/^lib='\(.*\)'$/\1/p" "$run")
auto_lib=$(sed -n "s/^auto_lib='\(.*\)'$/\1/p" "$run")
elf_lib=$(sed -n "s/^elf_lib='\(.*\)'$/\1/p" "$run")
[ -f "$lib" ] && [ -f "$auto_lib" ] && [ -f "$elf_lib" ] || fail "cannot find the libraries in $run"
# A program linked with libfsafe.so, with libfsafe-auto.so preloaded too:
# one copy of the core acts (one stats report, each fork counted once, the
# lock registered once), the other stays dormant.  With both acting (the
# dormancy check disabled by hand) the first fork crashed: the active copy's
# next fork() is the other copy's, which ran the whole protocol again.
one_core() { # one_core STATS-ERR-FILE
    [ "$(mcount "^${M}stats for " "$1")" = 1 ] || fail "expected one stats report"
    grep -Eq "^${M}stats for test_dropin_linked: 3 forks \(0 via pthread_atfork\), 3 lock acquisitions; .*; 1 locks registered\$" \
        "$1" || fail "not 3 forks and 1 lock registered in one core"
    [ "$(grep -c "^${M}  lock 'legacy_lock'" "$1")" = 1 ] || fail "legacy_lock not listed once"
}
case $1 in
linked-run) # fsafe-run (auto mode, FSAFE_LOCKS) on the linked program
    ldd "$bin/test_dropin_linked" | grep -q 'libfsafe\.so' || fail "the program does not load libfsafe.so"
    "$run" --stats --locks=legacy_lock:mutex:10 "$bin/test_dropin_linked" ok 3 \
        >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    one_core "$tmp/err"
    ;;
linked-preload) # both libraries named in LD_PRELOAD, auto first
    LD_PRELOAD=$elf_lib:$auto_lib:$lib FSAFE_STATS=1 FSAFE_LOCKS=legacy_lock:mutex:10 \
        "$bin/test_dropin_linked" ok 3 >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    one_core "$tmp/err"
    ;;
linked-reversed) # libfsafe.so first: its copy acts, auto mode attaches to it
    LD_PRELOAD=$elf_lib:$lib:$auto_lib FSAFE_STATS=1 FSAFE_LOCKS=legacy_lock:mutex:10 \
        "$bin/test_dropin_linked" ok 3 >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    one_core "$tmp/err"
    ;;
without) # no fsafe at all: the child hangs on legacy_lock
    "$prog" hang >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    ;;
no-locks) # fsafe loaded but not told about the lock: still hangs
    "$run" --no-auto "$prog" hang >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    ;;
with)
    "$run" --no-auto --locks=legacy_lock:mutex:10 "$prog" ok 3 >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    [ ! -s "$tmp/err" ] || fail "unexpected messages"
    ;;
with-library) # pinned to the library, through a copy relocation if the program has one
    "$run" --no-auto --locks=legacy_lock@liblegacy_test.so:mutex:10 "$prog" ok >"$tmp/out" 2>"$tmp/err" \
        || fail "status $?"
    [ ! -s "$tmp/err" ] || fail "unexpected messages"
    ;;
env) # the plain environment variables, without fsafe-run: the reader first
    LD_PRELOAD=$elf_lib:$lib FSAFE_LOCKS=legacy_lock "$prog" ok >"$tmp/out" 2>"$tmp/err" ||
        fail "status $?"
    [ ! -s "$tmp/err" ] || fail "unexpected messages"
    ;;
no-reader) # libfsafe.so without libfsafe-elf.so: one line, FSAFE_LOCKS ignored, the
    # program's output and status its own.  An entry that the reader would
    # report as not found shows that nothing was resolved.
    cmd='echo out; echo err >&2; exit 3'
    LD_PRELOAD=$lib FSAFE_LOCKS=fsafe_no_such_symbol,legacy_lock /bin/sh -c "$cmd" \
        >"$tmp/out" 2>"$tmp/err"
    st=$?
    [ $st = 3 ] || fail "exit status $st, expected 3"
    [ "$(cat "$tmp/out")" = out ] || fail "stdout changed"
    [ "$(wc -l <"$tmp/err")" = 2 ] || fail "expected the program's line and one more on stderr"
    [ "$(sed -n 2p "$tmp/err")" = err ] || fail "the program's stderr changed"
    grep -qx "${M}FSAFE_LOCKS is read by libfsafe-elf.so, which is not loaded: ignored (fsafe-run loads it; with LD_PRELOAD, list libfsafe-elf.so first)" \
        "$tmp/err" || fail "not the line saying the reader is not loaded"
    # The twin: with the reader before libfsafe.so the entries are resolved.
    LD_PRELOAD=$elf_lib:$lib FSAFE_LOCKS=fsafe_no_such_symbol /bin/sh -c "$cmd" \
        >"$tmp/out2" 2>"$tmp/err2"
    st=$?
    [ $st = 3 ] || fail "with the reader: exit status $st, expected 3"
    grep -q "^${M}FSAFE_LOCKS: fsafe_no_such_symbol: symbol not found" "$tmp/err2" ||
        fail "with the reader: the entry was not looked for"
    ! grep -q "not loaded" "$tmp/err2" || fail "with the reader: said it is not loaded"
    cat "$tmp/out" >>"$tmp/out2"
    mv "$tmp/out2" "$tmp/out"
    echo "one line without the reader, entries looked for with it" >>"$tmp/out"
    ;;
needed) # libfsafe.so and libfsafe-auto.so do not load libelf; libfsafe-elf.so does
    for f in "$lib" "$auto_lib" "$elf_lib"; do
        readelf -dW "$f" >"$tmp/dyn" || fail "readelf -d $f"
        grep -q '(NEEDED).*\[libc\.so' "$tmp/dyn" || fail "no NEEDED entries read from $f"
        case $f in
        "$elf_lib") grep -q '(NEEDED).*\[libelf\.so' "$tmp/dyn" || fail "$f does not need libelf" ;;
        *) ! grep -q '(NEEDED).*\[lib\(elf\|z\|fsafe-elf\)\.so' "$tmp/dyn" ||
            fail "$f needs $(grep -o '\[lib\(elf\|z\|fsafe-elf\)\.so[^]]*' "$tmp/dyn" | head -1)" ;;
        esac
    done
    # In a running process under fsafe-run (auto mode, no FSAFE_LOCKS):
    "$run" cat /proc/self/maps >"$tmp/maps" || fail "fsafe-run cat: status $?"
    grep -q 'libfsafe-auto\.so' "$tmp/maps" || fail "libfsafe-auto.so is not mapped under fsafe-run"
    ! grep -q 'libfsafe\.so' "$tmp/maps" || fail "libfsafe.so mapped beside libfsafe-auto.so (its core is built in)"
    ! grep -q 'lib\(elf\|fsafe-elf\)[-.]' "$tmp/maps" || fail "libelf or libfsafe-elf.so mapped under fsafe-run"
    "$run" --locks=fsafe_x cat /proc/self/maps >"$tmp/maps" 2>/dev/null || fail "fsafe-run --locks cat: status $?"
    grep -q 'libfsafe-elf\.so' "$tmp/maps" || fail "libfsafe-elf.so not mapped under fsafe-run --locks"
    echo "no libelf in libfsafe.so or libfsafe-auto.so; libfsafe-auto.so alone mapped under fsafe-run, libfsafe-elf.so with --locks only" >"$tmp/out"
    ;;
unchanged) # neither the program nor the library knows fsafe
    for f in "$prog" "$bin/liblegacy_test.so"; do
        readelf -d "$f" | grep NEEDED >"$tmp/needed" || fail "readelf $f"
        ! grep -q fsafe "$tmp/needed" || fail "$f depends on fsafe"
        ! nm -D "$f" | grep -q fsafe || fail "$f refers to an fsafe symbol"
    done
    echo "no fsafe in $prog or liblegacy_test.so" >"$tmp/out"
    ;;
resolve-errors) # one message per entry that cannot be used; the good ones still work
    "$run" --no-auto --stats --locks='legacy_readonly+0,legacy_readonly,legacy_call,legacy_lock:rwlock,legacy_lock@libc.so.6' \
        --locks='legacy_lock@libfsafe-nope.so,fsafe_no_such_symbol,legacy_not_a_lock' \
        --locks='legacy_lock@liblegacy_test.so:mutex:10' \
        "$prog" ok >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    for m in "legacy_readonly+0: the object at 0x[0-9a-f]* is not in writable memory" \
        "legacy_readonly: the object is 64 bytes, larger than a mutex (40): it is not a lock" \
        "legacy_call: the symbol is a function, not a lock" \
        "legacy_lock: the object is 40 bytes, too small for a rwlock" \
        "legacy_lock@libc.so.6: symbol not found in 'libc.so.6'" \
        "fsafe_no_such_symbol: symbol not found in the program or the libraries loaded at startup" \
        "legacy_not_a_lock: the bytes at 0x[0-9a-f]* in liblegacy_test.so are not a mutex (it has robust-list links"; do
        [ "$(grep -c "^${M}FSAFE_LOCKS: $m" "$tmp/err")" = 1 ] || fail "not one line: $m"
    done
    # A library not loaded (yet) is waited for quietly: plugins load later.
    [ "$(grep -c "FSAFE_LOCKS" "$tmp/err")" = 7 ] || fail "expected exactly 7 FSAFE_LOCKS lines"
    grep -q "stats for .*; 1 locks registered" "$tmp/err" || fail "the good entry was not registered"
    ;;
offset) # a lock inside an object: the object itself is refused, symbol+OFFSET is not
    "$run" --no-auto -v --locks='legacy_registry@liblegacy_test.so,legacy_registry+0@liblegacy_test.so' \
        --locks='legacy_registry+0x30@liblegacy_test.so:mutex:5,legacy_lock:mutex:10' \
        "$prog" ok >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    grep -q "^${M}FSAFE_LOCKS: legacy_registry@liblegacy_test.so: the object is 88 bytes, larger than a mutex (40)" "$tmp/err" ||
        fail "the whole object was not refused by its size"
    grep -q "^${M}FSAFE_LOCKS: legacy_registry+0@liblegacy_test.so: the bytes at 0x[0-9a-f]* in liblegacy_test.so are not a mutex" "$tmp/err" ||
        fail "the object's first bytes were not refused as a mutex"
    grep -q "^${M}FSAFE_LOCKS: registered 'legacy_registry+48' (mutex, rank 5)" "$tmp/err" ||
        fail "the member lock was not registered"
    ;;
*) fail "unknown case $1" ;;
esac
ok "$1: $(tail -1 "$tmp/out")"
