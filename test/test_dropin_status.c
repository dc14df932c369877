/* SPDX-License-Identifier: MIT */
/*
 * Runs a command and reports how it ended, so that scripts can tell an exit
 * status from a signal:  test_dropin_status CMD [ARG]...
 * prints "pid P" (the process it started) and then "exit N" or "signal N".
 */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: %s command [args...]", argv[0]);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execvp(argv[1], argv + 1);
        _exit(120);
    }
    printf("pid %d\n", (int)pid);
    fflush(stdout);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        CHECK(errno == EINTR);
    if (WIFSIGNALED(st))
        printf("signal %d\n", WTERMSIG(st));
    else
        printf("exit %d\n", WEXITSTATUS(st));
    return 0;
}
