/* SPDX-License-Identifier: MIT */
/*
 * Another library that interposes dlopen and dlclose and passes them on with
 * dlsym(RTLD_NEXT), as libfsafe-auto.so does; preloaded before libfsafe.so, it
 * calls fsafe's hooks from its own.  Counts the calls so the test can tell.
 */
#define _GNU_SOURCE
#include <dlfcn.h>

__attribute__((visibility("default"))) int chain_calls;

__attribute__((visibility("default"))) void *dlopen(const char *file, int mode)
{
    static void *(*next)(const char *, int);
    if (!next)
        next = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    __atomic_add_fetch(&chain_calls, 1, __ATOMIC_RELAXED);
    return next(file, mode);
}

__attribute__((visibility("default"))) int dlclose(void *h)
{
    static int (*next)(void *);
    if (!next)
        next = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
    __atomic_add_fetch(&chain_calls, 1, __ATOMIC_RELAXED);
    return next(h);
}
