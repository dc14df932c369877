#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks what `cmake --install` put under PREFIX: every file fsafe promises.
#   check-install.sh PREFIX LIBDIR INCLUDEDIR BINDIR MANDIR with-fsafe-run|no-fsafe-run
#                    [with-elf|no-elf]
# with-elf: the build has FSAFE_LOCKS, whose symbol reader libfsafe-elf.so
# must be installed beside libfsafe.so (fsafe-run and libfsafe.so look there).
prefix=$1 libdir=$1/$2 incdir=$1/$3 bindir=$1/$4 mandir=$1/$5 run=$6 elf=${7:-no-elf}
bad=0
need() {
    if [ -e "$1" ]; then echo "ok      $1"; else echo "MISSING $1" >&2; bad=1; fi
}
need "$incdir/fsafe.h"
need "$libdir/libfsafe.so"
need "$libdir/libfsafe.so.0"
need "$libdir/libfsafe.a"
need "$libdir/pkgconfig/fsafe.pc"
need "$libdir/cmake/fsafe/fsafeConfig.cmake"
need "$libdir/cmake/fsafe/fsafeConfigVersion.cmake"
need "$libdir/cmake/fsafe/fsafeTargets.cmake"
need "$mandir/man3/fsafe.3"
need "$mandir/man1/fsafe-run.1"
[ "$run" = with-fsafe-run ] && need "$bindir/fsafe-run"
soname=$(readelf -d "$libdir/libfsafe.so.0" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libfsafe.so.0 ] || { echo "FAIL: SONAME is '$soname'" >&2; bad=1; }
if [ "$elf" = with-elf ]; then
    need "$libdir/libfsafe-elf.so.0"
    need "$libdir/libfsafe-elf.so"
    soname=$(readelf -d "$libdir/libfsafe-elf.so.0" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    [ "$soname" = libfsafe-elf.so.0 ] || { echo "FAIL: libfsafe-elf's SONAME is '$soname'" >&2; bad=1; }
fi
# libfsafe.so.0 itself never loads libelf (issue 26): the reader does.
needed=$(readelf -d "$libdir/libfsafe.so.0" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || { echo "FAIL: no NEEDED entries read from libfsafe.so.0" >&2; bad=1; }
case " $(echo $needed) " in
*" libelf.so"* | *" libz.so"*) echo "FAIL: libfsafe.so.0 needs libelf or libz: $needed" >&2; bad=1 ;;
esac
# The man pages must render without warnings.
for m in "$mandir/man3/fsafe.3" "$mandir/man1/fsafe-run.1"; do
    w=$(groff -man -Tutf8 -ww "$m" 2>&1 >/dev/null)
    [ -z "$w" ] || { echo "FAIL: $m: $w" >&2; bad=1; }
done
exit $bad
