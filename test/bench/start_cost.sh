#!/bin/sh
# SPDX-License-Identifier: MIT
# start_cost.sh: what starting a process costs under each way fsafe-run starts
# it (issue 26), in instructions counted by callgrind (repeatable on a shared
# machine): COMMAND (default /bin/true) plain, with EMPTY_LIB preloaded (what
# any preload costs), under fsafe-run (auto mode), FSAFE_AUTO=0 fsafe-run
# (both libraries preloaded, auto mode off), fsafe-run --no-auto, and
# fsafe-run --locks with one entry: pinned to a library that is not loaded
# (the symbol reader, libfsafe-elf.so, is loaded but reads no file) and bare
# (the reader reads every loaded object's symbol tables).  fsafe-run sets the
# environment and execs valgrind, which runs COMMAND in it.  Prints a line per
# variant, then one summary line; judges nothing.
#   start_cost.sh FSAFE_RUN EMPTY_LIB [COMMAND [ARG]...]
set -eu
[ $# -ge 2 ] || { echo "usage: $0 FSAFE_RUN EMPTY_LIB [COMMAND [ARG]...]" >&2; exit 2; }
run=$1 empty=$2
shift 2
[ $# -gt 0 ] || set -- /bin/true
command -v valgrind >/dev/null || { echo "start_cost: valgrind not found" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for v in $(env | sed -n 's/^\(FSAFE_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset LD_PRELOAD

# count NAME PREFIX COMMAND...: instructions of COMMAND run as PREFIX valgrind
# ... COMMAND (PREFIX: words without blanks, split here; fsafe-run's library
# paths have none).
count() {
    name=$1 prefix=$2
    shift 2
    # shellcheck disable=SC2086
    $prefix valgrind --tool=callgrind --log-file=/dev/null \
        --callgrind-out-file="$tmp/$name.out" "$@" >/dev/null 2>"$tmp/$name.err" ||
        { echo "start_cost: $name: status $?" >&2; cat "$tmp/$name.err" >&2; exit 1; }
    sed -n 's/^summary: //p; s/^totals: //p' "$tmp/$name.out" | tail -n 1
}

plain=$(count plain "" "$@")
emptyc=$(count empty "env LD_PRELOAD=$empty" "$@")
auto=$(count auto "$run" "$@")
auto0=$(count auto0 "env FSAFE_AUTO=0 $run" "$@")
noauto=$(count no-auto "$run --no-auto" "$@")
pinned=$(count locks-pinned "$run --locks=fsafe_bench_lock@libfsafe-bench-absent.so" "$@")
bare=$(count locks-bare "$run --locks=fsafe_bench_lock" "$@")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-34s %10s %s\n' "variant ($*)" instructions "x empty"
printf '%-34s %10s %s\n' plain "$plain" "$(ratio "$plain" "$emptyc")"
printf '%-34s %10s %s\n' "empty preload" "$emptyc" 1.00
printf '%-34s %10s %s\n' "fsafe-run (auto)" "$auto" "$(ratio "$auto" "$emptyc")"
printf '%-34s %10s %s\n' "FSAFE_AUTO=0 fsafe-run" "$auto0" "$(ratio "$auto0" "$emptyc")"
printf '%-34s %10s %s\n' "fsafe-run --no-auto" "$noauto" "$(ratio "$noauto" "$emptyc")"
printf '%-34s %10s %s\n' "fsafe-run --locks=SYM@absent.so" "$pinned" "$(ratio "$pinned" "$emptyc")"
printf '%-34s %10s %s\n' "fsafe-run --locks=SYM (bare)" "$bare" "$(ratio "$bare" "$emptyc")"
echo "start_cost: $* under fsafe-run: $auto instructions, x$(ratio "$auto" "$emptyc") of an empty preload ($emptyc), plain $plain"
