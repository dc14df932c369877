/* SPDX-License-Identifier: MIT */
/*
 * A small forking program that knows nothing of fsafe, for the drop-in tests.
 *   plain         prints, forks a child that exits 7, prints its status, exits 3
 *   flush         printf a line (left in the stdio buffer), fork, both exit()
 *   threads N     fork with N other threads alive
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
        int n = atoi(argv[2]);
        sem_init(&never, 0, 0);
        for (int i = 0; i < n; i++) {
            pthread_t t;
            CHECK(pthread_create(&t, NULL, parked, NULL) == 0);
        }
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        CHECK(pid > 0);
        CHECK_EQ(t_wait(pid, 10000), 0);
        printf("forked with %d other threads\n", n);
        return 0;
    }
    FAIL("unknown mode %s", argv[1]);
}
