/* SPDX-License-Identifier: MIT */
/* A library whose constructor and destructor take a mutex of their own, as
 * libraries that set up a registry at load time do.  Loaded by bare name
 * (test_libc_locks dlopen_ctor): the thread that runs them holds the
 * loader's lock, so auto mode must not park it at this mutex while a fork
 * waits for that lock. */
#include <pthread.h>

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
__attribute__((visibility("default"))) int fsafe_ctor_lock_loads;

__attribute__((constructor)) static void ctor(void)
{
    pthread_mutex_lock(&registry_lock);
    fsafe_ctor_lock_loads++;
    pthread_mutex_unlock(&registry_lock);
}

__attribute__((destructor)) static void dtor(void)
{
    pthread_mutex_lock(&registry_lock);
    fsafe_ctor_lock_loads--;
    pthread_mutex_unlock(&registry_lock);
}
