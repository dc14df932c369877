#!/bin/sh
# SPDX-License-Identifier: MIT
# A line left in the stdio buffer before fork is written twice (once by each
# process) when stdout is a pipe; FSAFE_FLUSH writes it once.
#   flush.sh FSAFE_RUN BINDIR
. "$(dirname "$0")/lib.sh"
prog="$bin/test_dropin_prog flush"
line="written before fork"
$prog | cat >"$tmp/plain"
"$run" $prog | cat >"$tmp/fsafe"
"$run" --flush $prog | cat >"$tmp/flush"
FSAFE_FLUSH=yes "$run" $prog | cat >"$tmp/flush.env"
[ "$(count "$line" "$tmp/plain")" = 2 ] || fail "without fsafe the line should appear twice"
[ "$(count "$line" "$tmp/fsafe")" = 2 ] || fail "fsafe without --flush should not change output"
[ "$(count "$line" "$tmp/flush")" = 1 ] || fail "--flush: the line should appear once"
[ "$(count "$line" "$tmp/flush.env")" = 1 ] || fail "FSAFE_FLUSH=yes: the line should appear once"
ok "2 copies without, 1 with FSAFE_FLUSH"
