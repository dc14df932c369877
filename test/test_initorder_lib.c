/* SPDX-License-Identifier: MIT */
/*
 * A library that uses fsafe optionally and has its own atfork child handler
 * that takes its (registered) lock.  Its constructor calls pthread_atfork
 * before registering.  Under LD_PRELOAD the loader runs this constructor
 * before libfsafe's unless libfsafe is initialised first (-z initfirst); then
 * this child handler would run before fsafe has reset the lock, and hang.
 */
#define FSAFE_OPTIONAL
#include <pthread.h>
#include <time.h>

#include "fsafe.h"

pthread_mutex_t initorder_lock = PTHREAD_MUTEX_INITIALIZER;
int initorder_child_ok = -1;   /* set by the child handler */
int initorder_registered = -1; /* fsafe_opt_register_lock's result */

static void child_handler(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 2;
    initorder_child_ok = pthread_mutex_timedlock(&initorder_lock, &ts) == 0;
    if (initorder_child_ok)
        pthread_mutex_unlock(&initorder_lock);
}

__attribute__((constructor)) static void initorder_init(void)
{
    pthread_atfork(NULL, NULL, child_handler);
    initorder_registered = fsafe_opt_register_lock(&initorder_lock, FSAFE_MUTEX, 1, "initorder");
}
