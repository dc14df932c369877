#!/bin/sh
# SPDX-License-Identifier: MIT
# Secure execution (AT_SECURE): no FSAFE_* setting is honoured.  A setgid copy
# of a program linked with libfsafe, run by an unprivileged user (nobody) whose
# real group differs from the file's group, gets AT_SECURE=1 from the kernel.
# The same copy run without the setgid bit is the control: there the settings
# work.  Needs root (to create the setgid file and switch user); skips (77)
# only when that is impossible, and fails if the kernel did not set AT_SECURE.
#   secure.sh FSAFE_RUN BINDIR
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "skip: needs root to create a setgid binary"; exit 77; }
command -v setpriv >/dev/null || { echo "skip: setpriv (util-linux) is missing"; exit 77; }
user=nobody
ugid=$(id -g $user 2>/dev/null) || { echo "skip: no user $user"; exit 77; }
fgid=1 # group 'daemon': not nobody's
[ "$ugid" != "$fgid" ] || { echo "skip: $user's group is $fgid"; exit 77; }
chmod 755 "$tmp"
cp "$bin/test_dropin_secure" "$tmp/prog"
chgrp $fgid "$tmp/prog"
as_user() {
    env FSAFE_VERBOSE=1 FSAFE_LOCKS=legacy_lock FSAFE_STATS=1 \
        setpriv --reuid=$user --regid="$ugid" --clear-groups "$@"
}
# Control: not setgid; the settings are honoured.
chmod 755 "$tmp/prog"
as_user "$tmp/prog" >"$tmp/out.normal" 2>"$tmp/err.normal" || fail "control run: status $?"
grep -qx "at_secure=0 env=set registered=1" "$tmp/out.normal" || fail "control: $(cat "$tmp/out.normal")"
grep -q "^$M" "$tmp/err.normal" || fail "control: FSAFE_VERBOSE printed nothing"
# Setgid: secure execution.
chmod 2755 "$tmp/prog"
as_user "$tmp/prog" >"$tmp/out.secure" 2>"$tmp/err.secure" || fail "setgid run: status $?"
grep -q "^at_secure=1 " "$tmp/out.secure" \
    || fail "the kernel did not mark the setgid run secure: $(cat "$tmp/out.secure")"
grep -qx "at_secure=1 env=set registered=0" "$tmp/out.secure" \
    || fail "secure: FSAFE_LOCKS was honoured: $(cat "$tmp/out.secure")"
[ ! -s "$tmp/err.secure" ] || fail "secure: fsafe printed messages (FSAFE_VERBOSE/STATS honoured)"
ok "control: $(cat "$tmp/out.normal"); setgid: $(cat "$tmp/out.secure"), stderr empty"
