/* SPDX-License-Identifier: MIT */
/*
 * A test-only "legacy" library: a global exported mutex and a worker thread
 * that holds it.  It knows nothing of fsafe; the retrofit tests register its
 * lock from the outside with FSAFE_LOCKS.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "legacy.h"

pthread_mutex_t legacy_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_rwlock_t legacy_rwlock = PTHREAD_RWLOCK_INITIALIZER;
const int legacy_readonly[16] = {1};
/* Lock-sized, writable, and not a lock: FSAFE_LOCKS must refuse it. */
long legacy_not_a_lock[5] = {1, 2, 3, 4, 5};
/* A lock inside an object, 48 bytes in, after fields that point at themselves
 * (as an empty std::map's header does): FSAFE_LOCKS names it symbol+48. */
struct legacy_registry legacy_registry = {
    {&legacy_registry.links[0], &legacy_registry.links[0], &legacy_registry.links[0],
     &legacy_registry.links[0], &legacy_registry.links[0], &legacy_registry.links[0]},
    PTHREAD_MUTEX_INITIALIZER};

static long counter;
/* Not exported: only in the library's .symtab (and in the one of
 * test_dropin_symtab, which has a static of the same name). */
static pthread_mutex_t legacy_static_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t dup_lock = PTHREAD_MUTEX_INITIALIZER;
static int legacy_static_data[8];
static volatile pid_t worker_tid;
static volatile int worker_holding;
static long hold_ms;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void *worker(void *arg)
{
    (void)arg;
    worker_tid = (pid_t)syscall(SYS_gettid);
    for (;;) {
        pthread_mutex_lock(&legacy_lock);
        __atomic_store_n(&worker_holding, 1, __ATOMIC_RELEASE);
        sleep_ms(hold_ms);
        __atomic_store_n(&worker_holding, 0, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&legacy_lock);
        sleep_ms(hold_ms);
    }
    return NULL;
}

void legacy_start(long ms)
{
    pthread_t t;
    hold_ms = ms;
    pthread_create(&t, NULL, worker, NULL);
    while (!__atomic_load_n(&worker_holding, __ATOMIC_ACQUIRE))
        sleep_ms(1);
}

pid_t legacy_worker_tid(void)
{
    return worker_tid;
}

void *legacy_lock_address(void)
{
    return &legacy_lock;
}

long legacy_call(void)
{
    pthread_mutex_lock(&legacy_lock);
    long v = ++counter;
    pthread_mutex_unlock(&legacy_lock);
    return v;
}

void *legacy_static_lock_address(void)
{
    return &legacy_static_lock;
}

void *legacy_dup_lock_address(void)
{
    return &dup_lock;
}

void *legacy_static_data_address(void)
{
    return &legacy_static_data[0];
}
