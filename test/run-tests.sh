#!/bin/sh
# SPDX-License-Identifier: MIT
# Sets up a fresh Debian 12 machine, builds fsafe and runs the full test suite.
#   test/run-tests.sh            the suite (what CI runs)
#   test/run-tests.sh --long     the same with the long stress run
# The suite runs four times: the plain build (everything, with the stress run
# and the spin model check), ASan+UBSan (build-asan), ThreadSanitizer
# (build-tsan, minus the tests labelled no-tsan, see test/reliability.cmake)
# and the libFuzzer build (build-fuzz, clang: the fuzzers briefly).
set -eu
cd "$(dirname "$0")/.."
test/deps.sh
stress=60
san_stress=20
[ "${1:-}" = "--long" ] && stress=600 && san_stress=300
jobs=$(nproc)

build() { # build <dir> <target> <cmake options...>
  dir=$1
  target=$2
  shift 2
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" --target "$target" >/dev/null
}

echo "== plain build"
build build all -DFSAFE_STRESS_SECONDS=$stress
ctest --test-dir build -j"$jobs" --output-on-failure

echo "== ASan+UBSan"
build build-asan all -DFSAFE_SANITIZE=address -DFSAFE_STRESS_SECONDS=$san_stress
# PRELOAD tests put the ASan runtime first in LD_PRELOAD themselves; the check
# is relaxed for wrappers (fsafe-run) that prepend libfsafe.so on their own.
ASAN_OPTIONS="verify_asan_link_order=0:${ASAN_OPTIONS:-}" \
  ctest --test-dir build-asan -j"$jobs" --output-on-failure -LE no-sanitize

echo "== ThreadSanitizer"
build build-tsan all -DFSAFE_SANITIZE=thread -DFSAFE_STRESS_SECONDS=$san_stress
# A forked child inherits the parent's threads as "leaked"; children of the
# stress run make no threads but TSan would kill them if they did.
TSAN_OPTIONS="report_thread_leaks=0:die_after_fork=0:${TSAN_OPTIONS:-}" \
  ctest --test-dir build-tsan -j"$jobs" --output-on-failure -LE "no-sanitize|no-tsan"

echo "== libFuzzer"
CC=clang build build-fuzz fsafe_fuzz_all -DFSAFE_SANITIZE=address -DFSAFE_FUZZ=ON -DFSAFE_BUILD_BENCH=OFF
ASAN_OPTIONS="verify_asan_link_order=0:${ASAN_OPTIONS:-}" \
  ctest --test-dir build-fuzz -j"$jobs" --output-on-failure -L fuzz
