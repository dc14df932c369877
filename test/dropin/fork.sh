# SPDX-License-Identifier: MIT
# Forks in the ways a shell does: subshell, command substitution, command.
echo start
(echo "in a subshell"; exit 3)
echo "subshell status $?"
v=$(echo "from a command substitution")
echo "$v"
/bin/sh -c 'exit 6'
echo "sh status $?"
sleep 0 &
wait $!
echo "background status $?"
exit 4
