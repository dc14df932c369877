#!/bin/sh
# SPDX-License-Identifier: MIT
# A real, unchanged binary runs a script that forks, with and without
# fsafe-run: same stdout, same exit status, nothing on stderr.  A third run
# with --verbose to another fd proves fsafe was really loaded and saw the fork.
#   real.sh FSAFE_RUN BINDIR sh|python3|perl|ruby
. "$(dirname "$0")/lib.sh"
case $1 in
sh) cmd="/bin/sh $src/fork.sh" ;;
python3) cmd="/usr/bin/python3 $src/fork.py" ;;
perl) cmd="/usr/bin/perl $src/fork.pl" ;;
ruby) cmd="/usr/bin/ruby $src/fork.rb" ;;
*) fail "unknown interpreter $1" ;;
esac
$cmd >"$tmp/out.plain" 2>"$tmp/err.plain"
st_plain=$?
"$run" $cmd >"$tmp/out.fsafe" 2>"$tmp/err.fsafe"
st_fsafe=$?
interp_own "$tmp/err.plain" "$tmp/err.fsafe"
[ "$st_plain" -ne 0 ] || fail "the script should exit non-zero (4), got 0"
[ "$st_plain" = "$st_fsafe" ] || fail "exit status $st_plain without fsafe, $st_fsafe with"
cmp -s "$tmp/out.plain" "$tmp/out.fsafe" || fail "stdout differs"
[ -s "$tmp/out.plain" ] || fail "no output at all"
[ ! -s "$tmp/err.fsafe" ] || fail "fsafe-run wrote to stderr by default"
cmp -s "$tmp/err.plain" "$tmp/err.fsafe" || fail "stderr differs"
"$run" --verbose --log-fd=3 $cmd >"$tmp/out.verbose" 2>"$tmp/err.verbose" 3>"$tmp/log"
st=$?
interp_own "$tmp/err.verbose"
[ "$st" = "$st_plain" ] || fail "exit status $st with --verbose"
cmp -s "$tmp/out.plain" "$tmp/out.verbose" || fail "stdout differs with --verbose"
[ ! -s "$tmp/err.verbose" ] || fail "--log-fd=3 still wrote to stderr"
grep -q "^${M}fork #1 in pid" "$tmp/log" || fail "fsafe did not see the fork (not loaded?)"
ok "$1: identical output and status $st_plain; fsafe saw $(mcount "^${M}fork #" "$tmp/log") fork(s)"
