#!/bin/sh
# SPDX-License-Identifier: MIT
# Sets up a fresh Debian 12 machine, builds fsafe and runs the full test suite.
#   test/run-tests.sh            the suite (what CI runs)
#   test/run-tests.sh --long     the same with the long stress run
set -eu
cd "$(dirname "$0")/.."
test/deps.sh
stress=60
[ "${1:-}" = "--long" ] && stress=600
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFSAFE_STRESS_SECONDS=$stress >/dev/null
cmake --build build -j"$jobs" >/dev/null
ctest --test-dir build -j"$jobs" --output-on-failure
