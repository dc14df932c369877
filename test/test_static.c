/* SPDX-License-Identifier: MIT */
/*
 * Linked with libfsafe.a: no fork() interposition, so the program calls
 * fsafe_fork() explicitly.  A thread holds a registered errorcheck mutex at
 * the moment of fork; the child must be able to take it.
 */
#include "common.h"

#include <semaphore.h>

#include "fsafe.h"

#ifdef PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP
static pthread_mutex_t m = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
#else
static pthread_mutex_t m; /* made errorcheck in main(): the initializer is glibc's */
#endif
static sem_t held;

static void *holder(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    sem_post(&held);
    t_sleep_ms(300);
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(void)
{
#ifndef PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP
    t_mutex_init_type(&m, PTHREAD_MUTEX_ERRORCHECK);
#endif
    CHECK_EQ(fsafe_register_lock(&m, FSAFE_MUTEX, 1, "static"), 0);
    sem_init(&held, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, holder, NULL);
    sem_wait(&held);
    pid_t pid = fsafe_fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct timespec ts;
        t_deadline(&ts, 2000);
        if (pthread_mutex_timedlock(&m, &ts) != 0)
            _exit(T_CHILD_HUNG);
        _exit(pthread_mutex_unlock(&m) == 0 ? 0 : 4);
    }
    pthread_join(t, NULL);
    CHECK_EQ(t_wait(pid, 10000), 0);
    struct fsafe_stats s;
    CHECK_EQ(fsafe_get_stats(&s, sizeof s), 0);
    CHECK_EQ(s.forks, 1);
    printf("ok: static link, fsafe_fork()\n");
    return 0;
}
