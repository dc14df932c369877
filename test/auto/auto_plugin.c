/* SPDX-License-Identifier: MIT */
/* A plugin opened with dlopen after start-up; its own worker keeps its
 * static mutex busy. */
#include <pthread.h>
#include <time.h>

static pthread_mutex_t plugin_lock = PTHREAD_MUTEX_INITIALIZER;
static int busy;
static long calls;

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&plugin_lock);
        __atomic_store_n(&busy, 1, __ATOMIC_RELEASE);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&plugin_lock);
        ts.tv_nsec = 1000000L;
        nanosleep(&ts, NULL);
    }
    return NULL;
}

void plugin_start(void)
{
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
}

int plugin_busy(void)
{
    return __atomic_load_n(&busy, __ATOMIC_ACQUIRE);
}

long plugin_call(void)
{
    pthread_mutex_lock(&plugin_lock);
    long c = ++calls;
    pthread_mutex_unlock(&plugin_lock);
    return c;
}
