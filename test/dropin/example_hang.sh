#!/bin/sh
# SPDX-License-Identifier: MIT
# README's walkthrough, as a user runs it: examples/hang's children hang
# without fsafe (the program kills them after 2 s and exits 1), and under
# `fsafe-run -v` every child completes and each fork that waited names the
# lock (liblogq.so+0x...), its holder and where it was taken.
#   example_hang.sh FSAFE_RUN BINDIR HANG
. "$(dirname "$0")/lib.sh"
hang=$1
"$hang" >"$tmp/plain.out" 2>"$tmp/plain.err"
st=$?
[ $st = 1 ] || fail "without fsafe: exit status $st, expected 1 (children hung)"
# The flusher lets go of its lock 1 ms in every 21, so a plain fork can land
# in that gap now and then: the twin proves the hang with at least one child
# (and the summary line must agree with the per-child lines).
hung=$(count "hung on liblogq's lock" "$tmp/plain.out")
[ "$hung" -ge 1 ] || fail "without fsafe: no child hung"
grep -q "^$hung of 3 children hung\$" "$tmp/plain.out" || fail "without fsafe: summary disagrees"
"$run" -v "$hang" >"$tmp/auto.out" 2>"$tmp/auto.err"
st=$?
[ $st = 0 ] || fail "under fsafe-run: exit status $st, expected 0"
[ "$(count "logged and exited" "$tmp/auto.out")" = 3 ] || fail "under fsafe-run: not every child completed"
waits=$(mcount "^${M}fork waited [0-9]* us for 1 lock held by other threads:" "$tmp/auto.err")
[ "$waits" -ge 1 ] || fail "fsafe-run -v: no fork said it waited"
# The static lock by name (liblogq.so's .symtab), and the function that took it.
held=$(mcount "^${M}  mutex 0x[0-9a-f]* queue_lock (liblogq.so) held by thread [0-9]*, taken at liblogq.so+0x[0-9a-f]* (flusher+0x[0-9a-f]*)$" "$tmp/auto.err")
[ "$held" = "$waits" ] || fail "fsafe-run -v: $waits waits but $held lines naming liblogq's mutex"
ok "3 children hung without fsafe; under fsafe-run all completed, $waits forks waited for liblogq's mutex"
