/* SPDX-License-Identifier: MIT */
/*
 * Per-kind lock operations: acquire before fork (polling, so that a long wait
 * can be reported and abandoned), release in the parent, reset in the child.
 * fsafe__lock_postfork_child runs in the child of a multithreaded process: it
 * makes async-signal-safe calls only (glibc's mutex/rwlock/spin init and
 * attribute setters are plain stores), and never unlocks: owner thread ids are
 * stale in the child, so unlocking an inherited lock cannot be trusted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* How long one blocking attempt lasts before fsafe looks around again
 * (FSAFE_WARN_MS, pending unregisters). */
#define WAIT_SLICE_NS (10 * 1000 * 1000L)

/* Under ThreadSanitizer (FSAFE_TSAN, internal.h) fsafe uses only calls TSan
 * intercepts: it must see fork take each lock (timedlock; gcc 12's TSan does
 * not intercept the clocklock calls) and the child re-initialise it
 * (pthread_mutex_init, not plain stores), or it reports the child's reset as
 * a race with the parent's threads. */
/* ---- waiting ------------------------------------------------------------- */
/* The entry is looked up only here, off the walk's fast path. */
struct waiter {
    const struct fsafe__rec *r;
    struct fsafe__entry *e;
    int (*abandon)(const struct fsafe__rec *, uint64_t waited_ns);
    uint64_t start;
};

/* Deadlines are on CLOCK_MONOTONIC (pthread_*_clocklock), so that a step of the
 * wall clock cannot stretch a slice; only priority-inheritance mutexes, which
 * glibc may not support with CLOCK_MONOTONIC, use CLOCK_REALTIME.  The
 * clocklock calls are glibc's (2.30): with another libc (musl) every deadline
 * is on CLOCK_REALTIME, and a step of the wall clock stretches or cuts the
 * one slice it falls in. */
#ifdef __GLIBC__
#define HAVE_CLOCKLOCK 1
#else
#define HAVE_CLOCKLOCK 0
#define pthread_mutex_clocklock(m, clock, ts) ((void)(clock), pthread_mutex_timedlock(m, ts))
#define pthread_rwlock_clockwrlock(l, clock, ts) ((void)(clock), pthread_rwlock_timedwrlock(l, ts))
#endif
static void deadline_in(struct timespec *ts, clockid_t clock, long ns)
{
    clock_gettime(clock, ts);
    ts->tv_nsec += ns;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

#ifdef FSAFE__MUSL
/* 1 once a probe mutex, before main, showed musl's layout (FSAFE__MU_*,
 * internal.h); else 0 and the portable path (no owner known; the child
 * unlocks what the walk took, which musl refuses for an owned kind). */
static int mu_layout;

__attribute__((constructor)) static void mu_probe(void)
{
    pthread_mutex_t m;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    int ok = pthread_mutex_init(&m, &a) == 0;
    pthread_mutexattr_destroy(&a);
    if (!ok)
        return;
    ok = (FSAFE__MU_TYPE(&m) & FSAFE__MU_OWNED) == PTHREAD_MUTEX_RECURSIVE &&
         FSAFE__MU_LOCK(&m) == 0;
    pthread_mutex_lock(&m);
    pthread_mutex_lock(&m);
    ok = ok && (FSAFE__MU_LOCK(&m) & FSAFE__MU_TID) == fsafe__gettid() && FSAFE__MU_COUNT(&m) == 1;
    pthread_mutex_unlock(&m);
    pthread_mutex_unlock(&m);
    mu_layout = ok && FSAFE__MU_LOCK(&m) == 0;
    pthread_mutex_destroy(&m);
}

/* The owner musl records, or 0 (a plain NORMAL mutex records none). */
static pid_t mu_owner(const void *m)
{
    if (!mu_layout || !(FSAFE__MU_TYPE(m) & FSAFE__MU_OWNED))
        return 0;
    return FSAFE__MU_LOCK(m) & FSAFE__MU_TID;
}
#endif

/* The thread that holds e's lock, where the lock records it; 0 if unknown. */
static pid_t holder_of(const struct fsafe__entry *e)
{
#ifdef __GLIBC__
    if (e->kind == FSAFE_MUTEX)
        return (pid_t)AO_int_load((const unsigned *)fsafe__gl_mutex_owner(e->lock));
    if (e->kind == FSAFE_RWLOCK)
        return fsafe__gl_rwlock_writer(e->lock);
#elif defined(FSAFE__MUSL)
    if (e->kind == FSAFE_MUTEX)
        return mu_owner(e->lock);
#endif
    (void)e;
    return 0;
}

/* Called between attempts.  Returns non-zero to give up on the lock. */
static int waiter_tick(struct waiter *w)
{
    uint64_t waited = fsafe__now_ns() - w->start;
    if (waited > w->e->max_wait_ns)
        w->e->max_wait_ns = waited;
    long warn = fsafe__cfg.warn_ms;
    if (warn > 0 && !w->e->warned && waited >= (uint64_t)warn * 1000000u) {
        struct fsafe__entry *e = w->e;
        pid_t h = holder_of(e);
        e->warned = 1;
        if (h)
            fsafe__msg("fork has waited %lu ms for lock '%s' (rank %d, %p), held by thread %d",
                       (unsigned long)(waited / 1000000u), fsafe__entry_name(e), e->rank, e->lock,
                       (int)h);
        else
            fsafe__msg("fork has waited %lu ms for lock '%s' (rank %d, %p)",
                       (unsigned long)(waited / 1000000u), fsafe__entry_name(e), e->rank, e->lock);
    }
    return w->abandon(w->r, waited);
}

static void waiter_done(struct waiter *w)
{
    uint64_t waited = fsafe__now_ns() - w->start;
    if (waited > w->e->max_wait_ns)
        w->e->max_wait_ns = waited;
    if (w->e->warned) {
        fsafe__msg("fork got lock '%s' after %lu ms", fsafe__entry_name(w->e),
                   (unsigned long)(waited / 1000000u));
        w->e->warned = 0;
    }
}

/* Back-off for locks that offer only a try operation. */
static void pause_try(unsigned *round)
{
    if (*round < 64) {
        sched_yield();
    } else {
        struct timespec ts = {0, *round < 1024 ? 20 * 1000 : 200 * 1000};
        nanosleep(&ts, NULL);
    }
    (*round)++;
}

/*
 * Repeats one timed attempt of WAIT_SLICE_NS until it takes the lock, fails
 * for good, or the waiter gives up (then ETIMEDOUT).  realtime: the attempt
 * uses a CLOCK_REALTIME deadline (timedlock), else CLOCK_MONOTONIC.
 */
static int wait_slices(struct waiter *w, int (*attempt)(void *, const struct timespec *, int),
                       void *lock, int realtime)
{
    w->start = fsafe__now_ns();
    realtime |= !HAVE_CLOCKLOCK;
    for (;;) {
        struct timespec ts;
        deadline_in(&ts, realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, WAIT_SLICE_NS);
        int r = attempt(lock, &ts, realtime);
        if (r == ETIMEDOUT || r == EINTR || r == EAGAIN) {
            if (waiter_tick(w))
                return ETIMEDOUT;
            continue;
        }
        if (r == 0 || r == EOWNERDEAD)
            waiter_done(w);
        return r;
    }
}

static int mutex_attempt(void *m, const struct timespec *ts, int realtime)
{
    return realtime ? pthread_mutex_timedlock(m, ts)
                    : pthread_mutex_clocklock(m, CLOCK_MONOTONIC, ts);
}

static int rwlock_attempt(void *l, const struct timespec *ts, int realtime)
{
    return realtime ? pthread_rwlock_timedwrlock(l, ts)
                    : pthread_rwlock_clockwrlock(l, CLOCK_MONOTONIC, ts);
}

/* ---- mutex ---------------------------------------------------------------- */
static int mutex_held_by_self(pthread_mutex_t *m)
{
#ifdef __GLIBC__
    return *fsafe__gl_mutex_owner(m) == fsafe__gettid();
#elif defined(FSAFE__MUSL)
    pid_t o = mu_owner(m);
    return o && o == fsafe__gettid();
#else
    (void)m;
    return 0;
#endif
}

static int mutex_taken(struct fsafe__entry *e, pthread_mutex_t *m, int r)
{
    if (r == EOWNERDEAD) {
        /* We now hold a robust mutex whose owner died.  Releasing it
         * inconsistent would make it unrecoverable for the program, so mark it
         * consistent and say so. */
        pthread_mutex_consistent(m);
        fsafe__msg("robust mutex '%s' (%p): previous owner died; fork marked it consistent",
                   fsafe__entry_name(e), e->lock);
    }
    /* Nothing is recorded: the child reads the type, the ceiling and a
     * recursive mutex's depth from the mutex itself, which the fork copies
     * as it is now. */
    return FSAFE__HOW_ACQUIRED;
}

/* r: what the first trylock said (neither 0 nor EOWNERDEAD). */
static int mutex_acquire(struct fsafe__entry *e, struct waiter *w, int r)
{
    pthread_mutex_t *m = w->r->lock;
    if (r != EBUSY && r != EDEADLK)
        return FSAFE__HOW_NONE; /* ENOTRECOVERABLE, EINVAL: nothing to hold */
    /* glibc's trylock says EDEADLK, not EBUSY, for a robust, PI or PP
     * errorcheck mutex that the caller owns. */
    if (r == EDEADLK || mutex_held_by_self(m))
        return FSAFE__HOW_CALLER;
    if (!w->abandon)
        return FSAFE__HOW_NONE; /* never wait */
    int pi = 0;
#ifdef __GLIBC__
    pi = (fsafe__gl_mutex_kind(m) & FSAFE__GL_KIND_PI) != 0;
#endif
    /* TSan (gcc 12) does not intercept the clocklock calls. */
    r = wait_slices(w, mutex_attempt, m, pi || FSAFE_TSAN);
    if (r == 0 || r == EOWNERDEAD)
        return mutex_taken(e, m, r);
    return r == EDEADLK ? FSAFE__HOW_CALLER : FSAFE__HOW_NONE;
}

/*
 * Re-initialises a mutex in the child with the attributes it has (read from
 * the mutex: the fork copied it with its kind, ceiling and count intact), and
 * gives the child's thread back the holds the forking thread had: for a
 * recursive mutex fsafe took, the count beyond fsafe's own; for a mutex the
 * forking thread held itself (HOW_CALLER: a mutex that is not recursive, or
 * fsafe's trylock would have nested), its one hold.
 */
static void mutex_reset(pthread_mutex_t *m, int how, int orphaned)
{
#ifdef __GLIBC__
    int k = fsafe__gl_mutex_kind(m);
    unsigned depth = how == FSAFE__HOW_CALLER                               ? 1
                     : (k & FSAFE__GL_KIND_TYPE) == PTHREAD_MUTEX_RECURSIVE ? fsafe__gl_mutex_count(m) - 1
                                                                            : 0;
    if (orphaned)
        depth = 0;
    if (depth == 0 && fsafe__mutex_reset_plain(m) == 0)
        return;
    int ceiling = 0;
    if (k & FSAFE__GL_KIND_PP)
        pthread_mutex_getprioceiling(m, &ceiling);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, k & FSAFE__GL_KIND_TYPE);
    if (k & FSAFE__GL_KIND_ROBUST)
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (k & FSAFE__GL_KIND_PI)
        pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    if (k & FSAFE__GL_KIND_PP) {
        pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_PROTECT);
        pthread_mutexattr_setprioceiling(&a, ceiling);
    }
    /* Private memory: the child's copy is its own, whatever the attribute said. */
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_PRIVATE);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    for (unsigned i = 0; i < depth; i++)
        pthread_mutex_lock(m);
#else
#ifdef FSAFE__MUSL
    /* musl's fork gives the child's thread a new id but leaves the mutexes
     * the forking thread held owned by the old one, so no thread of the child
     * could unlock them.  The child's thread becomes their owner (no waiter
     * is left in the child; a robust mutex's owner-died bit was cleared when
     * the walk took it), and musl's own unlock then lets go of the walk's
     * hold, also taking the mutex off the thread's list of held ones. */
    if (mu_layout && (FSAFE__MU_TYPE(m) & FSAFE__MU_OWNED)) {
        FSAFE__MU_LOCK(m) = fsafe__gettid();
        if (orphaned)
            FSAFE__MU_COUNT(m) = 0;
        if (how == FSAFE__HOW_ACQUIRED || orphaned)
            pthread_mutex_unlock(m);
        return;
    }
#endif
    (void)orphaned;
    if (how == FSAFE__HOW_ACQUIRED)
        pthread_mutex_unlock(m);
#endif
}

/* ---- rwlock --------------------------------------------------------------- */
static int rwlock_held_by_self(pthread_rwlock_t *l)
{
#ifdef __GLIBC__
    return fsafe__gl_rwlock_writer(l) == fsafe__gettid();
#else
    (void)l;
    return 0;
#endif
}

static int rwlock_acquire(struct waiter *w)
{
    pthread_rwlock_t *l = w->r->lock;
    int r = pthread_rwlock_trywrlock(l);
    if (r == 0)
        return FSAFE__HOW_ACQUIRED;
    if (r != EBUSY)
        return FSAFE__HOW_NONE;
    if (rwlock_held_by_self(l))
        return FSAFE__HOW_CALLER;
    if (!w->abandon)
        return FSAFE__HOW_NONE;
    r = wait_slices(w, rwlock_attempt, l, FSAFE_TSAN);
    if (r == 0)
        return FSAFE__HOW_ACQUIRED;
    return r == EDEADLK ? FSAFE__HOW_CALLER : FSAFE__HOW_NONE;
}

static void rwlock_reset(pthread_rwlock_t *l, int how, int orphaned)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
#ifdef __GLIBC__
    pthread_rwlockattr_setkind_np(&a, fsafe__gl_rwlock_pref(l)); /* its reader/writer preference */
#endif
    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_PRIVATE);
    pthread_rwlock_init(l, &a);
    pthread_rwlockattr_destroy(&a);
    if (how == FSAFE__HOW_CALLER && !orphaned)
        pthread_rwlock_wrlock(l);
}

/* ---- spinlock and ops ------------------------------------------------------ */
static int spin_acquire(struct waiter *w)
{
    pthread_spinlock_t *s = w->r->lock;
    if (pthread_spin_trylock(s) == 0)
        return FSAFE__HOW_ACQUIRED;
    if (!w->abandon)
        return FSAFE__HOW_NONE;
    unsigned round = 0;
    w->start = fsafe__now_ns();
    for (;;) {
        pause_try(&round);
        if (pthread_spin_trylock(s) == 0) {
            waiter_done(w);
            return FSAFE__HOW_ACQUIRED;
        }
        if ((round & 15) == 0 && waiter_tick(w))
            return FSAFE__HOW_NONE;
    }
}

static int ops_acquire(struct waiter *w)
{
    struct fsafe__entry *e = w->e;
    const struct fsafe_lock_ops *ops = fsafe__entry_ops(e);
    if (!ops->try_acquire)
        return ops->acquire(e->lock) == 0 ? FSAFE__HOW_ACQUIRED : FSAFE__HOW_NONE;
    if (ops->try_acquire(e->lock) == 0)
        return FSAFE__HOW_ACQUIRED;
    if (!w->abandon) /* (no polling: block as the acquire callback does) */
        return ops->acquire(e->lock) == 0 ? FSAFE__HOW_ACQUIRED : FSAFE__HOW_NONE;
    unsigned round = 0;
    w->start = fsafe__now_ns();
    for (;;) {
        pause_try(&round);
        if (ops->try_acquire(e->lock) == 0) {
            waiter_done(w);
            return FSAFE__HOW_ACQUIRED;
        }
        if ((round & 15) == 0 && waiter_tick(w))
            return FSAFE__HOW_NONE;
    }
}

/* ---- dispatch --------------------------------------------------------------- */
int fsafe__lock_acquire(const struct fsafe__rec *r,
                        int (*abandon)(const struct fsafe__rec *, uint64_t))
{
    struct waiter w = {r, NULL, abandon, 0};
    if (r->kind == FSAFE_MUTEX) {
        /* The fast path reads nothing but the record and the mutex. */
        int t = pthread_mutex_trylock(r->lock);
        if (t == 0)
            return FSAFE__HOW_ACQUIRED;
        w.e = fsafe__store_entry(r->entry);
        if (t == EOWNERDEAD)
            return mutex_taken(w.e, r->lock, t);
        return mutex_acquire(w.e, &w, t);
    }
    w.e = fsafe__store_entry(r->entry);
    switch (r->kind) {
    case FSAFE_RWLOCK:
        return rwlock_acquire(&w);
    case FSAFE_SPINLOCK:
        return spin_acquire(&w);
    case FSAFE__KIND_OPS:
        return ops_acquire(&w);
    }
    return FSAFE__HOW_NONE;
}

/* Only locks the walk holds as taken (HOW_ACQUIRED) come here: the caller's
 * own holds stay the caller's. */
void fsafe__lock_postfork_parent(const struct fsafe__rec *r)
{
    switch (r->kind) {
    case FSAFE_MUTEX:
        pthread_mutex_unlock(r->lock);
        break;
    case FSAFE_RWLOCK:
        pthread_rwlock_unlock(r->lock);
        break;
    case FSAFE_SPINLOCK:
        pthread_spin_unlock(r->lock);
        break;
    case FSAFE__KIND_OPS:
        fsafe__entry_ops(fsafe__store_entry(r->entry))->release_parent(r->lock);
        break;
    }
}

void fsafe__lock_postfork_child(const struct fsafe__rec *r, int how, int orphaned)
{
    if (r->mem & FSAFE__MEM_SHARED)
        return; /* one lock word for both processes: the parent releases it */
    switch (r->kind) {
    case FSAFE_MUTEX:
        mutex_reset(r->lock, how, orphaned);
        break;
    case FSAFE_RWLOCK:
        rwlock_reset(r->lock, how, orphaned);
        break;
    case FSAFE_SPINLOCK:
        /* glibc's spinlock has no owner; the caller's hold (if any) is
         * indistinguishable from ours, so it is released like ours. */
        pthread_spin_init(r->lock, PTHREAD_PROCESS_PRIVATE);
        break;
    case FSAFE__KIND_OPS:
        if (how == FSAFE__HOW_ACQUIRED)
            fsafe__entry_ops(fsafe__store_entry(r->entry))->release_child(r->lock);
        break;
    }
}

void fsafe__lock_reset_unlocked(void *lock, int kind)
{
    switch (kind) {
    case FSAFE_MUTEX:
        mutex_reset(lock, FSAFE__HOW_ACQUIRED, 1);
        break;
    case FSAFE_RWLOCK:
        rwlock_reset(lock, FSAFE__HOW_ACQUIRED, 1);
        break;
    case FSAFE_SPINLOCK:
        pthread_spin_init(lock, PTHREAD_PROCESS_PRIVATE);
        break;
    }
}

/* ---- is the lock word shared with the child? -------------------------------- */
/* Whether this kind of lock can be process-shared at all, judged from the lock
 * itself; only then is /proc/self/maps consulted. */
static int may_be_pshared(const void *lock, int kind)
{
#ifdef __GLIBC__
    if (kind == FSAFE_MUTEX)
        return (fsafe__gl_mutex_kind(lock) & FSAFE__GL_KIND_PSHARED) != 0;
    if (kind == FSAFE_RWLOCK)
        return fsafe__gl_rwlock_pshared(lock);
#elif defined(FSAFE__MUSL)
    if (kind == FSAFE_MUTEX && mu_layout)
        return (FSAFE__MU_TYPE(lock) & FSAFE__MU_PSHARED) != 0;
#endif
    (void)lock, (void)kind;
    return 1; /* spinlocks carry no such mark */
}

/* 1 if the lock may be process-shared and its mapping is shared ('s'). */
int fsafe__lock_mem_shared(const void *lock, int kind)
{
    char perms[4];
    uintptr_t end;
    if (!may_be_pshared(lock, kind) || fsafe__maps_lookup(lock, perms, &end) != 0)
        return 0;
    return perms[3] == 's';
}

int fsafe__lock_has_waiters(const void *lock, int kind)
{
#ifdef __GLIBC__
    if (kind == FSAFE_MUTEX) {
        /* lowlevellock: 2 = locked, maybe waiters; robust and PI mutexes hold
         * the owner's id with FUTEX_WAITERS set once someone waits. */
        unsigned w = (unsigned)*fsafe__gl_mutex_word(lock);
        return w == 2 || (w & FSAFE__GL_FUTEX_WAITERS) != 0;
    }
#endif
    (void)lock, (void)kind;
    return -1;
}
