#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds examples/consumer out of tree against an installed fsafe and runs it.
#   consumer.sh cmake|pkg-config shared|static PREFIX LIBDIR SRCDIR WORKDIR CC CMAKE
# (LIBDIR: where under PREFIX the libraries are, CMAKE_INSTALL_LIBDIR.)
# The consumer registers a lock, forks while a thread holds it, and checks
# every child; for the shared library it must be the one under PREFIX.
set -eu
how=$1 link=$2 prefix=$3 libdir=$3/$4 src=$5 work=$6 cc=$7 cmake=$8
rm -rf "$work"
mkdir -p "$work"
case $how in
cmake)
    static=OFF
    [ "$link" = static ] && static=ON
    "$cmake" -S "$src" -B "$work" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
        -DCONSUMER_STATIC=$static >"$work/configure.log" 2>&1 ||
        { cat "$work/configure.log"; exit 1; }
    "$cmake" --build "$work" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
    ;;
pkg-config)
    export PKG_CONFIG_PATH="$libdir/pkgconfig"
    pkg-config --exists --print-errors fsafe
    if [ "$link" = static ]; then
        # A fully static program: Libs.private must carry what libfsafe.a needs.
        # Some systems' libelf.a cannot be linked statically at all (elfutils
        # 0.192, Debian 13: elf_begin.o needs eu_search_tree_init, which no
        # installed archive defines; sourceware bug 32293): then there is
        # nothing of fsafe's to test, and the test says so and is skipped.
        # shellcheck disable=SC2046
        if pkg-config --static --libs fsafe | grep -q -- '-lelf' &&
            ! printf '#include <libelf.h>\nint main(void){return elf_end(elf_begin(-1, ELF_C_READ, 0));}\n' |
                "$cc" -x c -o "$work/elf-probe" - -static $(pkg-config --static --cflags --libs libelf) \
                    >"$work/elf-probe.log" 2>&1; then
            echo "SKIP: this system's libelf.a does not link statically by itself:" >&2
            grep -m2 'undefined reference' "$work/elf-probe.log" >&2 || tail -n 2 "$work/elf-probe.log" >&2
            exit 77
        fi
        # shellcheck disable=SC2046
        "$cc" -o "$work/fsafe-consumer" -DCONSUMER_STATIC "$src/consumer.c" -static \
            $(pkg-config --static --cflags --libs fsafe)
    else
        # shellcheck disable=SC2046
        # -ldl, -pthread: the consumer itself calls dladdr and pthread_create,
        # in libdl and libpthread before glibc 2.34 (Debian 11).
        "$cc" -o "$work/fsafe-consumer" "$src/consumer.c" $(pkg-config --cflags --libs fsafe) \
            -Wl,-rpath,"$(pkg-config --variable=libdir fsafe)" -ldl -pthread
    fi
    ;;
*) echo "usage: $0 cmake|pkg-config shared|static PREFIX LIBDIR SRCDIR WORKDIR CC CMAKE" >&2; exit 2 ;;
esac
out=$("$work/fsafe-consumer")
echo "$out"
if [ "$link" = shared ]; then
    # The library that ran must be the installed one, not the build tree's.
    used=$(echo "$out" | sed -n 's/.* from \(.*\): .*/\1/p')
    [ -n "$used" ] && [ "$(realpath "$used")" = "$(realpath "$libdir/libfsafe.so.0")" ] ||
        { echo "FAIL: the consumer used '$used', not $libdir/libfsafe.so.0" >&2; exit 1; }
fi
