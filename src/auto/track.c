/* SPDX-License-Identifier: MIT */
/*
 * Auto mode's lock tracking: interposes the pthread and C11 lock calls and
 * keeps, per thread, the set of locks the thread holds right now.  The sets
 * live in mmap'd records that fork reads without a lock; no malloc anywhere.
 *
 * The protocol with the forker (fork.c) is an asymmetric Dekker: a
 * thread publishes a hold (it reserves a slot: n = i + 1) before it loads
 * the state word; the forker sets PENDING in it and then runs membarrier(), a
 * full barrier on every thread of the process, before it reads the records.
 * So either the thread sees the fork pending, or the forker sees the hold.
 * A thread that holds nothing and sees a fork pending parks until it is over;
 * a thread that holds locks goes on, to finish its critical section.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#include "auto.h"

AO_t fsafe__at_state;
AO_t fsafe__at_fork_owner;
AO_t fsafe__at_fork_owner_tid;
AO_t fsafe__at_fork_seq;
AO_t fsafe__at_threads;
AO_t fsafe__at_token = 1;

/* The calling thread's record.  initial-exec: a preloaded or linked library
 * gets static TLS, and reading it is one instruction. */
static __thread struct fsafe__at_thread *me __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static AO_t have_key;

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define CALLER ((uintptr_t)__builtin_return_address(0))


int (*fsafe__at_handover)(void *mutex);

/* ---- records ----------------------------------------------------------------- */
static void futex_wait(AO_t *word, unsigned val)
{
    /* The low 32 bits of the word (little-endian x86-64/aarch64). */
    syscall(SYS_futex, (int *)word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

void fsafe__at_unpark_all(void)
{
    AO_store_release(&fsafe__at_state, AO_load_acquire(&fsafe__at_state) & ~FSAFE__AT_FORK_BITS);
    syscall(SYS_futex, (int *)&fsafe__at_state, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void fsafe__at_set_closed(int closed, int late)
{
    AO_t w = AO_load_acquire(&fsafe__at_state);
    if (closed)
        w |= FSAFE__AT_CLOSED | (late ? FSAFE__AT_LATE : 0);
    else
        w &= ~(AO_t)FSAFE__AT_CLOSED;
    AO_store_release(&fsafe__at_state, w);
    if (!closed || late)
        syscall(SYS_futex, (int *)&fsafe__at_state, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void on_thread_exit(void *p)
{
    struct fsafe__at_thread *t = p;
    /* Holds the thread still had die with it: a robust mutex says EOWNERDEAD
     * to its next locker; any other stays locked in the parent too. */
    if (me == t)
        me = NULL;
    /* Empty every slot before the record can be reused: a new owner's
     * reserved slot must read as "being filled in", never as an old hold. */
    for (int i = 0; i < FSAFE__AT_CAP; i++)
        AO_store(&t->e[i].lock, 0);
    AO_store_release(&t->n, 0);
    AO_store_release(&t->in_use, 0);
}

#define CHUNK_BYTES (64 * 1024)

static char *rec_next(const char *r, size_t next_off)
{
    char *n;
    memcpy(&n, r + next_off, sizeof n);
    return n;
}

static void rec_set_next(char *r, size_t next_off, char *n)
{
    memcpy(r + next_off, &n, sizeof n);
}

void *fsafe__records_claim(AO_t *head, size_t size, size_t in_use_off, size_t next_off)
{
    int saved = errno;
    AO_t token = AO_load(&fsafe__at_token);
    for (char *r = (char *)AO_load_acquire(head); r; r = rec_next(r, next_off)) {
        AO_t *in_use = (AO_t *)(r + in_use_off);
        AO_t v = AO_load_acquire(in_use);
        if (v != token && AO_compare_and_swap_full(in_use, v, token))
            return r;
    }
    char *first =
        mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    errno = saved; /* a lock call's caller sees its own errno */
    if (first == MAP_FAILED)
        return NULL;
    size_t count = CHUNK_BYTES / size;
    for (size_t i = 0; i + 1 < count; i++)
        rec_set_next(first + i * size, next_off, first + (i + 1) * size);
    *(AO_t *)(first + in_use_off) = token; /* the rest stay free (zero) */
    char *last = first + (count - 1) * size;
    AO_t h;
    do {
        h = AO_load_acquire(head);
        rec_set_next(last, next_off, (char *)h);
    } while (!AO_compare_and_swap_full(head, h, (AO_t)first));
    return first;
}

#define ADDR_PROBES 64

struct fsafe__addr_slot *fsafe__addr_find(struct fsafe__addr_slot *tab, unsigned bits,
                                          const void *key, int insert, AO_t *full)
{
    AO_t k0 = (AO_t)key;
    unsigned h = fsafe__addr_hash(key, bits);
    unsigned mask = (1u << bits) - 1;
    for (unsigned i = 0; i < ADDR_PROBES; i++) {
        struct fsafe__addr_slot *e = &tab[(h + i) & mask];
        AO_t k = AO_load_acquire(&e->key);
        if (k == k0)
            return e;
        if (k != 0)
            continue;
        if (!insert)
            return NULL;
        if (AO_compare_and_swap_full(&e->key, 0, k0))
            return e;
        if (AO_load_acquire(&e->key) == k0)
            return e; /* another thread claimed it for the same address */
    }
    if (insert)
        AO_fetch_and_add1(full);
    return NULL;
}

static struct fsafe__at_thread *attach(void)
{
    struct fsafe__at_thread *t = FSAFE__RECORDS_CLAIM(&fsafe__at_threads, struct fsafe__at_thread);
    if (!t)
        return NULL; /* the thread goes untracked */
    /* Empty first: it may be an ancestor's thread's record, copied as that
     * thread left it at the fork. */
    for (int i = 0; i < FSAFE__AT_CAP; i++)
        AO_store(&t->e[i].lock, 0);
    AO_store(&t->forking, 0);
    AO_store(&t->signalled, 0);
    t->tid = (pid_t)syscall(SYS_gettid);
    t->self = fsafe__self_id();
    AO_store_release(&t->n, 0);
    me = t;
    if (AO_load_acquire(&have_key))
        pthread_setspecific(exit_key, t); /* keys below 32 never allocate */
    return t;
}

/* ---- monitor mutexes --------------------------------------------------------- */
/*
 * Mutexes seen in a condition wait: the mutex of a monitor, which programs
 * use to guard a flag or a queue that is itself a lock ("held", a pool's
 * task list).  A thread in such a logical critical section holds no tracked
 * lock, and the call that ends it takes the monitor's mutex first: parked
 * there, it would keep the logical lock held across the fork.  So while a
 * fork is open (PENDING without CLOSED, fork.c) a thread that holds
 * nothing is not parked at a monitor mutex; the forker takes the mutex
 * instead, or waits for it.  State 1 marks a monitor; pthread_mutex_destroy
 * clears it.  A full table leaves a mutex unmarked (parked as before).
 */
#define MON_BITS 13
static AO_t mon_tab; /* struct fsafe__addr_slot[1 << MON_BITS], or 0 */
static AO_t mon_full;
AO_t fsafe__at_monitors;

static void monitor_note(void *mutex)
{
    struct fsafe__addr_slot *tab = (struct fsafe__addr_slot *)AO_load_acquire(&mon_tab);
    if (!tab)
        return;
    struct fsafe__addr_slot *e = fsafe__addr_find(tab, MON_BITS, mutex, 1, &mon_full);
    if (e && !AO_load(&e->state)) {
        AO_store_release(&e->state, 1);
        if (!AO_load(&fsafe__at_monitors))
            AO_store_release(&fsafe__at_monitors, 1);
    }
}

static void monitor_forget(void *mutex)
{
    struct fsafe__addr_slot *tab = (struct fsafe__addr_slot *)AO_load_acquire(&mon_tab);
    struct fsafe__addr_slot *e = tab ? fsafe__addr_find(tab, MON_BITS, mutex, 0, NULL) : NULL;
    if (e && AO_load(&e->state))
        AO_store_release(&e->state, 0);
}

int fsafe__at_is_monitor(const void *mutex)
{
    struct fsafe__addr_slot *tab = (struct fsafe__addr_slot *)AO_load_acquire(&mon_tab);
    struct fsafe__addr_slot *e = tab ? fsafe__addr_find(tab, MON_BITS, mutex, 0, NULL) : NULL;
    return e && AO_load_acquire(&e->state) == 1;
}

/* An unlocked spinlock's word, as pthread_spin_init leaves it (1 on x86-64,
 * where glibc counts down to lock; 0 elsewhere). */
static int spin_free;

static void spin_free_init(void)
{
    pthread_spinlock_t s;
    pthread_spin_init(&s, PTHREAD_PROCESS_PRIVATE);
    spin_free = *(volatile int *)&s;
}

void fsafe__at_init(void)
{
    spin_free_init();
    void *tab = mmap(NULL, sizeof(struct fsafe__addr_slot) << MON_BITS, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (tab != MAP_FAILED) /* else every mutex is parked at, as before */
        AO_store_release(&mon_tab, (AO_t)tab);
    if (pthread_key_create(&exit_key, on_thread_exit) == 0) {
        AO_store_release(&have_key, 1);
        if (me)
            pthread_setspecific(exit_key, me);
    }
}

struct fsafe__at_thread *fsafe__at_current(void)
{
    return me;
}

/*
 * The child's work does not depend on how many threads the process has had:
 * the other threads' records stay as the fork copied them, and a new token
 * makes them another process's (free to claim, skipped by every look), so
 * the child neither walks nor writes them (before, it emptied every record
 * ever made: 797 page faults in a child after 1000 threads had come and
 * gone, test/bench/child_cost).
 */
AO_t fsafe__at_child_new_token(struct fsafe__at_thread *mine)
{
    AO_t old = AO_load(&fsafe__at_token);
    AO_store_release(&fsafe__at_token, old + 1);
    if (mine) {
        AO_store_release(&mine->in_use, old + 1);
        mine->tid = (pid_t)syscall(SYS_gettid); /* the child's (reports, the loader's owner) */
    }
    return old;
}

/* ---- glibc lock words -------------------------------------------------------- */
int fsafe__at_lock_free(const void *lock, int kind)
{
#ifdef __GLIBC__
    if (kind == FSAFE_MUTEX) {
        const pthread_mutex_t *m = lock;
        unsigned v = (unsigned)*fsafe__gl_mutex_word(m);
        if (fsafe__gl_mutex_kind(m) & FSAFE__GL_KIND_PP)
            return (v & ~FSAFE__GL_PP_CEILING) == 0;
        return (v & FSAFE__GL_TID_MASK) == 0; /* FUTEX_WAITERS and FUTEX_OWNER_DIED aside */
    }
    if (kind == FSAFE_RWLOCK) {
        unsigned r = fsafe__gl_rwlock_readers(lock);
        return (r & FSAFE__GL_RW_WRLOCKED) == 0 && (r >> FSAFE__GL_RW_READER_SHIFT) == 0;
    }
    if (kind == FSAFE_SPINLOCK)
        return *(const volatile int *)lock == spin_free;
    if (kind == FSAFE__AT_WORD)
        return *(const volatile int *)lock == 0;
#endif
    (void)lock, (void)kind;
    return 0;
}

/* ---- holds ------------------------------------------------------------------- */
/* Moves entry `from` into slot `to`, lock last: at every moment the forker
 * sees each held lock at least once. */
static inline void entry_move(struct fsafe__at_thread *t, long to, long from)
{
    struct fsafe__at_entry *d = &t->e[to], *s = &t->e[from];
    AO_store(&d->info, AO_load(&s->info));
    AO_store(&d->caller, AO_load(&s->caller));
    AO_store(&d->cond, AO_load(&s->cond));
    AO_store_release(&d->lock, AO_load(&s->lock));
    AO_store_release(&s->lock, 0);
}

/* Drops the holds of t below slot `top` whose lock words say free: holds that
 * another thread released for this one (a mutex unlocked by a thread that did
 * not lock it), which would otherwise make t look busy forever.  Returns the
 * new number of entries below top; slot top moves down with it. */
static AO_t prune_stale(struct fsafe__at_thread *t, AO_t top)
{
    AO_t keep = 0;
    for (AO_t j = 0; j < top && j < FSAFE__AT_CAP; j++) {
        struct fsafe__at_entry *e = &t->e[j];
        void *lock = fsafe__at_lock(e);
        if (lock && lock != FSAFE__AT_ANON && fsafe__at_estate(e) == FSAFE__AT_HELD &&
            fsafe__at_mode(e) == FSAFE__AT_EXCL && fsafe__at_lock_free(lock, fsafe__at_kind(e)))
            continue;
        if (keep != j)
            entry_move(t, (long)keep, (long)j);
        keep++;
    }
    if (top > FSAFE__AT_CAP)
        keep += top - FSAFE__AT_CAP;
    return keep;
}

/* Whether the thread with kernel id tid will hold its locks until the
 * pending fork is over: the forker, or another thread inside fork(). */
static int holder_frozen(int tid)
{
    if (tid == 0)
        return 0;
    if ((AO_t)tid == AO_load_acquire(&fsafe__at_fork_owner_tid))
        return 1;
    for (struct fsafe__at_thread *r =
             (struct fsafe__at_thread *)AO_load_acquire(&fsafe__at_threads);
         r; r = r->next)
        if (r->tid == tid && fsafe__at_live(&r->in_use) && AO_load_acquire(&r->forking))
            return 1;
    return 0;
}

/* Whether an interrupted call's ACQUIRING entry e waits for a mutex that the
 * forker (or a thread inside fork()) holds: the fork's look skips such an
 * entry (forker_excludes), and the mutex cannot come free, nor wake this
 * thread, before the fork is over.  Any other blocked call must count as a
 * hold: glibc wakes one waiter at an unlock, and a waiter parked in its
 * signal handler would keep that wake from the other waiters, which the
 * fork would then wait for (seen as 3-5 s stalls in the soak).  Mutexes
 * only: with rwlocks too (their __cur_writer), the 10^5-fork soak found a
 * child with an rwlock left read- or write-held, 3 in about 65,000 forks,
 * and none in 40 minutes without this rule (the mechanism is not known;
 * test/README.md, "Soak"). */
static int waits_on_frozen(const struct fsafe__at_entry *e, const void *lock)
{
#ifdef __GLIBC__
    if (fsafe__at_kind(e) == FSAFE_MUTEX)
        return holder_frozen((pid_t)AO_int_load((const unsigned *)fsafe__gl_mutex_owner(lock)));
#endif
    (void)e, (void)lock;
    return 0;
}

/* Whether the condition wait of WAITING entry e (on lock) has taken its mutex
 * back already: inside libc, before wait_end marks the entry HELD.  Not
 * known for the other kinds (GLib's, abseil's): yes, as before. */
static int wait_retook(const struct fsafe__at_thread *t, const struct fsafe__at_entry *e,
                       const void *lock)
{
#ifdef __GLIBC__
    if (fsafe__at_kind(e) == FSAFE_MUTEX)
        return (pid_t)AO_int_load((const unsigned *)fsafe__gl_mutex_owner(lock)) == t->tid;
#endif
    (void)t, (void)e, (void)lock;
    return 1;
}

/* Whether slots [0, i) hold a lock (the thread is in a critical section and
 * goes on to finish it): a HELD entry, an anonymous hold, holds past the
 * capacity, a WAITING one whose wait has its mutex back (wait_retook), an
 * ACQUIRING one (a lock call it interrupted).  Not holds: a slot still 0 (a
 * lock call the handler interrupted before it filled the slot in), an
 * ACQUIRING entry blocked on a lock that the forker or a thread inside
 * fork() holds (waits_on_frozen), and a condition wait still waiting: the
 * fork does not wait for it (it takes the waiter's mutex), so a handler that
 * went on from there took its own lock after the fork's last look (issue
 * soak36's review, auto.handler_in_cond_wait: the handler's spinlock held in
 * the child, 3 of 3 runs).  Counted as holds,
 * each let a signal handler take its own lock after the fork's last look
 * (issue 25's soak: the handlers' spinlock held in the child, once behind
 * an empty slot, once behind a worker blocked on a lock the forker held,
 * which the forker's look skips). */
static int in_section(const struct fsafe__at_thread *t, AO_t i)
{
    if (i > FSAFE__AT_CAP)
        return 1;
    for (AO_t j = 0; j < i; j++) {
        const struct fsafe__at_entry *e = &t->e[j];
        void *lock = fsafe__at_lock(e);
        if (!lock)
            continue;
        if (lock == FSAFE__AT_ANON)
            return 1;
        int state = fsafe__at_estate(e);
        if (state == FSAFE__AT_WAITING) {
            if (wait_retook(t, e, lock))
                return 1;
            continue;
        }
        if (state != FSAFE__AT_ACQUIRING || !waits_on_frozen(e, lock))
            return 1;
    }
    return 0;
}

/* How many of slots [0, i) a parked signal handler leaves visible: the
 * condition waits of the code it interrupted (all of them WAITING, none
 * with its mutex back: in_section), so that the fork still takes their
 * mutexes and resets their condition variables in the child; else none. */
static AO_t waits_below(const struct fsafe__at_thread *t, AO_t i)
{
    AO_t k = 0;
    while (k < i && k < FSAFE__AT_CAP && fsafe__at_lock(&t->e[k]) &&
           fsafe__at_estate(&t->e[k]) == FSAFE__AT_WAITING)
        k++;
    return k;
}

/* Before a signal handler parks behind its interrupted lock call (slots
 * [0, i), every ACQUIRING one waiting for a frozen holder): that call may
 * have been woken by an unlock just before the signal came, and glibc wakes
 * one waiter per unlock, which then marks the lock contended again so that
 * the next unlock wakes the next.  Parked, this thread would keep that duty
 * from the other waiters until the fork is over, and the fork may be
 * waiting for one of them.  Waking one waiter of each such lock hands it
 * on; glibc's waiters take a spurious wake as a reason to try again. */
static void pass_wakes(const struct fsafe__at_thread *t, AO_t i)
{
#ifdef __GLIBC__
    for (AO_t j = 0; j < i && j < FSAFE__AT_CAP; j++) {
        const struct fsafe__at_entry *e = &t->e[j];
        void *lock = fsafe__at_lock(e);
        if (!lock || lock == FSAFE__AT_ANON || fsafe__at_estate(e) != FSAFE__AT_ACQUIRING)
            continue;
        if (fsafe__at_kind(e) != FSAFE_MUTEX) /* (waits_on_frozen: mutexes only) */
            continue;
        volatile int *word = fsafe__gl_mutex_word(lock);
        /* Private or process-shared: the wrong one finds no waiters. */
        syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
#endif
    (void)t, (void)i;
}

/* A parked thread yields this many times before it sleeps: forks are over
 * by then, and a thread that never slept does not preempt the forker when
 * the fork ends.  Woken sleepers do (Linux places a woken task ahead of the
 * ones that kept running): with 8 busy threads on 2 cores, fork latency p50
 * 7.2 ms against 1.2 ms plain when parked threads slept at once.  After 32
 * yields most of them still slept by the end of the fork (p99 11-12 ms
 * against 7.5-9 ms plain); with 4096, and a forker that does not yield
 * (pause_round in fork.c), p99 5.0-5.9 ms against 5.1-9.0 ms plain
 * (test/bench/README.md, "Session 37").  A yield also moves this thread
 * behind the forker (EEVDF), which is the point.  Bounded: a fork that waits
 * long (a holder asleep in its critical section) finds its parked threads
 * asleep after about 4096 short system calls each. */
#define PARK_YIELDS 4096

/* Slow path of hold_begin: the state word is not zero.  Slot i is reserved
 * (n == i + 1).  Returns the slot to use, -1 when tracking is off, or
 * FSAFE__AT_FORKER_CALL for the forker's own calls during its protocol. */
static __attribute__((noinline)) long hold_slow(struct fsafe__at_thread *t, AO_t i, void *lock,
                                                int kind)
{
    int saved = errno;
    AO_t self = t->self;
    int monitor = -1; /* looked up once, when needed */
    for (;;) {
        AO_t w = AO_load_acquire(&fsafe__at_state);
        if (w & FSAFE__AT_OFF) {
            AO_store_release(&t->n, i);
            return -1;
        }
        if (w & FSAFE__AT_FENCE) {
            AO_nop_full(); /* this thread's half of the Dekker pair */
            w = AO_load_acquire(&fsafe__at_state);
        }
        if (!(w & FSAFE__AT_PENDING))
            break;
        if (AO_load_acquire(&fsafe__at_fork_owner) == self) {
            /* The forker's own calls during the protocol (the registered walk,
             * other libraries' atfork handlers) are fsafe's business, not
             * holds: the child resets those locks itself. */
            AO_store_release(&t->n, i);
            errno = saved;
            return FSAFE__AT_FORKER_CALL;
        }
        if (i > 0) {
            AO_t k = prune_stale(t, i);
            if (k != i) {
                for (AO_t j = k; j < i && j < FSAFE__AT_CAP; j++)
                    AO_store(&t->e[j].lock, 0);
                AO_store_release(&t->n, k + 1);
                i = k;
            }
            if (in_section(t, i))
                break; /* in a critical section: finish it */
        }
        /* Inside dlopen or dlclose (a constructor that locks): the fork
         * waits for the loader's lock this thread holds (libc.c). */
        if (fsafe__loader_holds(t->tid))
            break;
        /* Holds nothing: a monitor's mutex passes while the fork is open;
         * anything else steps back and waits for the fork to end. */
        if (monitor < 0)
            monitor = kind == FSAFE_MUTEX && fsafe__at_is_monitor(lock);
        if (monitor && !(w & FSAFE__AT_CLOSED))
            break;
        /* (Slots below i, if any, are lock calls of the code this handler
         * interrupted, not filled in or not taken: hidden while parked, kept
         * after; or its condition wait, which stays in view: waits_below.) */
        if (i > 0)
            pass_wakes(t, i);
        AO_store_release(&t->n, i > 0 ? waits_below(t, i) : 0);
        for (unsigned spins = 0; ((w = AO_load_acquire(&fsafe__at_state)) & FSAFE__AT_PENDING) &&
                                 !(monitor && !(w & FSAFE__AT_CLOSED));
             spins++) {
            if (spins < PARK_YIELDS)
                sched_yield();
            else
                futex_wait(&fsafe__at_state, (unsigned)w);
        }
        AO_store_release(&t->n, i + 1);
        /* Look again: the next fork may already be announced. */
    }
    errno = saved;
    return (long)i;
}

static inline void entry_fill(struct fsafe__at_thread *t, long i, void *lock, AO_t info,
                              uintptr_t caller)
{
    struct fsafe__at_entry *e = &t->e[i];
    AO_store(&e->info, info);
    AO_store(&e->caller, caller);
    AO_store_release(&e->lock, (AO_t)lock);
}

/* hold_begin's other cases: a thread not yet attached (t NULL), a fork
 * pending, or the hold past the capacity (counted only). */
static __attribute__((noinline)) long hold_begin_slow(struct fsafe__at_thread *t, long i,
                                                      void *lock, int kind, AO_t info,
                                                      uintptr_t caller)
{
    if (!t) {
        if (!(t = attach()))
            return -1;
        i = (long)t->n;
        AO_store_release(&t->n, (AO_t)i + 1);
        AO_compiler_barrier();
    }
    if (AO_load(&fsafe__at_state) && (i = hold_slow(t, (AO_t)i, lock, kind)) < 0)
        return i;
    if (i < FSAFE__AT_CAP)
        entry_fill(t, i, lock, info, caller);
    return i;
}

/* The fast path of a hold's start: reserves the next slot and fills it in;
 * returns its entry, or NULL when the slow path must go on (no record yet, a
 * fork pending, a hold past the capacity: the slot stays reserved, n = i + 1).
 * The entry, not its index, is what the lock call's end needs: one register
 * kept across the call, no recomputation. */
static inline struct fsafe__at_entry *enter_fast(void *lock, AO_t info, uintptr_t caller)
{
    struct fsafe__at_thread *t = me;
    if (unlikely(!t))
        return NULL;
    AO_t i = t->n;
    AO_store_release(&t->n, i + 1); /* reserve first: a signal handler nests above */
    AO_compiler_barrier();
    if (unlikely(AO_load(&fsafe__at_state)) || unlikely(i >= FSAFE__AT_CAP))
        return NULL;
    struct fsafe__at_entry *e = &t->e[i];
    AO_store(&e->info, info);
    AO_store(&e->caller, caller);
    AO_store_release(&e->lock, (AO_t)lock);
    return e;
}

/* The slow start of a tracked hold, after enter_fast returned NULL: the
 * slot for hold_done or hold_cancel (-1: not tracked), or
 * FSAFE__AT_FORKER_CALL.  enter_fast reserved slot n - 1 if the thread had
 * a record (n >= 1 then: a signal handler gives back what it reserves);
 * with none, a signal handler may have made one since, with n == 0: the
 * slot is reserved here then. */
static __attribute__((noinline)) long enter_slow(void *lock, int kind, AO_t info, uintptr_t caller)
{
    struct fsafe__at_thread *t = me;
    long i = 0;
    if (t) {
        i = (long)AO_load(&t->n);
        if (i == 0) {
            AO_store_release(&t->n, 1);
            AO_compiler_barrier();
        } else {
            i--;
        }
    }
    return hold_begin_slow(t, i, lock, kind, info, caller);
}

/* The slot of entry e of this thread's record (the paths that are not the
 * fast one: a signal handler moved the entry, or the call failed). */
static inline long slot_of(const struct fsafe__at_entry *e)
{
    return e - me->e;
}

/* Records a hold (or an acquisition about to block) of lock; returns the
 * slot, -1 when the thread is not tracked, or FSAFE__AT_FORKER_CALL. */
static inline long hold_begin(void *lock, int kind, int mode, uintptr_t caller)
{
    AO_t info = FSAFE__AT_INFO(kind, mode, FSAFE__AT_ACQUIRING);
    struct fsafe__at_entry *e = enter_fast(lock, info, caller);
    return likely(e != NULL) ? slot_of(e) : enter_slow(lock, kind, info, caller);
}

/* The lock call succeeded, and a signal handler moved its entry (it pruned
 * holds below): the topmost acquisition of this lock is this one. */
static __attribute__((noinline)) void hold_done_moved(struct fsafe__at_thread *t, long i,
                                                      void *lock)
{
    if (i < 0 || !t)
        return;
    long top = (long)(t->n < FSAFE__AT_CAP ? t->n : FSAFE__AT_CAP);
    for (i = top - 1; i >= 0; i--)
        if (fsafe__at_lock(&t->e[i]) == lock && fsafe__at_estate(&t->e[i]) == FSAFE__AT_ACQUIRING)
            break;
    if (i < 0)
        return;
    AO_nop_write(); /* the lock word's update before the state */
    fsafe__at_set_estate(&t->e[i], FSAFE__AT_HELD);
}

/* The lock call succeeded: the entry of slot i is a hold from now on (info
 * is its kind and mode with state HELD).  Until then the forker must not
 * take a free lock word for a released hold (the call may be about to take
 * it). */
static inline void hold_done(long i, void *lock, AO_t info)
{
    struct fsafe__at_thread *t = me; /* (not NULL: slot i was reserved in it) */
    if (likely((unsigned long)i < FSAFE__AT_CAP && fsafe__at_lock(&t->e[i]) == lock)) {
        AO_nop_write(); /* the lock word's update before the state */
        AO_store_release(&t->e[i].info, info);
        return;
    }
    hold_done_moved(t, i, lock);
}

/* The lock call failed: gives slot i back (it is the top one). */
static inline void hold_cancel(long i)
{
    struct fsafe__at_thread *t = me;
    if (i < 0 || !t)
        return;
    if (i < FSAFE__AT_CAP)
        AO_store(&t->e[i].lock, 0);
    AO_compiler_barrier();
    AO_store_release(&t->n, (AO_t)i);
}

/* Finds the topmost recorded hold of lock; -1 if none. */
static inline long hold_find(const struct fsafe__at_thread *t, const void *lock)
{
    long top = (long)(t->n < FSAFE__AT_CAP ? t->n : FSAFE__AT_CAP);
    for (long j = top - 1; j >= 0; j--)
        if (fsafe__at_lock(&t->e[j]) == lock)
            return j;
    return -1;
}

/*
 * Removes one hold of lock, after the real unlock (until then the forker must
 * still see it).  Slots [0, min(n, CAP)) are dense; a NULL lock there is a
 * hold whose lock is not known (past the capacity, moved down) or a slot being
 * reserved.  Holds beyond the capacity are counted in n only.  hold_end is
 * the usual case, the topmost hold; hold_end_slow the others.
 */
static __attribute__((noinline)) void hold_end_slow(struct fsafe__at_thread *t, void *lock)
{
    if (t->n == 0)
        return;
    AO_t n = t->n;
    long top = (long)(n < FSAFE__AT_CAP ? n : FSAFE__AT_CAP) - 1;
    long j = hold_find(t, lock);
    if (j < 0) {
        if (n <= FSAFE__AT_CAP) {
            /* Not recorded: an anonymous hold, if there is one, else not ours
             * (taken before tracking began, or by another thread). */
            j = hold_find(t, FSAFE__AT_ANON);
            if (j < 0)
                return;
        } else {
            AO_store_release(&t->n, n - 1);
            return;
        }
    }
    if (n > FSAFE__AT_CAP) {
        /* One of the counted-only holds moves into the array, anonymous. */
        AO_store_release(&t->e[j].lock, (AO_t)FSAFE__AT_ANON);
    } else if (j != top) {
        entry_move(t, j, top);
    } else {
        AO_store_release(&t->e[j].lock, 0);
    }
    AO_compiler_barrier();
    AO_store_release(&t->n, n - 1);
}

static inline void hold_end(void *lock)
{
    struct fsafe__at_thread *t = me;
    if (unlikely(!t))
        return;
    AO_t n = t->n;
    if (likely(n - 1 < FSAFE__AT_CAP) && likely(fsafe__at_lock(&t->e[n - 1]) == lock)) {
        AO_store_release(&t->e[n - 1].lock, 0);
        AO_compiler_barrier();
        AO_store_release(&t->n, n - 1);
        return;
    }
    /* The next most usual case, two locks released in the order they were
     * taken (lock A, lock B, unlock A: memcached's item and slab locks):
     * the topmost entry moves into the released one's slot. */
    if (n - 2 < FSAFE__AT_CAP - 1 && fsafe__at_lock(&t->e[n - 2]) == lock) {
        entry_move(t, (long)n - 2, (long)n - 1);
        AO_compiler_barrier();
        AO_store_release(&t->n, n - 1);
        return;
    }
    hold_end_slow(t, lock);
}

/* Forgets every hold of lock by this thread (the lock is being destroyed). */
static void hold_forget(void *lock)
{
    struct fsafe__at_thread *t = me;
    while (t && t->n && hold_find(t, lock) >= 0)
        hold_end(lock);
}

static inline int acquired(int r)
{
    return r == 0 || r == EOWNERDEAD;
}

/* ---- mutexes --------------------------------------------------------------- */
/* The one case where the lock call is not made at all: the forker's own
 * lock call on a mutex its fork holds for it (fsafe__at_handover). */
static inline int handed(long slot, void *lock, int kind)
{
    return unlikely(slot == FSAFE__AT_FORKER_CALL) && kind == FSAFE_MUTEX &&
           fsafe__at_handover(lock);
}

/* A tracked lock call, as an expression whose value is call's (0, pthread's
 * and C11's success, when the call was handed over instead of made).
 * held(r) says whether call's value r means the lock is now held.  The
 * usual end is inline: the entry still holds this lock (no signal handler
 * moved it), and becomes HELD with one store. */
#define TRACKED(kind, mode, lock, call, held)                                                      \
    ({                                                                                             \
        int r_ = 0;                                                                                \
        AO_t info_ = FSAFE__AT_INFO((kind), (mode), FSAFE__AT_ACQUIRING);                          \
        AO_t done_ = FSAFE__AT_INFO((kind), (mode), FSAFE__AT_HELD);                               \
        struct fsafe__at_entry *e_ = enter_fast((lock), info_, CALLER);                            \
        long slot_ = likely(e_ != NULL) ? 0 : enter_slow((lock), (kind), info_, CALLER);           \
        if (likely(e_ != NULL) || !handed(slot_, (lock), (kind))) {                                \
            r_ = (call);                                                                           \
            if (!held(r_))                                                                         \
                hold_cancel(e_ ? slot_of(e_) : slot_);                                             \
            else if (likely(e_ != NULL) && likely(fsafe__at_lock(e_) == (void *)(lock))) {         \
                AO_nop_write(); /* the lock word's update before the state */                      \
                AO_store_release(&e_->info, done_);                                                \
            } else                                                                                 \
                hold_done(e_ ? slot_of(e_) : slot_, (lock), done_);                                \
        }                                                                                          \
        r_;                                                                                        \
    })

static inline int succeeded(int r)
{
    return r == 0;
}

static inline int thrd_ok(int r)
{
    return r == thrd_success;
}

FSAFE_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
    return TRACKED(FSAFE_MUTEX, FSAFE__AT_EXCL, m, fsafe__real_mutex_lock(m), acquired);
}

FSAFE_EXPORT int pthread_mutex_trylock(pthread_mutex_t *m)
{
    return TRACKED(FSAFE_MUTEX, FSAFE__AT_EXCL, m, fsafe__real_mutex_trylock(m), acquired);
}

FSAFE_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *ts)
{
    return TRACKED(
        FSAFE_MUTEX, FSAFE__AT_EXCL, m,
        NEXT(int (*)(pthread_mutex_t *, const struct timespec *), "pthread_mutex_timedlock")(m, ts),
        acquired);
}

FSAFE_EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t c, const struct timespec *ts)
{
    return TRACKED(FSAFE_MUTEX, FSAFE__AT_EXCL, m,
                   NEXT(int (*)(pthread_mutex_t *, clockid_t, const struct timespec *),
                        "pthread_mutex_clocklock")(m, c, ts),
                   acquired);
}

/*
 * A thread that signals a condition while a fork is open has just released a
 * logical lock built on a monitor, or handed work to a waiter: it parks as
 * soon as it holds no tracked lock (at the signal itself, or at the unlock
 * that empties its hold set), so that it does not go on to enter the next
 * logical critical section before the fork.  Without it a fork that waits for
 * quiet lands, more often than a fork at a random moment, where such a lock
 * is held (hang_rate xml, test/bench/README.md).  It goes on when the fork
 * ends or turns LATE (then it parks at its next lock call, as before this
 * rule), so that a thread another one needs after its signal (a second item,
 * a write to a pipe) holds the fork up for the open phase at most.
 */
static __attribute__((noinline)) void park_released(struct fsafe__at_thread *t)
{
    AO_t seq = AO_load_acquire(&fsafe__at_fork_seq);
    if (AO_load(&fsafe__at_fork_owner) == t->self)
        return; /* the forker itself (an atfork handler signalling) */
    if (AO_load(&t->n) != 0) {
        AO_store(&t->signalled, seq);
        return;
    }
    AO_store(&t->signalled, 0);
    int saved = errno;
    AO_t w;
    while (((w = AO_load_acquire(&fsafe__at_state)) & (FSAFE__AT_PENDING | FSAFE__AT_LATE)) ==
           FSAFE__AT_PENDING) {
        if (AO_load_acquire(&fsafe__at_fork_seq) != seq)
            break; /* a later fork: its own rules apply at the next call */
        futex_wait(&fsafe__at_state, (unsigned)w);
    }
    errno = saved;
}

/*
 * The forker sleeps between its looks on fsafe__at_quiet_seq (fork.c).
 * A thread that lets go of its last hold while a fork is pending bumps it
 * and, if the forker sleeps, wakes it: the fork goes on as soon as the last
 * holder leaves, not at its next poll (issue 26).  Bumped before the load
 * of fsafe__at_forker_sleeps (a full barrier), against the forker's store
 * of it before its futex wait compares the word: one of the two sees the
 * other.
 */
AO_t fsafe__at_quiet_seq;
AO_t fsafe__at_forker_sleeps;

static void quiet_now(const struct fsafe__at_thread *t)
{
    if (AO_load(&t->n) != 0 || AO_load(&fsafe__at_fork_owner) == t->self)
        return;
    AO_fetch_and_add1_full(&fsafe__at_quiet_seq);
    if (AO_load(&fsafe__at_forker_sleeps)) {
        int saved = errno;
        syscall(SYS_futex, (int *)&fsafe__at_quiet_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        errno = saved;
    }
}

static __attribute__((noinline)) void released_pending(int signalled)
{
    struct fsafe__at_thread *t = me;
    if (!t)
        return;
    quiet_now(t);
    if (signalled && (AO_load(&fsafe__at_state) & FSAFE__AT_CLOSED))
        return; /* not open: its next lock call parks it */
    if (signalled ||
        (AO_load(&t->signalled) && AO_load(&t->signalled) == AO_load(&fsafe__at_fork_seq) &&
         AO_load(&t->n) == 0))
        park_released(t);
}

/* After an unlock, or a signal (then signalled is 1: the signal rule). */
static inline void after_release(int signalled)
{
    if (likely(!(AO_load(&fsafe__at_state) & FSAFE__AT_PENDING)))
        return; /* the fast path: one load */
    released_pending(signalled);
}

FSAFE_EXPORT int pthread_mutex_unlock(pthread_mutex_t *m)
{
    int r = fsafe__real_mutex_unlock(m);
    if (r == 0) {
        hold_end(m);
        after_release(0);
    }
    return r;
}

FSAFE_EXPORT int pthread_mutex_destroy(pthread_mutex_t *m)
{
    hold_forget(m);
    monitor_forget(m);
    return NEXT(int (*)(pthread_mutex_t *), "pthread_mutex_destroy")(m);
}

/* ---- rwlocks --------------------------------------------------------------- */
FSAFE_EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
    return TRACKED(FSAFE_RWLOCK, FSAFE__AT_SHARED, l, fsafe__real_rwlock_rdlock(l), succeeded);
}

FSAFE_EXPORT int pthread_rwlock_tryrdlock(pthread_rwlock_t *l)
{
    return TRACKED(FSAFE_RWLOCK, FSAFE__AT_SHARED, l, fsafe__real_rwlock_tryrdlock(l), succeeded);
}

FSAFE_EXPORT int pthread_rwlock_timedrdlock(pthread_rwlock_t *l, const struct timespec *ts)
{
    return TRACKED(FSAFE_RWLOCK, FSAFE__AT_SHARED, l,
                   NEXT(int (*)(pthread_rwlock_t *, const struct timespec *),
                        "pthread_rwlock_timedrdlock")(l, ts),
                   succeeded);
}

FSAFE_EXPORT int pthread_rwlock_clockrdlock(pthread_rwlock_t *l, clockid_t c,
                                            const struct timespec *ts)
{
    return TRACKED(FSAFE_RWLOCK, FSAFE__AT_SHARED, l,
                   NEXT(int (*)(pthread_rwlock_t *, clockid_t, const struct timespec *),
                        "pthread_rwlock_clockrdlock")(l, c, ts),
                   succeeded);
}

FSAFE_EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
    return TRACKED(FSAFE_RWLOCK, FSAFE__AT_EXCL, l, fsafe__real_rwlock_wrlock(l), succeeded);
}

FSAFE_EXPORT int pthread_rwlock_trywrlock(pthread_rwlock_t *l)
{
    return TRACKED(FSAFE_RWLOCK, FSAFE__AT_EXCL, l, fsafe__real_rwlock_trywrlock(l), succeeded);
}

FSAFE_EXPORT int pthread_rwlock_timedwrlock(pthread_rwlock_t *l, const struct timespec *ts)
{
    return TRACKED(FSAFE_RWLOCK, FSAFE__AT_EXCL, l,
                   NEXT(int (*)(pthread_rwlock_t *, const struct timespec *),
                        "pthread_rwlock_timedwrlock")(l, ts),
                   succeeded);
}

FSAFE_EXPORT int pthread_rwlock_clockwrlock(pthread_rwlock_t *l, clockid_t c,
                                            const struct timespec *ts)
{
    return TRACKED(FSAFE_RWLOCK, FSAFE__AT_EXCL, l,
                   NEXT(int (*)(pthread_rwlock_t *, clockid_t, const struct timespec *),
                        "pthread_rwlock_clockwrlock")(l, c, ts),
                   succeeded);
}

FSAFE_EXPORT int pthread_rwlock_unlock(pthread_rwlock_t *l)
{
    int r = fsafe__real_rwlock_unlock(l);
    if (r == 0) {
        hold_end(l);
        after_release(0);
    }
    return r;
}

FSAFE_EXPORT int pthread_rwlock_destroy(pthread_rwlock_t *l)
{
    hold_forget(l);
    return NEXT(int (*)(pthread_rwlock_t *), "pthread_rwlock_destroy")(l);
}

/* ---- spinlocks --------------------------------------------------------------- */
FSAFE_EXPORT int pthread_spin_lock(pthread_spinlock_t *s)
{
    return TRACKED(FSAFE_SPINLOCK, FSAFE__AT_EXCL, (void *)s, fsafe__real_spin_lock(s), succeeded);
}

FSAFE_EXPORT int pthread_spin_trylock(pthread_spinlock_t *s)
{
    return TRACKED(FSAFE_SPINLOCK, FSAFE__AT_EXCL, (void *)s,
                   NEXT(int (*)(pthread_spinlock_t *), "pthread_spin_trylock")(s), succeeded);
}

FSAFE_EXPORT int pthread_spin_unlock(pthread_spinlock_t *s)
{
    int r = NEXT(int (*)(pthread_spinlock_t *), "pthread_spin_unlock")(s);
    if (r == 0) {
        hold_end((void *)s);
        after_release(0);
    }
    return r;
}

FSAFE_EXPORT int pthread_spin_destroy(pthread_spinlock_t *s)
{
    hold_forget((void *)s);
    return NEXT(int (*)(pthread_spinlock_t *), "pthread_spin_destroy")(s);
}

/* ---- condition waits ----------------------------------------------------------- */
/*
 * The mutex is released and taken again inside libc, where no interposer
 * sees it: while the thread waits, its hold is marked WAITING, and a forker
 * takes that mutex itself so that the waiter cannot take it back across the
 * fork.  A cancelled wait returns with the mutex held (POSIX), before the
 * cleanup handlers run: the cleanup below marks the hold held again first.
 */
struct cond_hold {
    long slot;
};

static long wait_begin(void *cond, void *mutex, int kind, uintptr_t caller)
{
    struct fsafe__at_thread *t = me;
    if (unlikely(!t) && !(t = attach()))
        return -1;
    if (kind == FSAFE_MUTEX)
        monitor_note(mutex);
    long j = hold_find(t, mutex);
    if (j < 0) {
        /* Locked before tracking began: from here on the hold is known. */
        AO_t i = t->n;
        if (i >= FSAFE__AT_CAP)
            return -1;
        struct fsafe__at_entry *e = &t->e[i];
        AO_store(&e->info, FSAFE__AT_INFO(kind, FSAFE__AT_EXCL, FSAFE__AT_HELD));
        AO_store(&e->caller, caller);
        AO_store_release(&e->lock, (AO_t)mutex);
        AO_compiler_barrier();
        AO_store_release(&t->n, i + 1);
        j = (long)i;
    }
    AO_store(&t->e[j].cond, (AO_t)cond);
    AO_compiler_barrier();
    fsafe__at_set_estate(&t->e[j], FSAFE__AT_WAITING);
    return j;
}

static void wait_end(void *arg)
{
    struct cond_hold *h = arg;
    struct fsafe__at_thread *t = me;
    if (t && h->slot >= 0 && h->slot < FSAFE__AT_CAP)
        fsafe__at_set_estate(&t->e[h->slot], FSAFE__AT_HELD);
}

/* A condition wait, as an expression whose value is call's: the mutex's hold
 * is marked WAITING on cond for the wait (also when the wait is cancelled). */
#define COND_WAIT(cond, mutex, call)                                                               \
    ({                                                                                             \
        struct cond_hold h_ = {wait_begin((cond), (mutex), FSAFE_MUTEX, CALLER)};                  \
        int r_;                                                                                    \
        pthread_cleanup_push(wait_end, &h_);                                                       \
        r_ = (call);                                                                               \
        pthread_cleanup_pop(1);                                                                    \
        r_;                                                                                        \
    })

/* In the child of a multithreaded fork, waits without a timeout go through
 * the child's watch (watch.c). */
#define WATCHED unlikely(AO_load(&fsafe__watch_armed))

FSAFE_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    if (WATCHED)
        return COND_WAIT(c, m, fsafe__watch_cond_wait(c, m, "pthread_cond_wait", CALLER));
    return COND_WAIT(c, m,
                     NEXT(int (*)(pthread_cond_t *, pthread_mutex_t *), "pthread_cond_wait")(c, m));
}

FSAFE_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                        const struct timespec *ts)
{
    return COND_WAIT(c, m,
                     NEXT(int (*)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *),
                          "pthread_cond_timedwait")(c, m, ts));
}

FSAFE_EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk,
                                        const struct timespec *ts)
{
    return COND_WAIT(
        c, m,
        NEXT(int (*)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *),
             "pthread_cond_clockwait")(c, m, clk, ts));
}

/* ---- other libraries' locks (auto.h) ------------------------------------------ */
long fsafe__at_lock_begin(void *lock, int kind, int mode, uintptr_t caller)
{
    return hold_begin(lock, kind, mode, caller);
}

void fsafe__at_lock_done(long slot, void *lock, int kind, int mode)
{
    hold_done(slot, lock, FSAFE__AT_INFO(kind, mode, FSAFE__AT_HELD));
}

void fsafe__at_lock_cancel(long slot)
{
    hold_cancel(slot);
}

void fsafe__at_unlocked(void *lock)
{
    hold_end(lock);
    after_release(0);
}

/* No condition variable is noted: the caller's kind needs no reset of one. */
long fsafe__at_wait_begin(void *lock, int kind, uintptr_t caller)
{
    return wait_begin(NULL, lock, kind, caller);
}

void fsafe__at_wait_end(long slot)
{
    struct cond_hold h = {slot};
    wait_end(&h);
}

FSAFE_EXPORT int pthread_cond_signal(pthread_cond_t *c)
{
    int r = NEXT(int (*)(pthread_cond_t *), "pthread_cond_signal")(c);
    after_release(1);
    return r;
}

FSAFE_EXPORT int pthread_cond_broadcast(pthread_cond_t *c)
{
    int r = NEXT(int (*)(pthread_cond_t *), "pthread_cond_broadcast")(c);
    after_release(1);
    return r;
}

/* ---- C11 threads (glibc: mtx_t and cnd_t are the pthread objects) ----------------- */
FSAFE_EXPORT int mtx_lock(mtx_t *m)
{
    return TRACKED(FSAFE_MUTEX, FSAFE__AT_EXCL, (void *)m, NEXT(int (*)(mtx_t *), "mtx_lock")(m),
                   thrd_ok);
}

FSAFE_EXPORT int mtx_trylock(mtx_t *m)
{
    return TRACKED(FSAFE_MUTEX, FSAFE__AT_EXCL, (void *)m, NEXT(int (*)(mtx_t *), "mtx_trylock")(m),
                   thrd_ok);
}

FSAFE_EXPORT int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
    return TRACKED(FSAFE_MUTEX, FSAFE__AT_EXCL, (void *)m,
                   NEXT(int (*)(mtx_t *, const struct timespec *), "mtx_timedlock")(m, ts),
                   thrd_ok);
}

FSAFE_EXPORT int mtx_unlock(mtx_t *m)
{
    int r = NEXT(int (*)(mtx_t *), "mtx_unlock")(m);
    if (r == thrd_success) {
        hold_end((void *)m);
        after_release(0);
    }
    return r;
}

FSAFE_EXPORT void mtx_destroy(mtx_t *m)
{
    hold_forget((void *)m);
    monitor_forget((void *)m);
    NEXT(void (*)(mtx_t *), "mtx_destroy")(m);
}

FSAFE_EXPORT int cnd_signal(cnd_t *c)
{
    int r = NEXT(int (*)(cnd_t *), "cnd_signal")(c);
    after_release(1);
    return r;
}

FSAFE_EXPORT int cnd_broadcast(cnd_t *c)
{
    int r = NEXT(int (*)(cnd_t *), "cnd_broadcast")(c);
    after_release(1);
    return r;
}

FSAFE_EXPORT int cnd_wait(cnd_t *c, mtx_t *m)
{
    /* glibc's cnd_t and mtx_t are its pthread objects (nptl/cnd_wait.c). */
    if (WATCHED)
        return COND_WAIT((void *)c, (void *)m,
                         fsafe__watch_cond_wait((pthread_cond_t *)(void *)c,
                                                (pthread_mutex_t *)(void *)m, "cnd_wait",
                                                CALLER) == 0
                             ? thrd_success
                             : thrd_error);
    return COND_WAIT((void *)c, (void *)m, NEXT(int (*)(cnd_t *, mtx_t *), "cnd_wait")(c, m));
}

FSAFE_EXPORT int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m,
                               const struct timespec *restrict ts)
{
    return COND_WAIT(
        (void *)c, (void *)m,
        NEXT(int (*)(cnd_t *, mtx_t *, const struct timespec *), "cnd_timedwait")(c, m, ts));
}

/* ---- gates (auto.h) ------------------------------------------------------------ */
/* A gate has no lock word to wait for: its entry is HELD from the start
 * (one store, where a lock call stores ACQUIRING and then HELD). */
/* The forker's own call of an exit-handler or loader function during its
 * fork (another library's atfork prepare handler calling atexit, which a
 * C++ static's first use does, or dlclose, whose __cxa_finalize walks the
 * exit handlers) takes __exit_funcs_lock, which the registered walk may hold
 * for it (FSAFE_LOCKS' "lll" kind): the walk gives those back first, or the
 * thread would wait for itself.  Other gated calls keep them. */
static int takes_exit_lock(const struct fsafe__gate *g)
{
    return strncmp(g->family, "exit handlers", 13) == 0 || strncmp(g->family, "loader", 6) == 0;
}

void fsafe__gate_enter(struct fsafe__gate *g, uintptr_t caller)
{
    AO_t info = FSAFE__AT_INFO(FSAFE__AT_GATE, FSAFE__AT_EXCL, FSAFE__AT_HELD);
    if (unlikely(!enter_fast(g, info, caller)) &&
        enter_slow(g, FSAFE__AT_GATE, info, caller) == FSAFE__AT_FORKER_CALL &&
        takes_exit_lock(g))
        fsafe__svc.walk_give_back_libc();
}

void fsafe__gate_leave(struct fsafe__gate *g)
{
    hold_end(g);
    after_release(0);
}
