#!/bin/sh
# SPDX-License-Identifier: MIT
# A forked child's page faults do not grow with the threads the process has
# had (issue 25): after 1000 threads have come and gone, a child under auto
# mode faults at most 10 pages more than a child without fsafe.  Before, auto
# mode's child handler wrote every per-thread record ever made (about 420
# faults more).
#   child_history.sh CHILD_COST AUTO_LIB LIB
set -u
bench=$1 auto=$2 lib=$3
plain=$("$bench" --worker 1000 20) || { echo "FAIL: the plain worker failed"; exit 1; }
fsafe=$(LD_PRELOAD="$auto:$lib" "$bench" --worker 1000 20) || { echo "FAIL: the auto worker failed"; exit 1; }
p=${plain%%.*} f=${fsafe%%.*}
echo "child faults after 1000 threads: plain $p, auto mode $f"
[ "$f" -le $((p + 10)) ] || { echo "FAIL: auto mode's child faulted $f pages against $p plain"; exit 1; }
