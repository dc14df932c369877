# SPDX-License-Identifier: MIT
# Deletes CPython 3.12+'s own warning about forking a multithreaded process
# (Python/... os.fork: "DeprecationWarning: This process (pid=N) is
# multi-threaded, use of fork() may lead to deadlocks in the child.") and
# the source line it quotes after it: the interpreter's, printed with or
# without fsafe.  Every other line stays, so any line of fsafe's still shows.
/: DeprecationWarning: This process \(pid=[0-9]+\) is multi-threaded, use of fork\(\) may lead to deadlocks in the child\.$/{
N
d
}
