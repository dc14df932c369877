/* SPDX-License-Identifier: MIT */
/*
 * Auto mode at fork: the forker announces the fork, waits (within
 * FSAFE_AUTO_WAIT_MS) until no other thread holds a tracked lock or is inside
 * a gated libc call, takes the mutexes of threads parked in a condition wait,
 * and lets libfsafe fork.  The child re-initialises what the forker took, the
 * condition variables other threads waited on, and (by default) the locks
 * still held when the wait ran out; the forker's own holds stay its own.
 * The child half is async-signal-safe; names are looked up only in the
 * parent, after the other threads run again (dladdr takes the loader lock,
 * which a parked thread may hold).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "auto.h"

/* ---- the forker's state (gate owner only) ---------------------------------------- */
#define MAX_TAKEN 256 /* mutexes taken from condition waiters */
#define MAX_NOTED 64  /* holds remembered for the report and the child */

struct noted {
    void *lock;
    uintptr_t caller;
    pid_t tid;
    unsigned char kind, mode, state, shared_mem;
};

static struct {
    void *mutex;
    void *cond;
    int kind;       /* FSAFE_MUTEX, or FSAFE__AT_WORD (a GMutex) */
    int shared_mem; /* one lock word with the child: the parent releases it */
} taken[MAX_TAKEN];
static int ntaken, taken_overflow;
static void *conds[MAX_TAKEN]; /* condition variables other threads wait on */
static int nconds;
static struct noted seen[MAX_NOTED]; /* busy holds at the first look (report) */
static int nseen, seen_more;
static struct noted stuck[MAX_NOTED]; /* busy holds when the wait ran out */
static int nstuck, stuck_more;
/* Holds of threads inside fork() at the last look: they cannot change before
 * this fork, so it does not wait for them; the child resets them like stuck
 * ones. */
static struct noted frozen[MAX_NOTED];
static int nfrozen, frozen_more;
static uint64_t waited_ns;
static int handed; /* mutexes handed over to atfork handlers (handover) */
static int timed_out;
static struct fsafe__at_thread *forker;
static int membarrier_ok;
static int fork_open; /* FSAFE__AT_CLOSED is clear: monitors' mutexes pass */
/* Set by auto_postfork_parent when it ended this thread's "inside fork()" mark
 * (fork() below then leaves the count alone). */
static __thread int fork_ended;

static int took(const void *m)
{
    for (int i = 0; i < ntaken; i++)
        if (taken[i].mutex == m)
            return 1;
    return 0;
}

/* A futex-word lock (FSAFE__AT_WORD: 0 free, 1 held, more: held with
 * waiters, as GLib's GMutex): taken only when free; its release wakes one
 * waiter when there may be one (private or not: GLib versions differ). */
static int word_trylock(void *w)
{
    int zero = 0;
    return __atomic_compare_exchange_n((int *)w, &zero, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)
               ? 0
               : EBUSY;
}

static void word_unlock(void *w)
{
    if (__atomic_exchange_n((int *)w, 0, __ATOMIC_RELEASE) != 1) {
        syscall(SYS_futex, (int *)w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        syscall(SYS_futex, (int *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
}

/* The child's reset of a lock of any tracked kind; async-signal-safe. */
static void reset_lock(void *lock, int kind)
{
    if (kind == FSAFE__AT_WORD)
        *(volatile int *)lock = 0;
    else if (kind == FSAFE__AT_ABSL)
        return; /* abseil's own state: left as it is (absl.c) */
    else
        fsafe__svc.reset_unlocked(lock, kind);
}

static void note_cond(void *c)
{
    for (int i = 0; i < nconds; i++)
        if (conds[i] == c)
            return;
    if (nconds < MAX_TAKEN)
        conds[nconds++] = c;
}

/* Threads inside fork() at this look (their holds stay until after it). */
#define MAX_IN_FORK 16
static struct fsafe__at_thread *in_fork[MAX_IN_FORK];
static int nin_fork;

/* Whether t holds lock (held, not being acquired: a fork from a signal
 * handler may have interrupted the forker's own lock call) in a mode that
 * keeps a taker in mode out.  For a gate: the forker's own gated call (a fork
 * from a dl_iterate_phdr callback, a constructor run by dlopen, or a signal
 * handler that interrupted a gated call) may hold that family's libc lock, so
 * other callers may be blocked on it and are not waited for; another thread
 * inside fork() excludes them only from an exclusive gate (the loader), and
 * otherwise the fork backs off for it (backoff_helps). */
static int holds_against(const struct fsafe__at_thread *t, const void *lock, int mode)
{
    int own = t == forker;
    AO_t n = AO_load_acquire(&t->n);
    for (AO_t j = 0; j < n && j < FSAFE__AT_CAP; j++) {
        const struct fsafe__at_entry *e = &t->e[j];
        if (fsafe__at_lock(e) != lock || fsafe__at_estate(e) != FSAFE__AT_HELD)
            continue;
        if (fsafe__at_kind(e) == FSAFE__AT_GATE) {
            if (own || ((const struct fsafe__gate *)lock)->exclusive)
                return 1;
            continue;
        }
        if (fsafe__at_mode(e) == FSAFE__AT_EXCL || mode == FSAFE__AT_EXCL)
            return 1;
    }
    return 0;
}

/* Whether no other thread can take lock in mode before this fork: the forker
 * holds it (or took it from a waiter), or a thread inside fork() does.
 * Another thread's entry for it is an acquisition blocked until after the
 * fork (a writer behind the forker's read hold too). */
static int forker_excludes(const void *lock, int mode)
{
    if (took(lock))
        return 1;
    if (forker && holds_against(forker, lock, mode))
        return 1;
    for (int i = 0; i < nin_fork; i++)
        if (holds_against(in_fork[i], lock, mode))
            return 1;
    return 0;
}

/* Remembers one hold or lock call of t, once (a recursive mutex held twice,
 * or a thread seen at two looks, is one line of the report). */
static void note(struct noted *list, int *count, int *more, const struct fsafe__at_thread *t,
                 const struct fsafe__at_entry *e, void *lock)
{
    int state = e ? fsafe__at_estate(e) : FSAFE__AT_HELD;
    for (int i = 0; i < *count; i++)
        if (list[i].lock == lock && list[i].tid == t->tid && list[i].state == state)
            return;
    if (*count >= MAX_NOTED) {
        (*more)++;
        return;
    }
    struct noted *x = &list[(*count)++];
    x->lock = lock;
    x->caller = e ? AO_load(&e->caller) : 0;
    x->tid = t->tid;
    x->kind = (unsigned char)(e ? fsafe__at_kind(e) : 0);
    x->mode = (unsigned char)(e ? fsafe__at_mode(e) : 0);
    x->state = (unsigned char)state;
    x->shared_mem = 0;
}

static void release_taken(void);

/*
 * Whether a thread blocked on a monitor's mutex the forker took gets it back:
 * it may be on its way out of a logical critical section (a flag lock's
 * release takes the mutex first).  Twice per thread and fork: once on its way
 * in and once on its way out of a flag lock; after its release it parks
 * (the signal rule, track.c).  Without a bound, a queue kept busy by
 * several threads held forks open for the whole open phase.
 */
#define GIVE_BACKS 2
static int give_back(struct fsafe__at_thread *t)
{
    AO_t seq = AO_load(&fsafe__at_fork_seq);
    AO_t g = AO_load(&t->given_back); /* seq * 4 + count */
    AO_t count = g / 4 == seq ? g % 4 : 0;
    if (count >= GIVE_BACKS)
        return 0;
    AO_store(&t->given_back, seq * 4 + count + 1);
    return 1;
}

/*
 * One look at every other thread's record.  Returns the number of holds that
 * keep the fork waiting; with into != NULL, remembers them there.
 *
 * A thread in a condition wait has given its mutex back; the forker takes it
 * so that the waiter cannot leave the wait across the fork.  It takes such
 * mutexes only when nothing else keeps the fork waiting (a critical section
 * still running may need one: with it taken, that section would block until
 * the fork gives up waiting), and lets them go again as soon as something
 * does.  A look that took a mutex counts as busy: the next one confirms.
 * The last look (the wait ran out) takes what it can and keeps it.
 */
/* Condition waiters (and threads on their way into a monitor's mutex) whose
 * mutexes this look would take: gathered by scan_holds, taken by
 * take_waits once nothing else is busy. */
struct wait {
    void *mutex, *cond;
    int kind;
};
static struct wait waits[MAX_TAKEN];
static int nwaits;

/* Whether thread t, waiting to fork while it holds something, gives way to
 * this fork: the forker holds something too and has the lower thread id
 * (backoff_helps, the other side of the rule). */
static int yields_to_forker(const struct fsafe__at_thread *t)
{
    return forker && AO_load(&forker->n) != 0 && forker->tid < t->tid;
}

/* One thread's holds: adds to waits; returns how many are busy (noted in
 * into when it is not NULL). */
static int scan_holds(struct fsafe__at_thread *t, struct noted *into, int *count, int *more)
{
    int busy = 0;
    AO_t n = AO_load_acquire(&t->n);
    if (n == 0)
        return 0;
    int forking = AO_load_acquire(&t->forking) != 0;
    if (n > FSAFE__AT_CAP) {
        busy++; /* holds it could not record */
        if (into)
            note(into, count, more, t, NULL, NULL);
    }
    for (AO_t j = 0; j < n && j < FSAFE__AT_CAP; j++) {
        struct fsafe__at_entry *e = &t->e[j];
        void *lock = fsafe__at_lock(e);
        int state = fsafe__at_estate(e);
        AO_nop_read(); /* HELD read before the lock word */
        if (!lock || lock == FSAFE__AT_ANON) {
            busy++; /* a slot being filled in (look again), or a hold not known */
            continue;
        }
        if (forking && state != FSAFE__AT_WAITING &&
            !(state == FSAFE__AT_HELD && fsafe__at_kind(e) == FSAFE__AT_GATE &&
              !yields_to_forker(t))) {
            /* Two threads that fork holding locks cannot wait for each
             * other: neither lets go before its fork returns.  A gate
             * is the exception: libc's lock behind it cannot be reset in
             * the child, so it stays busy and the fork backs off for
             * that thread (backoff_helps), unless that thread is the one
             * that backs off: then it waits for this fork at the gate and
             * its call cannot end first (the child may find the call's
             * libc lock held, as after a wait that ran out). */
            if (state == FSAFE__AT_HELD)
                note(frozen, &nfrozen, &frozen_more, t, e, lock);
            continue;
        }
        int waiting = state == FSAFE__AT_WAITING &&
                      (fsafe__at_kind(e) == FSAFE_MUTEX || fsafe__at_kind(e) == FSAFE__AT_WORD);
        if (waiting || (state == FSAFE__AT_ACQUIRING && fsafe__at_kind(e) == FSAFE_MUTEX &&
                        fsafe__at_is_monitor(lock))) {
            /* A waiter, or a thread on its way into a monitor's mutex
             * while the fork was open: with its mutex taken (or held by
             * the forker itself) it stays in its wait, or blocks in the
             * lock call, until after the fork.  While the fork is still
             * open, a thread blocked on a mutex the forker took gets it
             * back (give_back). */
            if (!waiting && fork_open && took(lock) && give_back(t)) {
                busy++;
                if (into)
                    note(into, count, more, t, e, lock);
                continue;
            }
            if (!forker_excludes(lock, FSAFE__AT_EXCL)) {
                if (nwaits < MAX_TAKEN) {
                    waits[nwaits].kind = fsafe__at_kind(e);
                    waits[nwaits].mutex = lock;
                    waits[nwaits++].cond = waiting ? (void *)AO_load(&e->cond) : NULL;
                } else {
                    taken_overflow = 1;
                    busy++;
                }
            }
            continue;
        }
        if (state == FSAFE__AT_WAITING && fsafe__at_kind(e) == FSAFE__AT_ABSL)
            continue; /* released inside abseil for the wait (absl.c) */
        if (forker_excludes(lock, fsafe__at_mode(e)))
            continue;
        if (state == FSAFE__AT_HELD && fsafe__at_kind(e) != FSAFE__AT_GATE &&
            fsafe__at_mode(e) == FSAFE__AT_EXCL && fsafe__at_lock_free(lock, fsafe__at_kind(e)))
            continue; /* released, by its owner or another thread: a stale record */
        busy++;
        if (into)
            note(into, count, more, t, e, lock);
    }
    return busy;
}

/* Takes the gathered waiters' mutexes while nothing is busy (or on the last
 * look); returns busy plus the mutexes that could not be taken. */
static int take_waits(int busy, int last)
{
    for (int i = 0; i < nwaits && (!busy || last); i++) {
        if (took(waits[i].mutex)) {
            if (waits[i].cond)
                for (int k = 0; k < ntaken; k++)
                    if (taken[k].mutex == waits[i].mutex && !taken[k].cond)
                        taken[k].cond = waits[i].cond;
            continue;
        }
        int word = waits[i].kind == FSAFE__AT_WORD;
        if (ntaken < MAX_TAKEN && (word ? word_trylock(waits[i].mutex)
                                        : fsafe__real_mutex_trylock(waits[i].mutex)) == 0) {
            taken[ntaken].mutex = waits[i].mutex;
            taken[ntaken].kind = waits[i].kind;
            taken[ntaken].shared_mem = fsafe__svc.mem_shared(waits[i].mutex, waits[i].kind);
            taken[ntaken++].cond = waits[i].cond;
        } else {
            if (ntaken >= MAX_TAKEN)
                taken_overflow = 1;
            busy++; /* its waiter is waking up with it */
        }
    }
    return busy;
}

static int scan(struct noted *into, int *count, int *more, int last)
{
    int busy = 0;
    nwaits = 0;
    nfrozen = frozen_more = nin_fork = 0;
    for (struct fsafe__at_thread *t =
             (struct fsafe__at_thread *)AO_load_acquire(&fsafe__at_threads);
         t && nin_fork < MAX_IN_FORK; t = t->next)
        if (t != forker && fsafe__at_live(&t->in_use) && AO_load_acquire(&t->forking))
            in_fork[nin_fork++] = t;
    for (struct fsafe__at_thread *t =
             (struct fsafe__at_thread *)AO_load_acquire(&fsafe__at_threads);
         t; t = t->next)
        if (t != forker && fsafe__at_live(&t->in_use))
            busy += scan_holds(t, into, count, more);
    if (!busy || last)
        busy = take_waits(busy, last);
    if (busy) {
        if (!last)
            release_taken();
        return busy;
    }
    return nwaits; /* 0: every waiter's mutex was already taken or the forker's */
}

/* The condition variables of the waits the fork leaves behind: those of the
 * last look, whose mutexes the forker holds. */
static void note_waits(void)
{
    nconds = 0;
    for (int i = 0; i < ntaken; i++)
        if (taken[i].cond)
            note_cond(taken[i].cond);
    for (struct fsafe__at_thread *t =
             (struct fsafe__at_thread *)AO_load_acquire(&fsafe__at_threads);
         t; t = t->next) {
        if (t == forker || !fsafe__at_live(&t->in_use))
            continue;
        AO_t n = AO_load_acquire(&t->n);
        for (AO_t j = 0; j < n && j < FSAFE__AT_CAP; j++) {
            struct fsafe__at_entry *e = &t->e[j];
            if (fsafe__at_estate(e) == FSAFE__AT_WAITING && fsafe__at_kind(e) == FSAFE_MUTEX &&
                fsafe__at_lock(e) && fsafe__at_lock(e) != FSAFE__AT_ANON &&
                (void *)AO_load(&e->cond) && forker_excludes(fsafe__at_lock(e), FSAFE__AT_EXCL))
                note_cond((void *)AO_load(&e->cond));
        }
    }
}

/* Whether to give the gate to a thread waiting to fork: one that holds
 * tracked locks may hold what this fork waits for.  A waiter that did not
 * come through this library's fork() (fsafe_fork(), daemon()) says nothing
 * about its holds: back off for it as well.  Between two forkers that both
 * hold something, only the one with the higher thread id backs off: two
 * handlers that fork from inside two gated calls of one glibc lock (one
 * holds it, the other waits for it) otherwise backed off for each other
 * without end, each restarting its FSAFE_AUTO_WAIT_MS (the parent hung in
 * 5 of 6 runs of test_libc_locks sched_fork).  The lower one waits, within
 * its bound, and forks; then the other. */
static int backoff_helps(void)
{
    if (!fsafe__svc.gate_contended())
        return 0;
    int marked = 0;
    for (struct fsafe__at_thread *t =
             (struct fsafe__at_thread *)AO_load_acquire(&fsafe__at_threads);
         t; t = t->next) {
        if (t == forker || !fsafe__at_live(&t->in_use) || !AO_load_acquire(&t->forking))
            continue;
        if (AO_load_acquire(&t->n) != 0 && !yields_to_forker(t))
            return 1;
        marked++;
    }
    return marked == 0;
}

/* The forker's side of dl_load_lock (libc.c): once every other thread
 * is quiet, the fork takes the loader's lock too.  Returns whether another
 * thread holds it (inside dlopen, dlclose or a lazy binding). */
static pid_t loader_holder;
static struct fsafe__gate loader_lock = {"the loader's dl_load_lock (a dlopen, dlclose or lazy "
                                         "binding under way; the child's next dlopen may abort)",
                                         1};

static int loader_busy(void)
{
    return fsafe__loader_take(&loader_holder) != 0;
}

/*
 * Between two looks: a sleep that the last holder's release ends (quiet_now
 * in track.c), bounded for what no release announces (a waiter's mutex
 * coming free, a thread parking).  before: the word as it was before the
 * look that found something busy.
 *
 * Never sched_yield() here.  Linux's EEVDF scheduler (6.6 and later,
 * yield_task_fair) moves a yielding task's deadline one slice later (since
 * 6.17 its vruntime too), so a forker that had yielded its way through the
 * wait came last among the busy threads at every later preemption, such as
 * the copy-on-write faults right after the fork: with 8 busy threads on 2
 * cores, fork latency p90 5-6 ms against 1.1 ms plain, p99 11-12 ms against
 * 7.5-9 ms (16 yields, then this sleep; test/bench/README.md, "Session 37").
 * A sleep keeps the forker's place.
 */
static void pause_round(unsigned round, AO_t before)
{
    struct timespec ts = {0, round < 200 ? 50 * 1000 : 500 * 1000};
    AO_store(&fsafe__at_forker_sleeps, 1);
    AO_nop_full();
    syscall(SYS_futex, (int *)&fsafe__at_quiet_seq, FUTEX_WAIT_PRIVATE, (unsigned)before, &ts, NULL,
            0);
    AO_store(&fsafe__at_forker_sleeps, 0);
}

static int handover(void *mutex)
{
    for (int i = 0; i < ntaken; i++)
        if (taken[i].mutex == mutex) {
            /* Its condition variable is still reset in the child (note_waits
             * kept it): the waiter is gone either way. */
            taken[i] = taken[--ntaken];
            handed++;
            return 1;
        }
    if (fsafe__svc.walk_handover(mutex)) {
        handed++; /* a registered mutex the walk took */
        return 1;
    }
    return 0;
}

static void release_taken(void)
{
    for (int i = ntaken - 1; i >= 0; i--) {
        if (taken[i].kind == FSAFE__AT_WORD)
            word_unlock(taken[i].mutex);
        else
            fsafe__real_mutex_unlock(taken[i].mutex);
    }
    ntaken = 0;
}

/* ---- ext ops ------------------------------------------------------------------------ */
/* The forker's half of the Dekker pair (track.c), after each change of
 * the state word that parks more threads: a full barrier on every thread, so
 * that each hold published before it is visible to the next look. */
static void barrier_all(void)
{
    if (membarrier_ok)
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    else
        AO_nop_full(); /* the threads fence themselves (FSAFE__AT_FENCE) */
}

static void set_open(int open)
{
    fork_open = open;
    fsafe__at_set_closed(!open, 0);
}

/* The fork starts closed: every lock call of a thread that holds nothing
 * parks, so a first look that finds nothing busy can fork at once. */
static void announce(void)
{
    AO_store_release(&fsafe__at_fork_owner_tid, (AO_t)syscall(SYS_gettid));
    AO_store_release(&fsafe__at_fork_owner, fsafe__self_id());
    AO_t seq = AO_load(&fsafe__at_fork_seq) + 1;
    AO_store_release(&fsafe__at_fork_seq, seq);
    AO_t w = AO_load_acquire(&fsafe__at_state) & ~FSAFE__AT_FORK_BITS;
    AO_store_release(&fsafe__at_state, w | FSAFE__AT_PENDING | FSAFE__AT_CLOSED |
                                           ((seq << FSAFE__AT_GEN_SHIFT) & FSAFE__AT_GEN_MASK));
    barrier_all();
}

static void unpark(void)
{
    AO_store_release(&fsafe__at_fork_owner, 0);
    AO_store_release(&fsafe__at_fork_owner_tid, 0);
    fsafe__at_unpark_all();
}

static int auto_prefork(void)
{
    if (!fsafe__auto_on)
        return 0;
    int saved = errno;
    fsafe__watch_prefork();
    forker = fsafe__at_current();
    ntaken = nconds = nseen = seen_more = nstuck = stuck_more = nfrozen = frozen_more = handed = 0;
    taken_overflow = timed_out = 0;
    waited_ns = 0;
    fork_open = 0;
    announce();
    uint64_t t0 = fsafe__svc.now_ns();
    uint64_t limit = (uint64_t)fsafe__svc.cfg->auto_wait_ms * 1000000u;
    uint64_t open_limit = limit / 4;
    AO_t quiet = AO_load_acquire(&fsafe__at_quiet_seq);
    int busy = scan(seen, &nseen, &seen_more, 0) || loader_busy();
    /* Something is busy: open the fork, so that a thread on its way out of
     * a monitor's logical critical section is not parked at its mutex. */
    if (busy && open_limit && AO_load_acquire(&fsafe__at_monitors))
        set_open(1);
    for (unsigned round = 0; busy; round++) {
        uint64_t dt = fsafe__svc.now_ns() - t0;
        if (fork_open && dt >= open_limit) {
            /* Open long enough: from here on every lock call parks. */
            fork_open = 0;
            fsafe__at_set_closed(1, 1);
            barrier_all();
        }
        if (dt >= limit) {
            nstuck = stuck_more = 0;
            scan(stuck, &nstuck, &stuck_more, 1);
            if (nstuck == 0 && stuck_more == 0 && loader_busy()) {
                struct noted *x = &stuck[nstuck++];
                *x = (struct noted){.lock = &loader_lock,
                                    .tid = loader_holder,
                                    .kind = FSAFE__AT_GATE,
                                    .state = FSAFE__AT_HELD};
            }
            timed_out = nstuck + stuck_more > 0; /* (else quiet at the last look) */
            break;
        }
        if (round > 0 && (round & 7) == 0 && backoff_helps()) {
            /* A thread waiting to fork may hold what this fork waits for. */
            release_taken();
            unpark();
            errno = saved;
            return -1;
        }
        pause_round(round, quiet);
        quiet = AO_load_acquire(&fsafe__at_quiet_seq);
        busy = scan(NULL, NULL, NULL, 0);
        if (!busy && fork_open) {
            /* Quiet while open: close, and look once more, since a thread
             * may have passed a monitor's mutex after that look. */
            set_open(0);
            barrier_all();
            if ((busy = scan(NULL, NULL, NULL, 0)) != 0)
                set_open(1);
        }
        if (!busy)
            busy = loader_busy();
    }
    waited_ns = fsafe__svc.now_ns() - t0;
    note_waits();
    if (timed_out && !fsafe__svc.cfg->auto_keep)
        for (int i = 0; i < nstuck; i++)
            if (stuck[i].lock && stuck[i].kind != FSAFE__AT_GATE)
                stuck[i].shared_mem =
                    (unsigned char)fsafe__svc.mem_shared(stuck[i].lock, stuck[i].kind);
    if (!fsafe__svc.cfg->auto_keep)
        for (int i = 0; i < nfrozen; i++)
            frozen[i].shared_mem =
                (unsigned char)fsafe__svc.mem_shared(frozen[i].lock, frozen[i].kind);
    errno = saved;
    return 0;
}

static void auto_prefork_abort(void)
{
    if (!fsafe__auto_on)
        return;
    fsafe__loader_release();
    release_taken();
    unpark();
}

/* ---- the report (parent, other threads running again) ------------------------------ */
static void describe(const void *addr, char *out, size_t size)
{
    if (!addr || fsafe__svc.describe(addr, out, size) <= 0)
        snprintf(out, size, "%p", addr);
}

static const char *kind_name(const struct noted *x)
{
    switch (x->kind) {
    case FSAFE_MUTEX:
        return "mutex";
    case FSAFE_RWLOCK:
        return x->mode == FSAFE__AT_SHARED ? "rwlock (read)" : "rwlock (write)";
    case FSAFE_SPINLOCK:
        return "spinlock";
    case FSAFE__AT_WORD:
        return "GLib mutex";
    case FSAFE__AT_ABSL:
        return x->mode == FSAFE__AT_SHARED ? "absl::Mutex (reader)" : "absl::Mutex";
    case FSAFE__AT_GATE:
        return "libc call";
    }
    return "lock";
}

/* "0x55..: mutex counter_lock+0x8 (libfoo.so) held by thread 1234, taken at libfoo.so+0x11a9" */
static void describe_hold(const struct noted *x, char *out, size_t size)
{
    char what[256], where[256];
    if (!x->lock) {
        snprintf(out, size, "locks beyond %d held by thread %d (not recorded)", FSAFE__AT_CAP,
                 (int)x->tid);
        return;
    }
    if (x->kind == FSAFE__AT_GATE)
        snprintf(what, sizeof what, "%s", ((const struct fsafe__gate *)x->lock)->family);
    else
        describe(x->lock, what, sizeof what);
    if (x->caller)
        describe((const void *)x->caller, where, sizeof where);
    else
        snprintf(where, sizeof where, "an unknown place");
    if (x->state == FSAFE__AT_ACQUIRING) {
        snprintf(out, size, "%s %p %s wanted by thread %d, in the lock call at %s", kind_name(x),
                 x->lock, what, (int)x->tid, where);
        return;
    }
    snprintf(out, size, "%s %p %s held by thread %d, taken at %s%s", kind_name(x), x->lock, what,
             (int)x->tid, where,
             !timed_out ? ""
             : x->kind == FSAFE__AT_GATE
                 ? " (libc's own lock: not reset, the child may hang in this family)"
             : x->kind == FSAFE__AT_ABSL ? " (abseil's: not reset, the child may hang on it)"
                                         : "");
}

static void report(void)
{
    char line[512];
    const struct fsafe__config *cfg = fsafe__svc.cfg;
    if (timed_out) {
        fsafe__amsg("fork waited %llu ms (FSAFE_AUTO_WAIT_MS) for %d lock%s still held by "
                    "other threads%s; the child %s them:",
                    (unsigned long long)(waited_ns / 1000000u), nstuck + stuck_more,
                    nstuck + stuck_more == 1 ? "" : "s", stuck_more ? " (some not listed)" : "",
                    cfg->auto_keep ? "keeps (FSAFE_AUTO_ON_TIMEOUT=keep)"
                                   : "re-initialised (their data may be half-updated)");
        for (int i = 0; i < nstuck; i++) {
            describe_hold(&stuck[i], line, sizeof line);
            fsafe__amsg("  %s", line);
        }
    } else if (cfg->verbose && nseen + seen_more > 0) {
        int wanted = 0;
        for (int i = 0; i < nseen; i++)
            wanted += seen[i].state == FSAFE__AT_ACQUIRING;
        int held = nseen + seen_more - wanted;
        char calls[64] = "";
        if (wanted)
            snprintf(calls, sizeof calls, ", and %d lock call%s under way", wanted,
                     wanted == 1 ? "" : "s");
        fsafe__amsg("fork waited %llu us for %d lock%s held by other threads%s:",
                    (unsigned long long)(waited_ns / 1000u), held, held == 1 ? "" : "s", calls);
        for (int i = 0; i < nseen; i++) {
            describe_hold(&seen[i], line, sizeof line);
            fsafe__amsg("  %s", line);
        }
    }
    if (cfg->verbose && handed)
        fsafe__amsg("fork: %d mutex%s taken from condition waiters handed to the forking thread's "
                    "own lock calls (atfork handlers); released and reset by them",
                    handed, handed == 1 ? "" : "es");
    if (taken_overflow)
        fsafe__amsg("more than %d condition waits at one fork: some were not covered", MAX_TAKEN);
}

static void auto_postfork_parent(void)
{
    if (!fsafe__auto_on)
        return;
    /* This fork is over: from here on, before the gate lets the next forker
     * in, this thread's holds are ordinary ones that it is about to release.
     * Still marked as inside fork(), the next forker would not wait for them
     * (frozen, scan) nor for threads blocked on them, and a thread that got
     * one after that forker's last look could hold another lock in its child
     * (issue 25's soak: a worker blocked on a forker's prefix). */
    if (forker && AO_load(&forker->forking)) {
        AO_store_release(&forker->forking, 0);
        fork_ended = 1;
    }
    fsafe__loader_release();
    release_taken();
    unpark();
    report();
}

/* ---- the child ------------------------------------------------------------------------ */
/* A condition variable with its waiters gone: the state of a fresh one, with
 * its clock and process-shared bits kept (glibc: bits 0-1 of __wrefs). */
static void cond_reset(void *c)
{
#ifdef __GLIBC__
    pthread_cond_t *cv = c;
    unsigned keep = *fsafe__gl_cond_wrefs(cv) & FSAFE__GL_COND_FLAGS;
    if (keep & FSAFE__GL_COND_PSHARED)
        return; /* process-shared: the parent's waiters are real */
    memset(cv, 0, sizeof *cv);
    *fsafe__gl_cond_wrefs(cv) = keep;
#else
    (void)c;
#endif
}

/* The forker's own holds, as its thread in the child: re-initialised and
 * taken again, because glibc records the owner's thread id, which is stale
 * in the child (an errorcheck or recursive unlock would fail with EPERM, a
 * write-locked rwlock would not be released). */
static void retake_own(struct fsafe__at_thread *t)
{
    AO_t n = AO_load(&t->n) < FSAFE__AT_CAP ? AO_load(&t->n) : FSAFE__AT_CAP;
    for (AO_t j = 0; j < n; j++) {
        struct fsafe__at_entry *e = &t->e[j];
        void *lock = fsafe__at_lock(e);
        if (!lock || lock == FSAFE__AT_ANON || fsafe__at_kind(e) == FSAFE__AT_GATE ||
            fsafe__at_kind(e) == FSAFE_SPINLOCK || fsafe__at_estate(e) != FSAFE__AT_HELD)
            continue; /* a spinlock records no owner; a lock call a signal
                       * handler interrupted to fork takes it itself */
        int first = 1;
        for (AO_t k = 0; k < j; k++)
            if (fsafe__at_lock(&t->e[k]) == lock && fsafe__at_estate(&t->e[k]) == FSAFE__AT_HELD)
                first = 0;
        if (!first)
            continue;
        if (fsafe__at_kind(e) == FSAFE_MUTEX && !fsafe__svc.mem_shared(lock, fsafe__at_kind(e))) {
            fsafe__svc.reset_unlocked(lock, FSAFE_MUTEX);
            for (AO_t k = j; k < n; k++)
                if (fsafe__at_lock(&t->e[k]) == lock &&
                    fsafe__at_estate(&t->e[k]) == FSAFE__AT_HELD)
                    fsafe__real_mutex_lock(lock);
        } else if (fsafe__at_kind(e) == FSAFE_RWLOCK &&
                   !fsafe__svc.mem_shared(lock, fsafe__at_kind(e))) {
            fsafe__svc.reset_unlocked(lock, FSAFE_RWLOCK);
            for (AO_t k = j; k < n; k++)
                if (fsafe__at_lock(&t->e[k]) == lock &&
                    fsafe__at_estate(&t->e[k]) == FSAFE__AT_HELD) {
                    if (fsafe__at_mode(&t->e[k]) == FSAFE__AT_EXCL)
                        fsafe__real_rwlock_wrlock(lock);
                    else
                        fsafe__real_rwlock_rdlock(lock);
                }
        }
    }
}

static void auto_postfork_child(void)
{
    if (!fsafe__auto_on)
        return;
    AO_store_release(&fsafe__at_state, AO_load_acquire(&fsafe__at_state) & ~FSAFE__AT_FORK_BITS);
    AO_store_release(&fsafe__at_fork_owner, 0);
    AO_store_release(&fsafe__at_fork_owner_tid, 0);
    for (int i = 0; i < ntaken; i++)
        if (!taken[i].shared_mem)
            reset_lock(taken[i].mutex, taken[i].kind);
    ntaken = 0;
    for (int i = 0; i < nconds; i++)
        cond_reset(conds[i]);
    if (timed_out && !fsafe__svc.cfg->auto_keep)
        for (int i = 0; i < nstuck; i++)
            if (stuck[i].lock && stuck[i].kind != FSAFE__AT_GATE && !stuck[i].shared_mem)
                reset_lock(stuck[i].lock, stuck[i].kind);
    if (!fsafe__svc.cfg->auto_keep)
        for (int i = 0; i < nfrozen; i++)
            if (!frozen[i].shared_mem)
                reset_lock(frozen[i].lock, frozen[i].kind);
    struct fsafe__at_thread *mine = fsafe__at_current();
    AO_t parent_token = fsafe__at_child_new_token(mine);
    if (mine)
        retake_own(mine);
    fsafe__loader_postfork_child();
    fsafe__sem_postfork_child(parent_token);
    fsafe__omp_postfork_child();
    fsafe__watch_postfork_child();
}

/* ---- attach ----------------------------------------------------------------------------- */
static uint64_t auto_waited_ns(void)
{
    return waited_ns;
}

static int auto_handed_over(void)
{
    return handed;
}

static int auto_busy_seen(void)
{
    return nseen + seen_more;
}

static struct fsafe__ext_ops ops = {
    .abi = FSAFE__EXT_ABI,
    .waited_ns = auto_waited_ns,
    .handed_over = auto_handed_over,
    .busy_seen = auto_busy_seen,
    .prefork = auto_prefork,
    .prefork_abort = auto_prefork_abort,
    .postfork_parent = auto_postfork_parent,
    .postfork_child = auto_postfork_child,
};

/*
 * Whether the core auto mode attached to is the copy built into this library.
 * Not where libfsafe.so's copy comes first in the lookup order (LD_PRELOAD
 * naming it before this library): that copy's fork() runs the protocol and
 * reaches the fork() below as the next one on its way to libc's.  The
 * linker's bounds of this object tell (no call: this runs at every fork).
 */
extern const char __ehdr_start[] __attribute__((visibility("hidden")));
extern const char _end[] __attribute__((visibility("hidden")));

static int core_here(void)
{
    uintptr_t a = (uintptr_t)&fsafe__ext_attach;
    return a >= (uintptr_t)__ehdr_start && a < (uintptr_t)_end;
}

/* After the core's constructor (101, in this library), or after libfsafe.so's
 * where that copy of the core is the active one (core/api.c). */
__attribute__((constructor(102))) static void auto_ctor(void)
{
    /* The built-in core found libc's fork() itself; another copy (one that
     * comes after libc) may need it, and this library's fork() passes
     * through to it then. */
    if (!core_here())
        ops.real_fork = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
    if (fsafe__ext_attach(&ops, &fsafe__svc) != 0) {
        AO_store_release(&fsafe__at_state, FSAFE__AT_OFF);
        return;
    }
    if (fsafe__svc.cfg->auto_mode == 0) {
        AO_store_release(&fsafe__at_state, FSAFE__AT_OFF);
        return;
    }
    membarrier_ok = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    if (!membarrier_ok) /* an old kernel, or a sandbox: every hold fences itself */
        AO_store_release(&fsafe__at_state, AO_load_acquire(&fsafe__at_state) | FSAFE__AT_FENCE);
    fsafe__at_handover = handover;
    fsafe__at_init();
    fsafe__loader_init();
    fsafe__sem_init();
    fsafe__auto_on = 1;
}

/* fork() itself (libfsafe.so's own is core/interpose.c, not built in here):
 * the thread's fork count around the core's wrapper; only a pass-through
 * where another copy of the core acts. */
FSAFE_EXPORT pid_t fork(void)
{
    if (__builtin_expect(!core_here(), 0)) {
        if (!ops.real_fork)
            ops.real_fork = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
        if (!ops.real_fork) {
            errno = ENOSYS;
            return -1;
        }
        return ops.real_fork();
    }
    struct fsafe__at_thread *t = fsafe__at_current(); /* none: it holds nothing */
    int outer = fork_ended; /* a fork from a signal handler nests its own */
    fork_ended = 0;
    if (t)
        AO_fetch_and_add1(&t->forking);
    pid_t pid = fsafe_fork();
    if (t && !fork_ended)
        AO_fetch_and_add(&t->forking, (AO_t)-1); /* errno untouched */
    fork_ended = outer;
    return pid;
}
