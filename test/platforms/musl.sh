#!/bin/bash
# SPDX-License-Identifier: MIT
# fsafe's core built with musl (issue 28, part 4): configures this source tree
# with CC=musl-gcc (Debian's musl-tools) into a build directory of its own,
# builds libfsafe.so, libfsafe.a and the core tests, checks that they are musl
# programs, runs the chosen test areas with ctest and prints one line:
#   platform musl-1.2.3 (x86-64, core only): N passed, M failed, K skipped
# Auto mode and FSAFE_LOCKS are glibc-only and not part of this build.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: test/platforms/musl.sh [--build-dir DIR] [--areas LIST] [--jobs N] [--no-install] [--help]

Installs what is missing (apt-get, as root): musl-tools musl-dev, and the
Debian packages whose headers the musl build borrows (libatomic-ops-dev,
linux-libc-dev), cmake, make, pkg-config, gcc.  Makes a private prefix in
DIR/musl-prefix:
  include/atomic_ops.h, include/atomic_ops/   copied from libatomic-ops-dev:
      fsafe uses only its inline primitives (no AO_ symbol is linked; the
      script checks libfsafe.so for one), so the headers are all musl needs
  include/linux, include/asm, include/asm-generic   links to the kernel's
      UAPI headers (linux-libc-dev), which musl-gcc does not search
  lib/pkgconfig/atomic_ops.pc   for CMake's pkg_check_modules
Then a fresh build in DIR (RelWithDebInfo, FSAFE_BUILD_BENCH=OFF), checks on
what was built (program interpreter /lib/ld-musl-x86_64.so.1, libfsafe.so
needs only musl's libc.so, no libfsafe-auto.so), and ctest over the areas
(each test keeps the TIMEOUT test/*.cmake gives it).  Exit status 0 only if
the build and the checks passed and no test failed; 2 on bad usage.

  --build-dir DIR  where to build (default: build-musl in the source tree;
                   emptied first)
  --areas LIST     comma-separated test areas (default core):
                     core   core kinds misuse forkways onethread order static preload
                     churn  churn.*
                     fuzz   fuzz.*.corpus (the corpus replay; no libFuzzer)
  --jobs N         parallel build and ctest jobs (default 2)
  --no-install     do not run apt-get; fail if something is missing
  --help           this text
EOF
}

repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$repo/build-musl
areas=core
jobs=2
install=1
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir) build=${2:?--build-dir needs a directory}; shift 2 ;;
    --build-dir=*) build=${1#*=}; shift ;;
    --areas) areas=${2:?--areas needs a list}; shift 2 ;;
    --areas=*) areas=${1#*=}; shift ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
    --jobs=*) jobs=${1#*=}; shift ;;
    --no-install) install=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "musl.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case $jobs in ''|*[!0-9]*|0) echo "musl.sh: --jobs must be a positive number" >&2; exit 2 ;; esac
regex=""
for a in ${areas//,/ }; do
  case $a in
    core) r='^(core|kinds|misuse|forkways|onethread|order|static|preload)\.' ;;
    churn) r='^churn\.' ;;
    fuzz) r='^fuzz\.[a-z]*\.corpus$' ;;
    *) echo "musl.sh: unknown area '$a' (see --help)" >&2; exit 2 ;;
  esac
  regex=${regex:+$regex|}$r
done
[ -n "$regex" ] || { echo "musl.sh: no test area given" >&2; exit 2; }
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ "$(uname -m)" = x86_64 ] || { echo "musl.sh: written for x86-64 (/lib/ld-musl-x86_64.so.1)" >&2; exit 2; }

fail() { echo "musl.sh: $*" >&2; echo "platform musl (x86-64, core only): FAILED: $*"; exit 1; }

# ---- 1. packages ---------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
pkgs="musl-tools musl-dev libatomic-ops-dev linux-libc-dev cmake make pkg-config gcc"
missing=""
for p in $pkgs; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  [ "$install" = 1 ] || fail "missing packages:$missing"
  [ "$(id -u)" -eq 0 ] || fail "missing packages:$missing (run as root to install them)"
  echo "== installing$missing"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
ld_musl=/lib/ld-musl-x86_64.so.1
[ -x "$ld_musl" ] || fail "$ld_musl not found (musl)"
# The loader run by its own name prints "Version 1.2.3" (and exits 1).
musl_ver=$("$ld_musl" 2>&1 | awk '/^Version/ {print $2}' || true)
[ -n "$musl_ver" ] || musl_ver=$(dpkg-query -W -f '${Version}' musl 2>/dev/null | sed 's/-[^-]*$//')
label="platform musl-${musl_ver:-?} (x86-64, core only)"

# ---- 2. the private prefix ---------------------------------------------------------
rm -rf "$build"
prefix=$build/musl-prefix
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
cp -r /usr/include/atomic_ops.h /usr/include/atomic_ops "$prefix/include/"
ln -s /usr/include/linux "$prefix/include/linux"
ln -s /usr/include/asm-generic "$prefix/include/asm-generic"
ln -s "/usr/include/$(gcc -print-multiarch)/asm" "$prefix/include/asm"
ao_ver=$(dpkg-query -W -f '${Version}' libatomic-ops-dev | sed 's/-[^-]*$//')
cat >"$prefix/lib/pkgconfig/atomic_ops.pc" <<EOF
# libatomic_ops' headers for musl-gcc, copied from Debian's libatomic-ops-dev
# by test/platforms/musl.sh: fsafe uses only inline primitives, so no library.
prefix=$prefix
includedir=\${prefix}/include
Name: atomic_ops
Description: libatomic_ops headers (header-only use, for musl-gcc)
Version: $ao_ver
Cflags: -I\${includedir}
Libs:
EOF

# ---- 3. configure and build ---------------------------------------------------------
# PKG_CONFIG_LIBDIR: only the private prefix (glibc's .pc files, libelf's
# among them, are not for musl).  CMAKE_DISABLE_FIND_PACKAGE_Atomic_ops:
# Debian's CMake package of libatomic_ops links the glibc library.
echo "== configuring $repo with musl-gcc in $build (log: $build/build.log)"
t0=$(date +%s)
if ! CC=musl-gcc CFLAGS="-isystem $prefix/include" PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig \
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFSAFE_BUILD_BENCH=OFF \
    -DCMAKE_DISABLE_FIND_PACKAGE_Atomic_ops=ON >"$build/build.log" 2>&1; then
  tail -n 20 "$build/build.log" >&2
  fail "cmake could not configure (log: $build/build.log)"
fi
grep '^fsafe: ' "$build/build.log" || true
echo "== building"
build_ok=1
cmake --build "$build" -j"$jobs" -- -k >>"$build/build.log" 2>&1 || build_ok=0
t_build=$(($(date +%s) - t0))
warnings=$(grep -c 'warning:' "$build/build.log" || true)
if [ "$build_ok" = 0 ]; then
  grep -E 'error:' "$build/build.log" | sort -u | head -n 20 >&2
fi

# ---- 4. what was built is musl's ---------------------------------------------------
checks_ok=1
check() { # check DESCRIPTION COMMAND...: one line, ok or FAILED
  if "${@:2}"; then echo "   ok: $1"; else echo "   FAILED: $1"; checks_ok=0; fi
}
# (Outputs are read whole before grep -q, which may exit early: with pipefail
# the writer's SIGPIPE would fail a check that matched.)
interp_is_musl() { grep -qF "[Requesting program interpreter: $ld_musl]" <<<"$(readelf -l "$1" 2>/dev/null)"; }
needs_only_musl() { # every NEEDED entry is libfsafe's own or musl's libc.so
  local n
  n=$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | grep -v -e '^libc\.so$' -e '^libfsafe\.so\.' || true)
  [ -z "$n" ] || { echo "     $1 also needs: $n"; return 1; }
}
no_ao_symbols() { ! grep -q ' U AO_' <<<"$(nm -D "$1")"; }
loads_with_musl() { grep -qF "libfsafe.so.0 => $build/libfsafe.so.0" <<<"$("$ld_musl" --list "$1")"; }
echo "== checks"
check "libfsafe.so and libfsafe.a built" test -f "$build/libfsafe.so" -a -f "$build/libfsafe.a"
check "no libfsafe-auto.so in a core-only build" test ! -e "$build/libfsafe-auto.so"
if [ -f "$build/libfsafe.so" ]; then
  check "libfsafe.so needs musl's libc.so only" needs_only_musl "$build/libfsafe.so"
  check "libfsafe.so links no libatomic_ops symbol (headers only)" no_ao_symbols "$build/libfsafe.so"
fi
if [ -f "$build/test/test_kinds" ]; then
  check "test_kinds's interpreter is $ld_musl" interp_is_musl "$build/test/test_kinds"
  check "test_kinds needs musl's libc.so and libfsafe only" needs_only_musl "$build/test/test_kinds"
  check "$ld_musl --list test_kinds finds the built libfsafe.so" loads_with_musl "$build/test/test_kinds"
fi
[ -f "$build/test/test_static" ] &&
  check "test_static (libfsafe.a) is a musl program" interp_is_musl "$build/test/test_static"

# ---- 5. the tests --------------------------------------------------------------------
echo "== ctest -R '$regex' (log: $build/ctest.log)"
t0=$(date +%s)
(cd "$build" && ctest -j"$jobs" --output-on-failure -R "$regex") >"$build/ctest.log" 2>&1 || true
t_test=$(($(date +%s) - t0))
results=$(grep -E '^ *[0-9]+/[0-9]+ Test +#[0-9]+: ' "$build/ctest.log" || true)
passed=$(printf '%s\n' "$results" | grep -c ' Passed ' || true)
skipped=$(printf '%s\n' "$results" | grep -cE 'Skipped|Not Run \(Disabled\)' || true)
total=$(printf '%s\n' "$results" | grep -c 'Test' || true)
failed=$((total - passed - skipped))
if [ "$total" -eq 0 ]; then
  failed=1
  echo "musl.sh: no test ran (see $build/ctest.log)" >&2
fi
# (grep finds nothing when nothing was skipped or failed: not an error)
{ printf '%s\n' "$results" | grep -E 'Skipped' || true; } | sed 's/^.*Test *#[0-9]*: \([^ ]*\) .*$/  skipped: \1/'
{ printf '%s\n' "$results" | grep -vE ' Passed |Skipped|Not Run \(Disabled\)' || true; } |
  sed -n 's/^.*Test *#[0-9]*: \([^ ]*\) .*\*\*\*\(.*\)$/  failed: \1 (\2)/p' | sed 's/  *[0-9.]* sec)$/)/'
echo "   times: build ${t_build}s ($warnings warnings), tests ${t_test}s"
note=""
[ "$build_ok" = 1 ] || note="; the build FAILED in part (log: $build/build.log)"
[ "$checks_ok" = 1 ] || note="$note; a check on the built files FAILED"
echo "$label: $passed passed, $failed failed, $skipped skipped$note"
[ "$failed" -eq 0 ] && [ "$build_ok" = 1 ] && [ "$checks_ok" = 1 ]
