/* SPDX-License-Identifier: MIT */
/*
 * GLib's GMutex under auto mode (issue 24).
 *
 * On Linux a GMutex is one futex word (GLib >= 2.54, gthread-posix.c: 0 free,
 * 1 held, 2 held with waiters) that g_mutex_lock takes with an atomic
 * operation: no pthread call, so lock tracking never sees it, and a GMutex
 * another thread held at the fork stays held in the child.  These
 * interposers track the program's calls like pthread mutex calls (kind
 * FSAFE__AT_WORD): the fork waits until no other thread holds one, and a
 * lock still held when the wait runs out is stored free (0) in the child,
 * which GLib accepts (g_mutex_init stores the same).
 *
 * g_cond_wait releases and retakes its GMutex inside GLib, by direct calls
 * (libglib is linked -Bsymbolic-functions): the hold is marked WAITING for
 * the wait, and the forker takes the free word itself (fork.c) so that
 * the waiter cannot take it back across the fork, as for pthread_cond_wait.
 *
 * Not seen, by the same -Bsymbolic-functions: GLib's calls to its own
 * g_mutex_* (GMainContext, GAsyncQueue, GThreadPool's queue, g_once, the
 * type system...).  GRecMutex and GRWLock are pthread objects inside GLib
 * 2.74; GLib's calls of pthread_mutex_lock and pthread_rwlock_* go through
 * the PLT, so they are tracked as pthread locks already.
 */
#include "auto.h"

#include <stdint.h>

#define CALLER ((uintptr_t)__builtin_return_address(0))

/* GLib's types, as far as these calls need them (glib/gthread.h). */
typedef union {
    void *p;
    unsigned i[2];
} GMutex;
typedef struct GCond GCond;
typedef struct GTimeVal GTimeVal;
typedef int gboolean;

static AO_t real_lock, real_trylock, real_unlock, real_wait, real_wait_until, real_timed_wait;

FSAFE_EXPORT void g_mutex_lock(GMutex *m)
{
    void (*real_)(GMutex *) = FSAFE__NEXT_IN(&real_lock, void (*)(GMutex *), "g_mutex_lock");
    long slot = fsafe__at_lock_begin(m, FSAFE__AT_WORD, FSAFE__AT_EXCL, CALLER);
    if (slot == FSAFE__AT_FORKER_CALL && fsafe__at_handover(m))
        return; /* an atfork handler's call: the forker took it for a waiter */
    real_(m);
    fsafe__at_lock_done(slot, m, FSAFE__AT_WORD, FSAFE__AT_EXCL);
}

FSAFE_EXPORT gboolean g_mutex_trylock(GMutex *m)
{
    gboolean (*real_)(GMutex *) =
        FSAFE__NEXT_IN(&real_trylock, gboolean(*)(GMutex *), "g_mutex_trylock");
    long slot = fsafe__at_lock_begin(m, FSAFE__AT_WORD, FSAFE__AT_EXCL, CALLER);
    if (slot == FSAFE__AT_FORKER_CALL && fsafe__at_handover(m))
        return 1;
    gboolean r = real_(m);
    if (r)
        fsafe__at_lock_done(slot, m, FSAFE__AT_WORD, FSAFE__AT_EXCL);
    else
        fsafe__at_lock_cancel(slot);
    return r;
}

FSAFE_EXPORT void g_mutex_unlock(GMutex *m)
{
    FSAFE__NEXT_IN(&real_unlock, void (*)(GMutex *), "g_mutex_unlock")(m);
    fsafe__at_unlocked(m);
}

FSAFE_EXPORT void g_cond_wait(GCond *c, GMutex *m)
{
    void (*real_)(GCond *, GMutex *) =
        FSAFE__NEXT_IN(&real_wait, void (*)(GCond *, GMutex *), "g_cond_wait");
    long slot = fsafe__at_wait_begin(m, FSAFE__AT_WORD, CALLER);
    real_(c, m);
    fsafe__at_wait_end(slot);
}

FSAFE_EXPORT gboolean g_cond_wait_until(GCond *c, GMutex *m, int64_t end_time)
{
    gboolean (*real_)(GCond *, GMutex *, int64_t) = FSAFE__NEXT_IN(
        &real_wait_until, gboolean(*)(GCond *, GMutex *, int64_t), "g_cond_wait_until");
    long slot = fsafe__at_wait_begin(m, FSAFE__AT_WORD, CALLER);
    gboolean r = real_(c, m, end_time);
    fsafe__at_wait_end(slot);
    return r;
}

/* Deprecated since GLib 2.32, still exported; it waits with
 * g_cond_wait_until inside GLib. */
FSAFE_EXPORT gboolean g_cond_timed_wait(GCond *c, GMutex *m, GTimeVal *abs_time)
{
    gboolean (*real_)(GCond *, GMutex *, GTimeVal *) = FSAFE__NEXT_IN(
        &real_timed_wait, gboolean(*)(GCond *, GMutex *, GTimeVal *), "g_cond_timed_wait");
    long slot = fsafe__at_wait_begin(m, FSAFE__AT_WORD, CALLER);
    gboolean r = real_(c, m, abs_time);
    fsafe__at_wait_end(slot);
    return r;
}
