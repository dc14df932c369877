#!/bin/sh
# SPDX-License-Identifier: MIT
# ns per uncontended threading.Lock acquire+release (CPython 3.11: sem_trywait
# + sem_post) and per "with lock:" block, plainly and under fsafe-run (auto
# mode), in interleaved fresh processes; prints the medians (thread CPU time)
# and the ratio.  Judges nothing.
#   test/bench/sem-python.sh BUILD/fsafe-run [ROUNDS]
run=${1:?usage: $0 FSAFE-RUN [ROUNDS]}
rounds=${2:-7}
py=${PYTHON:-/usr/bin/python3}
prog='
import threading, time
l = threading.Lock()
n = 2000000
acq, rel = l.acquire, l.release
for _ in range(n // 10):
    acq(); rel()
t0 = time.thread_time_ns()
for _ in range(n):
    acq(); rel()
t1 = time.thread_time_ns()
for _ in range(n):
    with l:
        pass
t2 = time.thread_time_ns()
e0 = time.thread_time_ns()
for _ in range(n):
    pass
e1 = time.thread_time_ns()
print((t1 - t0 - (e1 - e0)) / n, (t2 - t1 - (e1 - e0)) / n)
'
tmp=$(mktemp -d) || exit 1
i=0
while [ $i -lt "$rounds" ]; do
    $py -c "$prog" >>"$tmp/plain" || exit 1
    "$run" $py -c "$prog" >>"$tmp/auto" || exit 1
    i=$((i + 1))
done
median() { # file column
    cut -d' ' -f"$2" "$1" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
printf '%-26s %10s %10s %7s  (median of %d rounds, loop overhead subtracted)\n' python plain_ns auto_ns ratio "$rounds"
for c in 1 2; do
    p=$(median "$tmp/plain" $c)
    a=$(median "$tmp/auto" $c)
    [ $c = 1 ] && what="lock.acquire()+release()" || what="with lock: pass"
    awk -v w="$what" -v p="$p" -v a="$a" 'BEGIN { printf "%-26s %10.1f %10.1f %6.2fx\n", w, p, a, a / p }'
done
rm -rf "$tmp"
