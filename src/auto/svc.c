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
 * any constructor has run.  dlsym takes only the loader's own lock. */
void *fsafe__next_sym(AO_t *slot, const char *name)
{
    void *p = (void *)AO_load_acquire(slot);
    if (likely(p != NULL))
        return p;
    p = dlsym(RTLD_NEXT, name);
    if (!p) {
        /* Nothing sensible can follow: every caller would fail. */
        if (fsafe__svc.vmsg) {
            fsafe__amsg("libfsafe-auto.so: dlsym(RTLD_NEXT) cannot find %s; aborting", name);
            abort();
        }
        static const char m1[] = "fsafe: libfsafe-auto.so: dlsym(RTLD_NEXT) cannot find ";
        static const char m2[] = "; aborting\n";
        (void)!write(2, m1, sizeof m1 - 1);
        (void)!write(2, name, __builtin_strlen(name));
        (void)!write(2, m2, sizeof m2 - 1);
        abort();
    }
    AO_store_release(slot, (AO_t)p);
    return p;
}

#define REAL_SLOT(op, type) AO_t fsafe__sym_##op;
FSAFE__REAL_CALLS(REAL_SLOT)
