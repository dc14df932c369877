#!/bin/sh
# SPDX-License-Identifier: MIT
# redis-server, a real program that forks with threads running and has its
# own fork protocol (jemalloc's atfork handlers, its background threads'
# condition waits), answers after each of 5 BGSAVEs and writes its RDB file:
# plain, under fsafe-run --no-auto, and under fsafe-run (auto mode).  Before
# issue 22, auto mode hung it at the first BGSAVE.  On a Unix socket, bounded
# in time; a missing redis-server fails the test (install redis-server).
#   redis.sh plain|noauto|auto FSAFE_RUN
set -u
mode=$1 run=$2
fail() { echo "FAIL redis.$mode: $*"; [ -s "$tmp/log" ] && tail -n 20 "$tmp/log"; cleanup; exit 1; }
cleanup() {
  [ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "${pid2:-}" ] && kill -9 "$pid2" 2>/dev/null && wait "$pid2" 2>/dev/null
  rm -rf "$tmp"
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fsafe-redis.XXXXXX")
server=$(command -v redis-server) || fail "redis-server is not installed (Debian: redis-server)"
command -v redis-cli >/dev/null || fail "redis-cli is not installed (Debian: redis-tools)"
case $mode in
plain) wrap= ;;
noauto) wrap="$run --no-auto" ;;
auto) wrap="$run" ;;
*) fail "unknown mode" ;;
esac
cli() { timeout 5 redis-cli -s "$tmp/sock" "$@"; }
start() { # start <var> [wrapper...]
  $2 "$server" --port 0 --unixsocket "$tmp/sock" --dir "$tmp" --save '' --appendonly no \
    --daemonize no --logfile "$tmp/log" >"$tmp/out" 2>"$tmp/err" &
  eval "$1=\$!"
  i=0
  until [ "$(cli ping 2>/dev/null)" = PONG ]; do
    i=$((i + 1))
    [ $i -gt 100 ] && fail "the server did not answer PING within 10 s of its start"
    sleep 0.1
  done
}
start pid "$wrap"
# The threads that make the fork interesting: redis's bio threads and
# jemalloc's background thread (redis starts it when asked).
cli config set jemalloc-bg-thread yes >/dev/null
for n in 1 2 3 4 5; do
  cli set "key$n" "value$n" >/dev/null || fail "SET before BGSAVE $n: no answer"
  r=$(cli bgsave) || fail "BGSAVE $n: no answer"
  case $r in *started*) ;; *) fail "BGSAVE $n answered '$r'" ;; esac
  i=0
  while :; do
    info=$(cli info persistence) || fail "no answer after BGSAVE $n (INFO persistence timed out)"
    case $info in *"rdb_saves:$n"*"rdb_bgsave_in_progress:0"* | *"rdb_bgsave_in_progress:0"*"rdb_saves:$n"*) break ;; esac
    i=$((i + 1))
    [ $i -gt 100 ] && fail "BGSAVE $n did not finish within 10 s"
    sleep 0.1
  done
  case $info in *"rdb_last_bgsave_status:ok"*) ;; *) fail "BGSAVE $n failed: $info" ;; esac
  [ "$(cli ping)" = PONG ] || fail "no PONG after BGSAVE $n"
done
[ -s "$tmp/dump.rdb" ] || fail "no RDB file written"
[ -s "$tmp/err" ] && fail "the server wrote to stderr: $(head -c 300 "$tmp/err")"
cli shutdown nosave >/dev/null 2>&1
wait "$pid"
pid=
# The RDB file is whole: a plain server loads every key from it.
start pid2 ""
[ "$(cli get key5)" = value5 ] || fail "the RDB file written by the last BGSAVE lacks key5"
[ "$(cli dbsize)" = 5 ] || fail "the RDB file has $(cli dbsize) keys, expected 5"
cli shutdown nosave >/dev/null 2>&1
wait "$pid2"
pid2=
echo "redis.$mode: answered after 5 of 5 BGSAVEs; the RDB file has all 5 keys"
cleanup
