/* SPDX-License-Identifier: MIT */
/*
 * Uses libfsafe-counter and forks from the main thread while the library's
 * worker holds its lock; each child reads the counter (1 s timeout).  Every
 * child is waited for with a timeout and its exit status checked.
 *
 * Usage: optional-demo --expect ok|hang --registered yes|no [--forks N]
 *   ok:   every child must complete.   hang: at least one child must time out
 *   (forking stops at the first one).  registered: what the library's call to
 *   fsafe_opt_register_lock() must have returned (0 = yes, ENOSYS = no).
 * Exit 0 when what happened is what was expected, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "counter.h"

#define CHILD_HUNG 3
#define CHILD_KILLED 124

/* Exit status of pid, 128+signal, or CHILD_KILLED after timeout_ms. */
static int wait_for(pid_t pid, long timeout_ms)
{
    struct timespec tick = {0, 5000000};
    int st;
    for (long t = 0;; t += 5) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            perror("waitpid");
            exit(1);
        }
        if (t >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return CHILD_KILLED;
        }
        nanosleep(&tick, NULL);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
    const char *expect = NULL, *registered = NULL;
    int forks = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--expect"))
            expect = argv[i + 1];
        else if (!strcmp(argv[i], "--registered"))
            registered = argv[i + 1];
        else if (!strcmp(argv[i], "--forks"))
            forks = atoi(argv[i + 1]);
    }
    if (!expect || !registered || forks < 1) {
        fprintf(stderr, "usage: %s --expect ok|hang --registered yes|no [--forks N]\n", argv[0]);
        return 2;
    }
    if (counter_start() != 0) {
        fprintf(stderr, "counter_start failed\n");
        return 1;
    }
    int want_reg = !strcmp(registered, "yes") ? 0 : ENOSYS;
    if (counter_fsafe_status() != want_reg) {
        fprintf(stderr, "FAIL: registration returned %d, expected %d\n", counter_fsafe_status(),
                want_reg);
        return 1;
    }
    struct timespec settle = {0, 20000000};
    nanosleep(&settle, NULL); /* let the worker get going */

    int completed = 0, hung = 0;
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            /* Child of a multithreaded parent: no stdio, no malloc. */
            unsigned long v;
            _exit(counter_read(1000, &v) == 0 ? 0 : CHILD_HUNG);
        }
        int st = wait_for(pid, 5000);
        if (st == 0)
            completed++;
        else if (st == CHILD_HUNG || st == CHILD_KILLED)
            hung++;
        else {
            fprintf(stderr, "FAIL: child %d ended with status %d\n", i, st);
            return 1;
        }
        if (hung && !strcmp(expect, "hang"))
            break;
    }
    printf("registration: %s; children completed: %d, hung: %d\n",
           counter_fsafe_status() == 0 ? "registered with fsafe" : "fsafe absent (ENOSYS)",
           completed, hung);
    if (!strcmp(expect, "ok") && hung == 0)
        return 0;
    if (!strcmp(expect, "hang") && hung > 0)
        return 0;
    fprintf(stderr, "FAIL: expected %s\n", expect);
    return 1;
}
