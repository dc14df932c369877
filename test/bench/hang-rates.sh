#!/bin/sh
# SPDX-License-Identifier: MIT
# Hang rates of forked children on a lock built from a flag, a mutex and a
# condition variable (issue 22), without fsafe and under fsafe-run, taking
# turns in rounds so that both see the same machine load:
#   hang-rates.sh FSAFE_RUN HANG_RATE [ROUNDS [FORKS_PER_ROUND [WORKLOADS]]]
# WORKLOADS: "flag xml" by default (xml needs hang_rate built with libxml2).
# Extra runners to compare (an older build's fsafe-run, say) go in
# HANG_RATES_ALSO="name=/path/to/fsafe-run ...".  Prints one line per
# workload and runner: hung children, forks, and the rate.
set -eu
run=$1 prog=$2 rounds=${3:-8} per=${4:-50} workloads=${5:-flag xml}
for w in $workloads; do
  runners="plain=: fsafe-run=$run ${HANG_RATES_ALSO:-}"
  for r in $runners; do eval "hung_${r%%=*}=0" 2>/dev/null || true; done
  tot_plain=0
  i=0
  set --
  sums=""
  while [ $i -lt "$rounds" ]; do
    for r in $runners; do
      name=${r%%=*} path=${r#*=}
      st=0
      if [ "$path" = : ]; then out=$("$prog" "$w" "$per") || st=$?; else out=$("$path" "$prog" "$w" "$per") || st=$?; fi
      [ "$st" -eq 0 ] || { echo "hang-rates.sh: $w under $name: hang_rate exited with status $st" >&2; exit 1; }
      h=$(echo "$out" | sed -n 's/^hung \([0-9]*\) of .*/\1/p')
      [ -n "$h" ] || { echo "hang-rates.sh: no result from $name: $out" >&2; exit 1; }
      key=$(echo "$name" | tr -c 'a-zA-Z0-9\n' _)
      eval "h_$key=\$(( \${h_$key:-0} + h ))"
    done
    i=$((i + 1))
  done
  n=$((rounds * per))
  for r in $runners; do
    name=${r%%=*}
    key=$(echo "$name" | tr -c 'a-zA-Z0-9\n' _)
    eval "h=\${h_$key}"
    eval "unset h_$key"
    awk -v w="$w" -v nm="$name" -v h="$h" -v n="$n" \
      'BEGIN { printf "%-5s %-14s hung %4d of %4d  (%.1f%%)\n", w, nm, h, n, 100 * h / n }'
  done
done
