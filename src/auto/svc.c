/* SPDX-License-Identifier: MIT */
/*
 * The bottom of libfsafe-auto.so: what every other file of it may use.  The
 * services libfsafe.so lends at attach (its settings, its messages, its lock
 * resets; src/common/contract.h), and the real functions behind the
 * interposed calls, found with dlsym(RTLD_NEXT).  Calls nothing above it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "auto.h"

#define likely(x) __builtin_expect(!!(x), 1)

struct fsafe__ext_services fsafe__svc;
int fsafe__auto_on;

void fsafe__amsg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fsafe__svc.vmsg(fmt, ap);
    va_end(ap);
}

/* ---- the real functions ---------------------------------------------------- */
/* Found with dlsym(RTLD_NEXT) at first use and kept: a call may come before
 * any constructor has run.  dlsym takes only the loader's own lock.
 *
 * RTLD_NEXT searches the global scope after this library.  An object loaded
 * by dlopen without RTLD_GLOBAL (a plugin, every CPython extension module)
 * is not in it, nor are the libraries it brought: libstdc++ under a C++
 * plugin of a C program, libglib or libgomp under an extension module.  The
 * plugin's calls bind to this library all the same (the global scope comes
 * first in every lookup), so the definition they would have reached is
 * looked for where the loader found it: in the calling object's own scope
 * (dlsym on a handle of the caller searches the caller and its
 * dependencies, breadth first, as the loader does after the global scope).
 * The object that defines it is then marked RTLD_NODELETE, since the
 * address is kept for the life of the process: a dlclose of the plugin
 * leaves that library mapped, where without fsafe it could be unloaded. */
static AO_t real_dlopen, real_dlclose, real_dladdr; /* libc's: libc.c gates these names */
#define DLOPEN ((void *(*)(const char *, int))fsafe__next_sym(&real_dlopen, "dlopen", NULL))
#define DLCLOSE ((int (*)(void *))fsafe__next_sym(&real_dlclose, "dlclose", NULL))
#define DLADDR ((int (*)(const void *, Dl_info *))fsafe__next_sym(&real_dladdr, "dladdr", NULL))

/* Non-zero when addr is in this library. */
static int is_mine(const void *addr)
{
    Dl_info at, me;
    return DLADDR(addr, &at) && DLADDR((const void *)is_mine, &me) && at.dli_fbase == me.dli_fbase;
}

/* A handle of the loaded object that holds addr, without loading anything;
 * NULL for the main program (its scope is the global one) and for an object
 * of another namespace (dlmopen). */
static void *handle_of(const void *addr, int flags)
{
    Dl_info at;
    if (!DLADDR(addr, &at) || !at.dli_fname || !at.dli_fname[0])
        return NULL;
    return DLOPEN(at.dli_fname, RTLD_LAZY | RTLD_NOLOAD | flags);
}

static void *in_caller_scope(const char *name, const void *caller)
{
    if (!caller || is_mine(caller))
        return NULL;
    void *scope = handle_of(caller, 0);
    if (!scope)
        return NULL;
    void *p = dlsym(scope, name), *definer = NULL;
    if (p && !is_mine(p))
        definer = handle_of(p, RTLD_NODELETE);
    if (definer)
        DLCLOSE(definer);
    DLCLOSE(scope);
    return definer ? p : NULL;
}

static _Noreturn void not_found(const char *name)
{
    /* Nothing sensible can follow: the caller was bound to this library's
     * definition, and there is no other in its scope to forward to. */
    if (fsafe__svc.vmsg) {
        fsafe__amsg("libfsafe-auto.so: no definition of %s after this library; aborting", name);
        abort();
    }
    static const char m1[] = "fsafe: libfsafe-auto.so: no definition of ";
    static const char m2[] = " after this library; aborting\n";
    (void)!write(2, m1, sizeof m1 - 1);
    (void)!write(2, name, __builtin_strlen(name));
    (void)!write(2, m2, sizeof m2 - 1);
    abort();
}

/*
 * Before glibc 2.34, dlsym gives the oldest version of a symbol that has
 * several, not the default one (seen on Debian 11's 2.31: for the condition
 * variable calls, the GLIBC_2.2.5 compatibility functions, which keep a
 * pointer to a separate new-style condvar in the first word of the
 * program's).  Those calls would then use one layout and the program's
 * pthread_cond_init, pthread_cond_clockwait and C11's cnd_* the other: a
 * program that waited with one and woke with the other crashed (SIGSEGV,
 * auto.cond_versions).  So they are asked for by their current version; where it
 * does not exist (AArch64's only version is GLIBC_2.17) dlsym's answer is
 * the only one.
 */
static void *next_default(const char *name)
{
    static const char *const cond_calls[] = {"pthread_cond_wait", "pthread_cond_timedwait",
                                             "pthread_cond_signal", "pthread_cond_broadcast"};
    for (size_t i = 0; i < sizeof cond_calls / sizeof *cond_calls; i++)
        if (__builtin_strcmp(name, cond_calls[i]) == 0) {
            void *p = dlvsym(RTLD_NEXT, name, "GLIBC_2.3.2");
            if (p)
                return p;
        }
    return dlsym(RTLD_NEXT, name);
}

static void *resolve(AO_t *slot, const char *name, const void *caller)
{
    void *p = next_default(name);
    if (!p)
        p = in_caller_scope(name, caller);
    if (!p)
        not_found(name);
    AO_store_release(slot, (AO_t)p);
    return p;
}

void *fsafe__next_sym(AO_t *slot, const char *name, const void *caller)
{
    void *p = (void *)AO_load_acquire(slot);
    if (likely(p != NULL))
        return p;
    return resolve(slot, name, caller);
}

/* Each slot starts at a function that resolves it and makes the call, so
 * the lock calls' fast paths load and call, with no test (libc's pthread
 * calls: always in the global scope, no caller needed). */
#define REAL_SLOT(op, type)                                                                        \
    static int first_##op(type *l);                                                                \
    int (*fsafe__real_##op)(type *) = first_##op;                                                  \
    static int first_##op(type *l)                                                                 \
    {                                                                                              \
        return ((int (*)(type *))resolve((AO_t *)&fsafe__real_##op, "pthread_" #op, NULL))(l);     \
    }
FSAFE__REAL_CALLS(REAL_SLOT)
