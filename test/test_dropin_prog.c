/* SPDX-License-Identifier: MIT */
/*
 * A small forking program that knows nothing of fsafe, for the drop-in tests.
 *   plain         prints, forks a child that exits 7, prints its status, exits 3
 *   flush         printf a line (left in the stdio buffer), fork, both exit()
 *   threads N [FORKS [MORE]]
 *                 fork FORKS times (default 1) with N other threads alive,
 *                 then start MORE threads and fork FORKS times again
 *   end HOW       fork a child that _exit()s, then end with HOW: _exit, _Exit,
 *                 exit, or close2 (close fd 2, then exit); status 5
 */
#include "common.h"

#include <semaphore.h>

static sem_t never;

static void *parked(void *arg)
{
    (void)arg;
    while (sem_wait(&never) != 0) {
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: %s plain|flush|threads N", argv[0]);
    if (strcmp(argv[1], "plain") == 0) {
        printf("parent %s\n", "before fork");
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            ssize_t w = write(1, "child\n", 6);
            _exit(w == 6 ? 7 : 1);
        }
        CHECK(pid > 0);
        printf("child status %d\n", t_wait(pid, 10000));
        return 3;
    }
    if (strcmp(argv[1], "flush") == 0) {
        printf("written before fork\n"); /* stays in the buffer: stdout is a pipe */
        pid_t pid = fork();
        if (pid == 0)
            exit(0); /* exit() flushes the child's copy of the buffer */
        CHECK(pid > 0);
        CHECK_EQ(t_wait(pid, 10000), 0);
        return 0;
    }
    if (strcmp(argv[1], "threads") == 0 && argc > 2) {
        int n = atoi(argv[2]), forks = argc > 3 ? atoi(argv[3]) : 1;
        int more = argc > 4 ? atoi(argv[4]) : 0;
        sem_init(&never, 0, 0);
        for (int round = 0; round < (more ? 2 : 1); round++) {
            for (int i = 0; i < (round ? more : n); i++) {
                pthread_t t;
                CHECK(pthread_create(&t, NULL, parked, NULL) == 0);
            }
            for (int f = 0; f < forks; f++) {
                pid_t pid = fork();
                if (pid == 0)
                    _exit(0);
                CHECK(pid > 0);
                CHECK_EQ(t_wait(pid, 10000), 0);
            }
            printf("forked %d times with %d other threads\n", forks, round ? n + more : n);
        }
        return 0;
    }
    if (strcmp(argv[1], "end") == 0 && argc > 2) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        CHECK(pid > 0);
        CHECK_EQ(t_wait(pid, 10000), 0);
        printf("ending with %s\n", argv[2]);
        fflush(stdout);
        if (strcmp(argv[2], "_exit") == 0)
            _exit(5);
        if (strcmp(argv[2], "_Exit") == 0)
            _Exit(5);
        if (strcmp(argv[2], "close2") == 0)
            close(2);
        exit(5);
    }
    FAIL("unknown mode %s", argv[1]);
}
