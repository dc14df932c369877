#!/bin/sh
# SPDX-License-Identifier: MIT
# FSAFE_LOCKS entries for libraries loaded after start-up (dlopen):
#   later.sh FSAFE_RUN BINDIR dlclose PLUGIN
#   later.sh FSAFE_RUN BINDIR chained PLUGIN OTHER_HOOKS_LIB
#   later.sh FSAFE_RUN BINDIR no-reader PLUGIN
#   later.sh FSAFE_RUN BINDIR python-without|python-bare|python-library MODULE PYTHON
. "$(dirname "$0")/lib.sh"
case $1 in
dlclose)
    "$run" --no-auto --locks=plugin_lock@libfsafe_plugin_test.so "$bin/test_dropin_dlclose" "$2" \
        >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    [ ! -s "$tmp/err" ] || fail "unexpected messages"
    ;;
no-reader) # libfsafe.so without libfsafe-elf.so: FSAFE_LOCKS ignored, one line,
    # and nothing for libraries loaded later either (the dlopen hooks stay off)
    lib=$(sed -n "s/^lib='\(.*\)'$/\1/p" "$run")
    LD_PRELOAD=$lib FSAFE_LOCKS=plugin_lock@libfsafe_plugin_test.so \
        "$bin/test_dropin_dlclose" "$2" none >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    [ "$(wc -l <"$tmp/err")" = 1 ] &&
        grep -q "^${M}FSAFE_LOCKS is read by libfsafe-elf.so, which is not loaded: ignored" "$tmp/err" ||
        fail "expected exactly the line saying the reader is not loaded"
    ;;
chained) # another library's dlopen/dlclose hooks call fsafe's through RTLD_NEXT
    lib=$(sed -n "s/^lib='\(.*\)'$/\1/p" "$run")
    elf_lib=$(sed -n "s/^elf_lib='\(.*\)'$/\1/p" "$run")
    LD_PRELOAD="$3 $elf_lib $lib" FSAFE_LOCKS=plugin_lock@libfsafe_plugin_test.so \
        "$bin/test_dropin_dlclose" "$2" >"$tmp/out" 2>"$tmp/err" || fail "status $?"
    grep -q "chained dlopen/dlclose calls: [1-9]" "$tmp/out" || fail "the other hooks were not in the chain"
    ;;
python-*)
    mod=$2 py=$3
    dir=$(dirname "$mod")
    case $1 in
    python-without) "$run" --no-auto "$py" "$src/pyext/later.py" "$dir" hang >"$tmp/out" 2>"$tmp/err" ;;
    python-bare) # not found at start-up (one line says so), found at the import
        "$run" --no-auto --locks=lockext_mutex "$py" "$src/pyext/later.py" "$dir" ok >"$tmp/out" 2>"$tmp/err"
        ;;
    python-library) # waits quietly for the module to be loaded
        "$run" --no-auto --locks="lockext_mutex@$(basename "$mod"):mutex:5" "$py" "$src/pyext/later.py" \
            "$dir" ok >"$tmp/out" 2>"$tmp/err"
        ;;
    esac
    st=$?
    interp_own "$tmp/err"
    [ $st = 0 ] || fail "status $st"
    case $1 in
    python-bare) [ "$(grep -c "lockext_mutex: symbol not found in the program" "$tmp/err")" = 1 ] &&
        [ "$(wc -l <"$tmp/err")" = 1 ] || fail "expected exactly one message" ;;
    *) [ ! -s "$tmp/err" ] || fail "unexpected messages" ;;
    esac
    ;;
*) fail "unknown case $1" ;;
esac
ok "$1: $(tail -1 "$tmp/out")"
