/* SPDX-License-Identifier: MIT */
/*
 * Run under LD_PRELOAD=libfsafe.so: another thread holds a lock that a
 * library registered with fsafe, and that library's own atfork child handler
 * takes it.  fsafe's child handler must run first (it is registered first,
 * because libfsafe is initialised first), or the child hangs.
 */
#include "common.h"

#include <semaphore.h>

extern pthread_mutex_t initorder_lock;
extern int initorder_child_ok, initorder_registered;
static sem_t held;

static void *holder(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&initorder_lock);
    sem_post(&held);
    t_sleep_ms(300);
    pthread_mutex_unlock(&initorder_lock);
    return NULL;
}

int main(void)
{
#if defined(__GLIBC__) && __GLIBC__ == 2 && __GLIBC_MINOR__ < 34
    /* libpthread.so.0 is itself INITFIRST there, and ld.so keeps one such
     * object: fsafe's -z initfirst is lost, and a library constructor that
     * calls pthread_atfork runs before fsafe's (test/platforms/README.md,
     * Debian 11).  A known limitation of fsafe on those releases. */
    printf("SKIP: glibc < 2.34: libpthread's INITFIRST takes fsafe's place (a known limitation)\n");
    return T_SKIP;
#endif
    CHECK_EQ(initorder_registered, 0); /* fsafe is preloaded */
    sem_init(&held, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, holder, NULL);
    sem_wait(&held);
    pid_t pid = fork();
    if (pid == 0)
        _exit(initorder_child_ok == 1 ? 0 : 3);
    pthread_join(t, NULL);
    int st = t_wait(pid, 10000);
    if (st != 0)
        FAIL("child status %d: the library's atfork child handler ran before fsafe's reset", st);
    printf("ok: fsafe's child handler ran before the preloaded program's libraries' handlers\n");
    return 0;
}
