#!/bin/sh
# SPDX-License-Identifier: MIT
# A forked child's page faults do not grow with the threads the process has
# had (issue 25).  Before, auto mode's child handler wrote every per-thread
# record ever made: after 1000 threads about 420 faults more.  Measured as
# growth: the child's faults after 1000 threads have come and gone minus
# after none, under auto mode and without fsafe; auto mode's growth may
# exceed plain's by at most 5 pages.  (Auto mode's fixed cost, the pages
# its child handler writes whatever the history, about 9 on Debian 12, is
# printed, not judged: it moves with the library's layout.)
#   child_history.sh CHILD_COST AUTO_LIB LIB
set -u
bench=$1 auto=$2 lib=$3
faults() { # THREADS [PRELOAD]: the child's faults (the worker's first figure)
    out=$(LD_PRELOAD=${2:-} "$bench" --worker "$1" 20) || { echo "FAIL: the worker ($1 threads, preload '${2:-}') failed"; exit 1; }
    echo "${out%%.*}"
}
p0=$(faults 0) p1=$(faults 1000) f0=$(faults 0 "$auto:$lib") f1=$(faults 1000 "$auto:$lib")
echo "child faults, no thread history / 1000 threads come and gone: plain $p0 / $p1, auto mode $f0 / $f1"
echo "growth: plain $((p1 - p0)), auto mode $((f1 - f0)); auto mode's fixed cost $((f0 - p0)) pages"
[ $((f1 - f0)) -le $((p1 - p0 + 5)) ] ||
    { echo "FAIL: auto mode's child faults grew by $((f1 - f0)) pages with the thread history, plain by $((p1 - p0))"; exit 1; }
