/* SPDX-License-Identifier: MIT */
/*
 * Locks that only the full symbol table (.symtab) names: a global of an
 * executable built without -rdynamic, a static of the executable, a static of
 * a library.  A worker holds the chosen lock 1 s at a time; the program forks
 * while it is held and the child takes it (timeout 4 s).
 *
 *   test_dropin_symtab global|static|libstatic|dup hang|ok
 *   test_dropin_symtab futex: forks while libfsafe_futexlock's thread updates
 *                             data under a lock that is a futex word, not a
 *                             pthread mutex; fails if that data was written
 *                             by anyone else (fsafe taking it as a mutex)
 */
#define _GNU_SOURCE
#include "common.h"

#include "dropin/legacy.h"

int futexlock_run(int forks); /* dropin/futexlock.c */

pthread_mutex_t app_lock = PTHREAD_MUTEX_INITIALIZER; /* global, not exported */
static pthread_mutex_t app_static_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t dup_lock = PTHREAD_MUTEX_INITIALIZER; /* as in liblegacy_test */

static pthread_mutex_t *held;
static volatile int holding;

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(held);
        __atomic_store_n(&holding, 1, __ATOMIC_RELEASE);
        usleep(1000 * 1000);
        pthread_mutex_unlock(held);
        usleep(1000);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "futex") == 0) {
        int r = futexlock_run(50);
        if (r != 0)
            FAIL("futexlock_run: %d (%s)", r, r == 1 ? "the data under the lock was overwritten" : "fork");
        printf("50 forks, the data under the futex lock whole\n");
        return 0;
    }
    if (argc < 3)
        FAIL("usage: %s global|static|libstatic|dup hang|ok", argv[0]);
    held = strcmp(argv[1], "global") == 0      ? &app_lock
           : strcmp(argv[1], "static") == 0    ? &app_static_lock
           : strcmp(argv[1], "dup") == 0       ? &dup_lock
                                               : legacy_static_lock_address();
    int expect_ok = strcmp(argv[2], "ok") == 0;
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    while (!__atomic_load_n(&holding, __ATOMIC_ACQUIRE))
        usleep(1000);
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        pthread_mutex_lock(held);
        _exit(0);
    }
    int st = t_wait(pid, 4000);
    if (expect_ok && st != 0)
        FAIL("child status %d, expected 0 (%s)", st, st == T_TIMEOUT ? "it hung on the lock" : "?");
    if (!expect_ok) {
        CHECK_EQ(st, T_TIMEOUT);
        printf("child hung on the %s lock, as expected without fsafe\n", argv[1]);
        return 0;
    }
    printf("child took the %s lock\n", argv[1]);
    return 0;
}
