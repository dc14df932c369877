/* SPDX-License-Identifier: MIT */
/*
 * A program that knows nothing of fsafe, using the legacy library (whose worker
 * thread holds legacy_lock for 1 s at a time).  It forks while the lock is
 * held and the child calls into the library.
 *
 *   test_dropin_retrofit hang|ok [forks]
 *     hang: the child must time out (run without fsafe, or without FSAFE_LOCKS)
 *     ok:   every child must finish (run under fsafe-run --locks=legacy_lock)
 * Prints "lock <address> worker <tid>" first, for the FSAFE_WARN_MS test.
 */
#include "common.h"

#include "dropin/legacy.h"

#define HOLD_MS 1000
#define CHILD_TIMEOUT_MS 4000

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "hang") && strcmp(argv[1], "ok")))
        FAIL("usage: %s hang|ok [forks]", argv[0]);
    int expect_ok = strcmp(argv[1], "ok") == 0;
    int forks = argc > 2 ? atoi(argv[2]) : 1;

    legacy_start(HOLD_MS); /* returns while the worker holds legacy_lock */
    /* &legacy_lock from the program: with a copy relocation this is the copy
     * the library's code uses too, which FSAFE_LOCKS must find. */
    CHECK((void *)&legacy_lock == legacy_lock_address());
    printf("lock %p worker %d\n", (void *)&legacy_lock, (int)legacy_worker_tid());
    fflush(stdout);

    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid < 0)
            FAIL("fork: %s", strerror(errno));
        if (pid == 0) {
            for (int k = 0; k < 3; k++)
                legacy_call();
            _exit(0);
        }
        int st = t_wait(pid, CHILD_TIMEOUT_MS);
        if (expect_ok && st != 0)
            FAIL("fork %d: child status %d, expected 0 (%s)", i, st,
                 st == T_TIMEOUT ? "it hung on legacy_lock" : "?");
        if (!expect_ok) {
            CHECK_EQ(st, T_TIMEOUT);
            printf("child hung on legacy_lock, as expected without fsafe\n");
            return 0;
        }
    }
    printf("%d children completed\n", forks);
    return 0;
}
