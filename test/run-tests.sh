#!/bin/sh
# SPDX-License-Identifier: MIT
# Sets up a fresh Debian 12 machine, builds fsafe and runs the full test suite.
#   test/run-tests.sh            the suite (what CI runs)
#   test/run-tests.sh --long     the same with the long stress run
# The suite runs four times: the plain build (everything, with the stress run
# and the spin model check), ASan+UBSan (build-asan), ThreadSanitizer
# (build-tsan, minus the tests labelled no-tsan, see test/reliability.cmake)
# and the libFuzzer build (build-fuzz, clang: the fuzzers briefly).
# A failure does not stop the run: the last line counts passed, failed and
# skipped tests over all four builds, and the exit status is 1 if anything
# failed (a test, or a build, whose tests then count as not run).
set -eu
cd "$(dirname "$0")/.."
test/deps.sh
stress=30
soak=40
san_stress=10
[ "${1:-}" = "--long" ] && stress=600 && soak=600 && san_stress=300
jobs=$(nproc)

passed=0 failed=0 skipped=0 broken=""
build() { # build <dir> <target> <cmake options...>
  dir=$1
  target=$2
  shift 2
  rm -f "$dir/junit.xml"
  if cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null &&
     cmake --build "$dir" -j"$jobs" --target "$target" >/dev/null; then
    return 0
  fi
  echo "FAILED: the build in $dir" >&2
  broken="$broken $dir"
  return 1
}
# ctest_in <dir> <ctest options...>: runs the tests, writing CTest's JUnit
# report, and adds its counts to the totals (skipped: SKIP_RETURN_CODE 77,
# or not run).
ctest_in() {
  dir=$1
  shift
  ctest --test-dir "$dir" --output-junit "$PWD/$dir/junit.xml" "$@" || true
  attr() { sed -n "s/^[[:space:]]*$1=\"\([0-9]*\)\".*/\1/p" "$dir/junit.xml" | head -n 1; }
  if [ ! -s "$dir/junit.xml" ]; then
    echo "FAILED: no test report from $dir" >&2
    broken="$broken $dir"
    return
  fi
  t=$(attr tests) f=$(attr failures) s=$(attr skipped) d=$(attr disabled)
  t=${t:-0} f=${f:-0} s=${s:-0} d=${d:-0}
  passed=$((passed + t - f - s - d))
  failed=$((failed + f))
  skipped=$((skipped + s + d))
}

echo "== plain build"
build build all -DFSAFE_STRESS_SECONDS=$stress -DFSAFE_SOAK_SECONDS=$soak &&
  ctest_in build -j"$jobs" --output-on-failure

echo "== ASan+UBSan"
# PRELOAD tests put the ASan runtime first in LD_PRELOAD themselves; the check
# is relaxed for wrappers (fsafe-run) that prepend libfsafe.so on their own.
# (Exported here: the plain build has run; the fuzz build needs the same.)
export ASAN_OPTIONS="verify_asan_link_order=0:${ASAN_OPTIONS:-}"
build build-asan all -DFSAFE_SANITIZE=address -DFSAFE_STRESS_SECONDS=$san_stress -DFSAFE_SOAK_SECONDS=$san_stress &&
  ctest_in build-asan -j"$jobs" --output-on-failure -LE no-sanitize

echo "== ThreadSanitizer"
# A forked child inherits the parent's threads as "leaked"; children of the
# stress run make no threads but TSan would kill them if they did.
export TSAN_OPTIONS="report_thread_leaks=0:die_after_fork=0:${TSAN_OPTIONS:-}"
build build-tsan all -DFSAFE_SANITIZE=thread -DFSAFE_STRESS_SECONDS=$san_stress -DFSAFE_SOAK_SECONDS=$san_stress &&
  ctest_in build-tsan -j"$jobs" --output-on-failure -LE "no-sanitize|no-tsan"

echo "== libFuzzer"
CC=clang build build-fuzz fsafe_fuzz_all -DFSAFE_SANITIZE=address -DFSAFE_FUZZ=ON -DFSAFE_BUILD_BENCH=OFF &&
  ctest_in build-fuzz -j"$jobs" --output-on-failure -L fuzz

echo "== all four builds: $passed passed, $failed failed, $skipped skipped${broken:+; FAILED builds:$broken}"
[ "$failed" -eq 0 ] && [ -z "$broken" ]
