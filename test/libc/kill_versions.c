/* SPDX-License-Identifier: MIT */
/*
 * libc.kill_versions: pthread_kill of a thread that has exited and not been
 * joined gives 0 through the GLIBC_2.34 version and ESRCH through the
 * ABI's first one (GLIBC_2.2.5 on x86-64, GLIBC_2.17 on aarch64), which
 * programs linked before glibc 2.34 call (libfsafe_kill_old.so plays such
 * a library).  Auto mode's pthread_kill
 * wrapper catches both; each caller must still get its own version's
 * answer.  Exit 0 when both answers are glibc's, 1 otherwise, 77 before
 * glibc 2.34 (one version only).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int fsafe_test_old_kill(pthread_t t, int sig);

#if !defined(__GLIBC__) || __GLIBC__ < 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ < 34)
int main(void)
{
    puts("skipped: before glibc 2.34 pthread_kill has one version");
    return 77;
#else
static void *gone(void *arg)
{
    return arg;
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, gone, NULL) != 0)
        return 1;
    /* Until the thread is gone: its exit is over when its id is reused or
     * ESRCH comes through the old version (at most 2 s). */
    int now = -1, old = -1;
    for (int i = 0; i < 200; i++) {
        usleep(10000);
        old = fsafe_test_old_kill(t, 0);
        if (old == ESRCH)
            break;
    }
    now = pthread_kill(t, 0);
    printf("pthread_kill of an exited thread: %d through GLIBC_2.34 (expected 0), %d through "
           "the ABI's first version (expected %d, ESRCH)\n",
           now, old, ESRCH);
    pthread_join(t, NULL);
    return now == 0 && old == ESRCH ? 0 : 1;
#endif
}
