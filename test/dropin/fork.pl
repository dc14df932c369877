# SPDX-License-Identifier: MIT
# Forks from perl; the child prints and exits 5.
$| = 1;
print "start\n";
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0) {
    print "child\n";
    exit 5;
}
waitpid($pid, 0);
print "child status ", $? >> 8, "\n";
exit 4;
