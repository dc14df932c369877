#!/bin/sh
# SPDX-License-Identifier: MIT
# soak-compare.sh [-s SECONDS] [-a AUDIT_PATCH] OLD [NEW]
# Runs the auto-mode soak (test_auto_stress --soak) of two commits side by
# side, at the same time and on the same machine, with one test binary (NEW's),
# so that their bad children per fork can be compared (issue soak36).  Each
# commit is built once in a worktree under ${SOAK_DIR:-/tmp/fsafe-soak-compare}
# (only libfsafe.so, libfsafe-auto.so and test_auto_stress, -j2); NEW defaults
# to HEAD.  Both soaks run under `nice -n 19`, one process per build, with
# FSAFE_AUTO_WAIT_MS=5000 and --tolerate-per-10k 5 (a soak's own pass/fail is
# not the point: its counts are).  -a applies a patch to NEW's worktree first
# (test/soak-audit.patch: the debug build that writes what the fork saw).
# Prints each run's last lines and one summary line; exits 0 when both ran.
set -eu

secs=600
patch=
while getopts s:a: opt; do
  case $opt in
  s) secs=$OPTARG ;;
  a) patch=$(realpath "$OPTARG") ;;
  *) echo "usage: $0 [-s SECONDS] [-a AUDIT_PATCH] OLD [NEW]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-s SECONDS] [-a AUDIT_PATCH] OLD [NEW]" >&2; exit 2; }
src=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
old=$(git -C "$src" rev-parse --short "$1")
new=$(git -C "$src" rev-parse --short "${2:-HEAD}")
dir=${SOAK_DIR:-/tmp/fsafe-soak-compare}
mkdir -p "$dir"

# build COMMIT [PATCH]: the worktree's build directory, built if needed.
build() {
  wt=$dir/$1${2:+-audit}
  if [ ! -d "$wt" ]; then
    git -C "$src" worktree add -q --detach "$wt" "$1"
    [ -z "${2:-}" ] || git -C "$wt" apply "$2"
  fi
  flags=
  [ -z "${2:-}" ] || flags=-DFSAFE_SOAK36_AUDIT
  cmake -S "$wt" -B "$wt/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="$flags" \
    >"$dir/$1-cmake.log" 2>&1
  cmake --build "$wt/build" -j2 --target fsafe_shared fsafe_auto test_auto_stress \
    >"$dir/$1-build.log" 2>&1 || { echo "FAIL: build of $1 (see $dir/$1-build.log)" >&2; exit 1; }
  echo "$wt/build"
}

bold=$(build "$old")
bnew=$(build "$new" "$patch")
test_bin=$bnew/test/test_auto_stress

# run NAME BUILDDIR: one soak in the background, its output in $dir/NAME.out.
run() {
  LD_PRELOAD="$2/libfsafe-auto.so.0.1.0:$2/libfsafe.so.0.1.0" FSAFE_AUTO_WAIT_MS=5000 \
    nice -n 19 "$test_bin" "$secs" --soak --tolerate-per-10k 5 >"$dir/$1.out" 2>&1 &
}
run "old-$old" "$bold"
p1=$!
run "new-$new" "$bnew"
p2=$!
wait $p1 || true
wait $p2 || true

# counts NAME: "FORKS BAD" from the soak's report line ("...: N forks (...), H hung, F failed").
counts() {
  line=$(grep -E '^(ok|FAIL):.* forks \(main' "$dir/$1.out" | tail -1)
  [ -n "$line" ] || { echo "? ?"; return; }
  echo "$line" | sed -E 's/^[^:]*: [0-9]+ s: ([0-9]+) forks .*, ([0-9]+) hung, ([0-9]+) failed.*/\1 \2 \3/' |
    awk '{print $1, $2 + $3}'
}
for n in "old-$old" "new-$new"; do
  echo "--- $n"
  grep -E '^(ok|FAIL|bad child|first bad)' "$dir/$n.out" | tail -25 || true
done
# shellcheck disable=SC2046 # (split on purpose: four numbers)
set -- $(counts "old-$old") $(counts "new-$new")
echo "soak-compare ($secs s each, side by side): $old $1 forks, $2 bad; $new $3 forks, $4 bad"
