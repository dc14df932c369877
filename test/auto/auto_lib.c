/* SPDX-License-Identifier: MIT */
/* See auto_lib.h.  The locks are static or on the heap: not in any symbol
 * table a user could name them from. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "auto_lib.h"

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t *rwlock; /* heap, like OpenSSL's CRYPTO_RWLOCK */
static pthread_spinlock_t spin;
static enum autolib_what kind;
static long hold;
static int busy;
static long count;

static void nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void take(enum autolib_what w)
{
    switch (w) {
    case AUTOLIB_MUTEX: pthread_mutex_lock(&mutex); break;
    case AUTOLIB_RWLOCK_WRITE: pthread_rwlock_wrlock(rwlock); break;
    case AUTOLIB_RWLOCK_READ: pthread_rwlock_rdlock(rwlock); break;
    case AUTOLIB_SPIN: pthread_spin_lock(&spin); break;
    }
}

static void give(enum autolib_what w)
{
    switch (w) {
    case AUTOLIB_MUTEX: pthread_mutex_unlock(&mutex); break;
    case AUTOLIB_RWLOCK_WRITE:
    case AUTOLIB_RWLOCK_READ: pthread_rwlock_unlock(rwlock); break;
    case AUTOLIB_SPIN: pthread_spin_unlock(&spin); break;
    }
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        take(kind);
        count++;
        __atomic_store_n(&busy, 1, __ATOMIC_RELEASE);
        nap(hold);
        __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
        give(kind);
        nap(1);
    }
    return NULL;
}

void autolib_start(enum autolib_what what, long hold_ms)
{
    kind = what;
    hold = hold_ms;
    rwlock = malloc(sizeof *rwlock);
    pthread_rwlock_init(rwlock, NULL);
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    while (!autolib_busy())
        nap(1);
}

int autolib_busy(void)
{
    return __atomic_load_n(&busy, __ATOMIC_ACQUIRE);
}

long autolib_call(void)
{
    /* The child takes the lock exclusively: a read hold by the worker blocks
     * it as surely as a write hold. */
    enum autolib_what w = kind == AUTOLIB_RWLOCK_READ ? AUTOLIB_RWLOCK_WRITE : kind;
    take(w);
    long c = ++count;
    give(w);
    return c;
}
