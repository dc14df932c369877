#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks that a shared library uses fsafe optionally: fsafe_register_lock is a
# weak undefined dynamic symbol, and libfsafe is not among its DT_NEEDED.
lib=$1
[ -f "$lib" ] || { echo "FAIL: no such file: $lib" >&2; exit 1; }
syms=$(readelf --dyn-syms -W "$lib") || exit 1
echo "$syms" | grep -E ' WEAK +DEFAULT +UND fsafe_register_lock$' ||
    { echo "FAIL: $lib has no weak undefined fsafe_register_lock" >&2; exit 1; }
if echo "$syms" | grep -E ' GLOBAL +DEFAULT +UND fsafe_'; then
    echo "FAIL: $lib has a strong reference to fsafe (above)" >&2
    exit 1
fi
needed=$(readelf -d -W "$lib" | grep NEEDED)
echo "$needed"
if echo "$needed" | grep -q libfsafe; then
    echo "FAIL: $lib has DT_NEEDED on libfsafe" >&2
    exit 1
fi
exit 0
