/* SPDX-License-Identifier: MIT */
/*
 * The libc functions libfsafe.so interposes, in libfsafe.so only: fork(),
 * and dlopen() and dlclose() for FSAFE_LOCKS' libraries loaded later.
 * libfsafe-auto.so has the core built in beside auto mode's own wrappers of
 * these three (a thread's fork count, the loader gate), which call the same
 * functions through fsafe_fork() and the services (src/common/contract.h):
 * one object cannot define a symbol twice, so this file is left out of it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <unistd.h>

#include "internal.h"

/* The next fork() after this library's, for a dormant copy (core/api.c):
 * the active copy's own search for libc's fork() (dlsym(RTLD_NEXT)) may come
 * here, and passes through.  Found in the constructor: a first fork() from
 * an earlier constructor finds it then, on its own thread. */
static pid_t (*next_fork)(void);

__attribute__((constructor(101))) static void interpose_ctor(void)
{
    if (fsafe__copy_dormant())
        next_fork = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
}

FSAFE_FORK_PATH FSAFE_EXPORT pid_t fork(void)
{
    if (__builtin_expect(fsafe__copy_dormant(), 0)) {
        if (!next_fork)
            interpose_ctor();
        if (!next_fork) {
            errno = ENOSYS;
            return -1;
        }
        return next_fork();
    }
    return fsafe_fork();
}

/* Found at first use: a call may come before any constructor has run. */
static void *(*real_dlopen)(const char *, int);
static int (*real_dlclose)(void *);

/*
 * Each passes through to the next definition (libc's, or that of another
 * library interposing it).  While FSAFE_LOCKS has nothing waiting and nothing
 * registered late, each is a plain tail call, so that libc's dlopen sees the
 * caller's own return address: it searches the caller's RUNPATH and expands
 * $ORIGIN for the caller.  Otherwise the caller seen by libc is libfsafe
 * (README: FSAFE_LOCKS and libraries loaded later).
 */
FSAFE_EXPORT void *dlopen(const char *file, int mode)
{
    if (!real_dlopen)
        real_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    if (!fsafe__locks_dl_watch())
        return real_dlopen(file, mode);
    void *h = real_dlopen(file, mode);
    if (h)
        fsafe__locks_dl_loaded();
    return h;
}

FSAFE_EXPORT int dlclose(void *handle)
{
    if (!real_dlclose)
        real_dlclose = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
    if (!fsafe__locks_dl_watch())
        return real_dlclose(handle);
    fsafe__locks_dl_unloading();
    int r = real_dlclose(handle);
    fsafe__locks_dl_loaded();
    return r;
}
