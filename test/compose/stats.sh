#!/bin/sh
# SPDX-License-Identifier: MIT
# fsafe-run -s on the atfork case: the report counts the mutexes handed over
# to the library's prepare handler and auto mode's share of the fork's wait.
#   stats.sh FSAFE_RUN TEST_COMPOSE
set -u
out=$("$1" -s "$2" atfork_cond_reinit ok 2>&1) || { echo "FAIL: status $?: $out"; exit 1; }
echo "$out"
echo "$out" | grep -Eq 'stats for test_compose: 10 forks .* the wait before the real fork took [0-9]+\.[0-9]{3} ms in total' ||
  { echo "FAIL: no summary line"; exit 1; }
echo "$out" | grep -Eq "auto mode: of that wait, other threads' locks took [0-9]+\.[0-9]{3} ms in total, [0-9]+\.[0-9]{3} ms at most; [1-9][0-9]* mutex(es)? handed over" ||
  { echo "FAIL: no hand-over counted"; exit 1; }
