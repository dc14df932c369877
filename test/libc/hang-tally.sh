#!/bin/sh
# SPDX-License-Identifier: MIT
# How many children of a glibc-lock family hang, without fsafe and with
# libfsafe-auto.so preloaded (FSAFE_AUTO_WAIT_MS=5000, as the libc.* tests):
# test_libc_locks FAMILY tally makes 20 forks while two threads call the
# family, 1.5 s per child.  Runs alternate plain and with, RUNS times each.
#   hang-tally.sh BUILD_DIR [RUNS [FAMILY ...]]
# Prints a line per family and run pair, then one summary line per family:
#   FAMILY  without: 6 13 9 of 20  with: 0 0 0 of 20
set -eu
build=$1
runs=${2:-3}
shift $(($# < 2 ? $# : 2))
prog=$build/test/test_libc_locks
lib=$build/libfsafe-auto.so
for f in "$prog" "$lib"; do
  [ -e "$f" ] || { echo "hang-tally.sh: $f not found (build first)" >&2; exit 2; }
done
[ $# -gt 0 ] || set -- schedparam pthread_kill printf_register bindresvport regexec readdir getopt

hung() { # the number of hung children from one tally run's output
  sed -n 's/^.*: tally: \([0-9]*\) of 20 children hung.*/\1/p' | tail -n 1
}

for fam in "$@"; do
  without="" with=""
  i=0
  while [ "$i" -lt "$runs" ]; do
    a=$("$prog" "$fam" tally | hung)
    b=$(FSAFE_AUTO_WAIT_MS=5000 LD_PRELOAD=$lib "$prog" "$fam" tally | hung)
    [ -n "$a" ] && [ -n "$b" ] || { echo "hang-tally.sh: $fam: no tally line" >&2; exit 1; }
    without="$without $a" with="$with $b"
    i=$((i + 1))
  done
  printf '%-16s without:%s of 20  with:%s of 20\n' "$fam" "$without" "$with"
done
