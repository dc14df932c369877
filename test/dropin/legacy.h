/* SPDX-License-Identifier: MIT */
/* The test-only legacy library (legacy.c): knows nothing of fsafe. */
#ifndef LEGACY_H
#define LEGACY_H
#include <pthread.h>
#include <sys/types.h>

extern pthread_mutex_t legacy_lock;
extern pthread_rwlock_t legacy_rwlock;
extern const int legacy_readonly[16];
struct legacy_registry {
    void *links[6];
    pthread_mutex_t mutex; /* at offset 48 */
};
extern struct legacy_registry legacy_registry;
/* Starts a thread that holds legacy_lock for ms, releases it for ms, and so
 * on; returns once the thread holds the lock for the first time. */
void legacy_start(long ms);
pid_t legacy_worker_tid(void);
void *legacy_lock_address(void); /* &legacy_lock as the library's code sees it */
long legacy_call(void);          /* takes legacy_lock */
/* Statics of the library, not exported. */
void *legacy_static_lock_address(void); /* legacy_static_lock */
void *legacy_dup_lock_address(void);    /* dup_lock (test_dropin_symtab has one too) */
void *legacy_static_data_address(void); /* legacy_static_data, int[8] */
#endif
