/* SPDX-License-Identifier: MIT */
/*
 * hang: the program of README's "My forked child hangs" walkthrough.  It uses
 * liblogq (a background thread holds the library's static queue mutex most of
 * the time), forks 3 children, and each child logs one line.  Nothing here
 * knows about fsafe.  The parent gives each child 2 s, then kills it and says
 * so; exit status 0 when every child completed, 1 when any hung.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "logq.h"

/* 1 when the child exited 0 within `ms`, 0 when it had to be killed. */
static int wait_child(pid_t pid, int ms)
{
    int st;
    for (int waited = 0; waited < ms; waited += 10) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) && WEXITSTATUS(st) == 0;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    logq_start();
    int hung = 0;
    for (int i = 1; i <= 3; i++) {
        struct timespec gap = {0, 50 * 1000000L};
        nanosleep(&gap, NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            logq_write("child: hello\n"); /* hangs if the queue lock came locked */
            _exit(0);
        }
        if (wait_child(pid, 2000)) {
            printf("child %d: logged and exited\n", i);
        } else {
            printf("child %d: hung on liblogq's lock, killed after 2 s\n", i);
            hung++;
        }
    }
    printf("%d of 3 children hung\n", hung);
    return hung ? 1 : 0;
}
