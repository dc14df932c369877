/* SPDX-License-Identifier: MIT */
/*
 * For the small benchmark programs (libc_bench, sem_cost, auto_bench): run this program
 * again as a worker, with a library preloaded or none, and read the numbers
 * it prints on stdout.  Driver side only; the driver never loads fsafe.
 */
#ifndef FSAFE_BENCH_WORKER_H
#define FSAFE_BENCH_WORKER_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs /proc/self/exe with argv (argv[0] included), LD_PRELOAD=preload (NULL:
 * none), reads up to n numbers from its stdout into out.  Returns 0 when it
 * printed n numbers and exited 0, else -1. */
static inline int bench_run_worker(const char *preload, char *const argv[], double *out, int n)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        if (preload)
            setenv("LD_PRELOAD", preload, 1);
        else
            unsetenv("LD_PRELOAD");
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    int got = 0;
    while (f && got < n && fscanf(f, "%lf", &out[got]) == 1)
        got++;
    if (f)
        fclose(f);
    else
        close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    return got == n && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

#endif
