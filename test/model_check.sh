#!/bin/sh
# SPDX-License-Identifier: MIT
# Model check of the registry protocol (doc/model/registry.pml) with spin: the model
# must verify with no errors, and each seeded bug must be caught.
#   model_check.sh <registry.pml> <work dir> [extra spin -D options]
set -eu
model=$1
work=$2
shift 2
command -v spin >/dev/null || { echo "spin is not installed (test/deps.sh installs it)"; exit 1; }
mkdir -p "$work"
cd "$work"

check() { # check <expect: ok|error> <spin -D options...>
  expect=$1
  shift
  rm -f pan pan.* ./*.trail
  spin "$@" -a "$model" >spin.log 2>&1 || { cat spin.log; exit 1; }
  gcc -O2 -DSAFETY -DCOLLAPSE -w -o pan pan.c
  ./pan -m100000 >pan.log 2>&1 || true
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.log)
  states=$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' pan.log)
  what=$(grep -E '^pan:[0-9]+:' pan.log | head -1 || true)
  echo "model ${*:-(as in the code)}: $states states, $errors errors ${what:+($what)}"
  if [ "$expect" = ok ] && [ "$errors" != 0 ]; then
    cat pan.log
    spin -t -p "$@" "$model" | tail -60
    exit 1
  fi
  if [ "$expect" = error ] && [ "$errors" = 0 ]; then
    echo "the seeded bug $* was NOT caught"
    exit 1
  fi
  grep -q "search depth too small" pan.log && { echo "depth limit hit"; exit 1; } || true
}

check ok "$@"
check error -DBUG_NO_PENDING_WAIT
check error -DBUG_NO_POLL
check error -DBUG_WAIT_HOLDING_MUTEX
check error -DBUG_ABORT_KEEPS_LOCKS
check error -DBUG_ACK_BEFORE_RELEASE
check error -DBUG_NO_REBUILD
check error -DBUG_NO_ORDER_BACKOFF
echo ok
