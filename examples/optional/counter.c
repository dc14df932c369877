/* SPDX-License-Identifier: MIT */
/*
 * libfsafe-counter: registers its lock with fsafe through the optional API.
 * Built with FSAFE_OPTIONAL and NOT linked against libfsafe: it works the same
 * with and without fsafe in the process, and never prints anything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <time.h>

#define FSAFE_OPTIONAL
#include <fsafe.h>

#include "counter.h"

#define COUNTER_EXPORT __attribute__((visibility("default")))

static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long counter_value;
static int fsafe_status = -1;

/* The worker holds the lock most of the time (2 ms in, 0.1 ms out), as a busy
 * logger or allocator would, so a fork from another thread almost always
 * happens while it is held. */
static void *worker(void *arg)
{
    (void)arg;
    struct timespec in = {0, 2000000}, out = {0, 100000};
    for (;;) {
        pthread_mutex_lock(&counter_lock);
        counter_value++;
        nanosleep(&in, NULL);
        pthread_mutex_unlock(&counter_lock);
        nanosleep(&out, NULL);
    }
    return NULL;
}

COUNTER_EXPORT int counter_start(void)
{
    /* Register before the worker exists, so no fork can see the lock held
     * before fsafe knows it.  ENOSYS (fsafe absent) is not an error. */
    fsafe_status = fsafe_opt_register_lock(&counter_lock, FSAFE_MUTEX, 100, "counter_lock");
    pthread_t t;
    int r = pthread_create(&t, NULL, worker, NULL);
    if (r == 0)
        pthread_detach(t);
    return r;
}

COUNTER_EXPORT int counter_fsafe_status(void)
{
    return fsafe_status;
}

COUNTER_EXPORT int counter_read(long timeout_ms, unsigned long *value)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    int r = pthread_mutex_timedlock(&counter_lock, &ts);
    if (r != 0)
        return r;
    *value = counter_value;
    pthread_mutex_unlock(&counter_lock);
    return 0;
}
