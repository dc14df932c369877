#!/bin/sh
# SPDX-License-Identifier: MIT
# A set-user-ID / set-group-ID COMMAND that changes the user or group gets no
# fsafe (the loader ignores LD_PRELOAD under AT_SECURE): fsafe-run says so in
# one line.  Run as root: a copy of a test program owned by nobody with the
# setuid bit runs with euid nobody (secure); the same copy owned by root does
# not change the user (root runs it: no AT_SECURE), and fsafe works there.
# --stats shows, in each case, whether the library really was loaded.
#   setuid.sh FSAFE_RUN BINDIR
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "skip: needs root to create set-user-ID files"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "skip: no user nobody"; exit 77; }
chmod 755 "$tmp"
cp "$bin/test_dropin_prog" "$tmp/prog"
runit() { # NAME: run the copy under fsafe-run --stats
    "$run" --stats "$tmp/prog" plain >"$tmp/out.$1" 2>"$tmp/err.$1"
    [ $? = 3 ] || fail "$1: status changed"
}
# setuid, another owner: secure execution.
chown nobody "$tmp/prog" && chmod 4755 "$tmp/prog"
runit suid
grep -q "^fsafe-run: '$tmp/prog' is set-user-ID (owner uid $(id -u nobody)): the loader ignores LD_PRELOAD for it, so it runs without fsafe\$" \
    "$tmp/err.suid" || fail "no note for a setuid command: $(cat "$tmp/err.suid")"
[ "$(wc -l <"$tmp/err.suid")" = 1 ] || fail "setuid: expected exactly one line (fsafe must not have loaded)"
# setgid, a group that is not ours.
chown root:daemon "$tmp/prog" && chmod 2755 "$tmp/prog"
runit sgid
grep -q "^fsafe-run: '$tmp/prog' is set-group-ID (group gid $(getent group daemon | cut -d: -f3))" \
    "$tmp/err.sgid" || fail "no note for a setgid command: $(cat "$tmp/err.sgid")"
[ "$(wc -l <"$tmp/err.sgid")" = 1 ] || fail "setgid: expected exactly one line"
# Controls: setuid root run by root, and no bits at all: fsafe loads, no note.
chown root:root "$tmp/prog" && chmod 4755 "$tmp/prog"
runit own
grep -q "^fsafe-run" "$tmp/err.own" && fail "a note for a setuid file owned by the caller"
grep -q "^${M}stats for prog: 1 forks" "$tmp/err.own" || fail "own setuid file: fsafe not loaded"
chmod 755 "$tmp/prog"
runit plain
grep -q "^fsafe-run" "$tmp/err.plain" && fail "a note for a plain file"
grep -q "^${M}stats for prog: 1 forks" "$tmp/err.plain" || fail "plain: fsafe not loaded"
ok "$(cat "$tmp/err.suid")"
