/* SPDX-License-Identifier: MIT */
/*
 * POSIX semaphores used as locks (auto mode): interposes sem_wait,
 * sem_timedwait, sem_clockwait, sem_trywait, sem_post, sem_init and
 * sem_destroy, learns which semaphores behave as locks, and in the child
 * posts again each one that another thread held at the fork.  It never makes
 * the forker wait.  No malloc and no lock anywhere; fsafe__sem_postfork_child runs in
 * the child: async-signal-safe calls only.
 *
 * Why (CPython, read in its sources; checked on Debian 12's python3.11):
 * - CPython 3.11 builds every PyThread lock on a POSIX semaphore where the
 *   platform has them (USE_SEMAPHORES in Python/thread_pthread.h; Debian's
 *   binary imports sem_init, sem_wait, sem_trywait, sem_clockwait, sem_post,
 *   sem_destroy): allocate = sem_init(s, 0, 1); acquire = sem_trywait, then,
 *   with the GIL released, sem_wait (no timeout) or sem_clockwait
 *   (CLOCK_MONOTONIC, with a timeout); release = sem_post, from any thread.
 *   threading.Lock, the C RLock's inner lock, the lock of every buffered file
 *   object (BufferedWriter/Reader: ENTER_BUFFERED, a trywait then a blocking
 *   acquire), the import lock and the module locks are all such semaphores.
 *   The GIL is not: it is a pthread mutex and condition (track.c).
 * - In the child CPython re-creates only its own runtime locks
 *   (PyOS_AfterFork_Child: the GIL, the pending-calls lock, the import lock,
 *   the runtime's interpreter and registry locks), and the stdlib re-creates
 *   a few more through os.register_at_fork: threading's own (_after_fork),
 *   logging's module lock and every handler's lock (3.9+), concurrent.futures'
 *   shutdown lock.  A re-created lock is a new semaphore (the old one is
 *   leaked on purpose), so posting the old one here is harmless.  Nothing
 *   re-creates a user's threading.Lock/RLock, a queue.Queue's mutex or a
 *   buffered file's lock: a child that needs one another thread held hangs.
 * - 3.12 still uses semaphores; it only warns (DeprecationWarning) when a
 *   process with threads forks.  3.13 makes threading.Lock a PyMutex (a byte
 *   taken with an atomic compare-and-swap, waiters parked in a parking lot on
 *   a per-thread semaphore that another thread posts); later versions move
 *   RLock and then PyThread_allocate_lock itself (gh-134745) to PyMutex.  A
 *   PyMutex makes no call fsafe can see: such a lock held at the fork stays
 *   held in the child, which hangs as it would without fsafe.  The parking
 *   lot's semaphores are posted by other threads, so they are recognised as
 *   signalling and never touched.
 *
 * The rules.  A private semaphore (glibc: not pshared, not sem_open) is
 * used like a lock while every post comes from the thread that took it and
 * its value never exceeds 1; anything else makes it "signalling", for good
 * (until sem_init or sem_destroy at that address).  It *is* a lock (the LOCK
 * bit) once that shows: one thread took it and posted it again, or another
 * thread took it after its holder let go; or from the start, when CPython's
 * lock allocator made it (sem_init with value 1 called from the object that
 * defines PyThread_allocate_lock: every such semaphore is a PyThread lock).
 * Until then, a semaphore taken once and kept, such as a one-shot token
 * (issue 25: value 1, taken by a worker, never posted), is left alone: the
 * child sees value 0, as without fsafe.  Per semaphore, a table keyed by
 * address holds its state: 0 (free), SIGNAL, or the record of the thread
 * that holds it, each with the LOCK bit.  Per thread, a record lists the
 * semaphores it took and has not posted (the fork-time enumeration).  The
 * child posts a semaphore only if it is a LOCK, another thread's record
 * lists it, the table still names that thread as its holder, and its value
 * is 0; the forker's own holds stay held.  Process-shared semaphores are
 * never posted: the parent's holder is real.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "auto.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* glibc's sem_t on LP64 (src/common/glibc.h).  Elsewhere the interposers
 * only pass calls through. */
#if defined(__GLIBC__) && defined(__LP64__)
#define SEM_TRACK 1
#else
#define SEM_TRACK 0
#endif

#define sem_value fsafe__gl_sem_value
#define sem_private fsafe__gl_sem_private

/* ---- the real functions ------------------------------------------------------ */
struct real {
    int (*wait)(sem_t *);
    int (*timedwait)(sem_t *, const struct timespec *);
    int (*clockwait)(sem_t *, clockid_t, const struct timespec *);
    int (*trywait)(sem_t *);
    int (*post)(sem_t *);
    int (*init)(sem_t *, int, unsigned);
    int (*destroy)(sem_t *);
};
static struct real real;

/* Found at first use (a call may come before the constructor) by
 * fsafe__next_sym; sem_post by the first thread that takes a semaphore too,
 * so that the child never needs dlsym. */
#define REAL(field, name) FSAFE__NEXT_IN((AO_t *)&real.field, __typeof__(real.field), name)

/* ---- per-semaphore state ---------------------------------------------------------- */
/*
 * An address table (fsafe__addr_find): keys never removed (an address stays
 * known; sem_init and sem_destroy clear its state).  When the probe limit is
 * reached, the semaphore goes untracked (the child then behaves as without
 * fsafe for it).
 */
#define TAB_BITS 15
#define TAB_SIZE (1u << TAB_BITS)
#define SIGNAL ((AO_t)1) /* state: signalling, never touched */
#define LOCK ((AO_t)2)   /* state bit: shown to be a lock (records are aligned) */

static inline AO_t holder_of(AO_t st)
{
    return st == SIGNAL ? 0 : st & ~LOCK;
}

static struct fsafe__addr_slot *tab; /* NULL: tracking off (FSAFE_AUTO=0, no constructor yet) */
static AO_t tab_full;                /* semaphores left untracked for want of room */

static inline struct fsafe__addr_slot *slot_find(struct fsafe__addr_slot *t, const void *s, int insert)
{
    return fsafe__addr_get(t, TAB_BITS, s, insert, &tab_full);
}

/* ---- per-thread records ------------------------------------------------------------ */
#define REC_CAP 32 /* semaphores one thread holds at once; more go untracked */

struct rec {
    AO_t in_use;      /* fsafe__at_token while a live thread owns the record */
    AO_t n;           /* entries in held[]; owner writes (store_release) */
    struct rec *next; /* every record ever made; never unlinked */
    void *volatile held[REC_CAP];
};

static AO_t recs; /* head of the list */
static __thread struct rec *me __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static AO_t have_key;

static void on_exit_thread(void *p)
{
    struct rec *r = p;
    if (me == r)
        me = NULL;
    AO_store_release(&r->n, 0);
    AO_store_release(&r->in_use, 0);
}

static struct rec *attach(void)
{
    int saved = errno;
    struct rec *r = FSAFE__RECORDS_CLAIM(&recs, struct rec);
    if (!r)
        return NULL; /* the thread goes untracked */
    AO_store_release(&r->n, 0);
    me = r;
    if (AO_load_acquire(&have_key))
        pthread_setspecific(exit_key, r); /* keys below 32 never allocate */
    errno = saved;
    return r;
}

/* An entry is a semaphore r holds, or (low bit set) one r is taking: its
 * wait may have decremented it and not yet returned (sem_take). */
#define ACQUIRING ((uintptr_t)1)

/* Drops the entries of r whose semaphore r no longer holds (posted by another
 * thread, destroyed, re-initialised).  Owner only. */
static void rec_prune(struct rec *r)
{
    AO_t n = r->n, keep = 0;
    for (AO_t j = 0; j < n; j++) {
        void *s = r->held[j];
        struct fsafe__addr_slot *e = s ? slot_find(tab, s, 0) : NULL;
        if (s && ((uintptr_t)s & ACQUIRING)) {
            r->held[keep++] = s;
            continue;
        }
        if (!e || holder_of(AO_load(&e->state)) != (AO_t)r)
            continue;
        r->held[keep++] = s;
    }
    AO_store_release(&r->n, keep);
}

static __attribute__((noinline)) void rec_add_full(struct rec *r, void *s)
{
    rec_prune(r);
    AO_t n = r->n;
    if (n >= REC_CAP)
        return; /* untracked hold: the table still names r, nothing lists it */
    r->held[n] = s;
    AO_store_release(&r->n, n + 1);
}

static inline void rec_add(struct rec *r, void *s)
{
    AO_t n = r->n;
    if (unlikely(n >= REC_CAP)) {
        rec_add_full(r, s);
        return;
    }
    r->held[n] = s;
    AO_store_release(&r->n, n + 1);
}

/* Removes the topmost entry for s.  At every moment each held semaphore is
 * listed at least once (the top entry is copied down before n shrinks); a
 * duplicate is harmless, the child posts only a semaphore whose value is 0. */
static void rec_drop(struct rec *r, const void *s)
{
    AO_t n = r->n;
    for (AO_t j = n; j-- > 0;) {
        if (r->held[j] != s)
            continue;
        if (j != n - 1)
            r->held[j] = r->held[n - 1];
        AO_compiler_barrier();
        AO_store_release(&r->n, n - 1);
        return;
    }
}

/* Replaces r's topmost entry `from` with `to` (NULL: drops it); 0 if there
 * is none.  Owner only. */
static int rec_swap(struct rec *r, void *from, void *to)
{
    for (AO_t j = r->n; j-- > 0;) {
        if (r->held[j] != from)
            continue;
        if (to)
            r->held[j] = to;
        else
            rec_drop(r, from);
        return 1;
    }
    return 0;
}

/* ---- the rules ------------------------------------------------------------------------- */
/* Before a wait on s: notes that r is taking s (entry s | ACQUIRING), so
 * that a fork between the decrement and took() still knows who has it.
 * Returns the record, or NULL when s is not tracked; *at is the entry's
 * slot (REC_CAP when the record was full). */
static inline struct rec *taking(sem_t *s, AO_t *at)
{
    struct fsafe__addr_slot *t = (struct fsafe__addr_slot *)AO_load_acquire((AO_t *)&tab);
    if (!t || !sem_private(s))
        return NULL;
    struct rec *r = me;
    if (unlikely(!r)) {
        if (!(r = attach()))
            return NULL;
        /* The child posts with it (fsafe__sem_postfork_child): found now, in the
         * parent, once a thread takes a semaphore. */
        (void)REAL(post, "sem_post");
    }
    void *pending = (void *)((uintptr_t)s | ACQUIRING);
    AO_t n = r->n;
    if (unlikely(n >= REC_CAP)) {
        rec_add_full(r, pending);
        *at = REC_CAP;
        return r;
    }
    r->held[n] = pending;
    AO_store_release(&r->n, n + 1);
    *at = n;
    return r;
}

/* Thread r took s (a wait returned 0): the entry `taking` made becomes a
 * hold, or goes when s is not (or no longer) a lock.  Touches no errno. */
static __attribute__((noinline)) void took(struct rec *r, sem_t *s)
{
    void *pending = (void *)((uintptr_t)s | ACQUIRING);
    struct fsafe__addr_slot *e = slot_find(tab, s, 1);
    if (!e) {
        rec_swap(r, pending, NULL);
        return;
    }
    AO_t st = AO_load_acquire(&e->state);
    for (;;) {
        if (st == SIGNAL) {
            rec_swap(r, pending, NULL);
            return;
        }
        AO_t h = holder_of(st);
        if (h == (AO_t)r) {
            /* Taken twice without a post between: a count, not a lock. */
            AO_store_release(&e->state, SIGNAL);
            rec_swap(r, pending, NULL);
            return;
        }
        /* 0, or a holder whose post has not cleared its name yet (it posts
         * first, then clears with a CAS that now fails): that holder let go
         * (a foreign post would have made it SIGNAL first), so this is a
         * lock passed from thread to thread. */
        if (AO_compare_and_swap_full(&e->state, st, (AO_t)r | (h ? LOCK : st & LOCK)))
            break;
        st = AO_load_acquire(&e->state);
    }
    if (!rec_swap(r, pending, s))
        rec_add(r, s); /* (the record was full at `taking`) */
}

/*
 * After a wait on s that r noted with `taking` in slot at.  The usual case
 * inline: s known in its first table slot and named by nobody (0, or LOCK
 * after its holder's post), the entry still in its slot (no signal
 * handler's wait pruned the record in between): one CAS and one store.
 */
static inline int taken(struct rec *r, sem_t *s, AO_t at, int ret)
{
    if (!r)
        return ret;
    void *pending = (void *)((uintptr_t)s | ACQUIRING);
    if (ret != 0) {
        if (likely(at < REC_CAP && at + 1 == r->n && r->held[at] == pending)) {
            AO_store_release(&r->n, at);
            return ret;
        }
        rec_swap(r, pending, NULL);
        return ret;
    }
    struct fsafe__addr_slot *e = &tab[fsafe__addr_hash(s, TAB_BITS)];
    AO_t st;
    if (likely(AO_load_acquire(&e->key) == (AO_t)s) && likely(at < REC_CAP) &&
        likely(r->held[at] == pending) &&
        likely(((st = AO_load_acquire(&e->state)) & ~LOCK) == 0) &&
        likely(AO_compare_and_swap_full(&e->state, st, (AO_t)r | st))) {
        r->held[at] = s;
        return ret;
    }
    took(r, s);
    return ret;
}

/* ---- interposers ------------------------------------------------------------------------ */
#define TAKING(s, at) (SEM_TRACK ? taking((s), (at)) : NULL)

FSAFE_EXPORT int sem_wait(sem_t *s)
{
    AO_t at = REC_CAP;
    struct rec *r = TAKING(s, &at);
    if (SEM_TRACK && unlikely(AO_load(&fsafe__watch_armed))) /* the child's watch */
        return taken(r, s, at, fsafe__watch_sem_wait(s, (uintptr_t)__builtin_return_address(0)));
    return taken(r, s, at, REAL(wait, "sem_wait")(s));
}

FSAFE_EXPORT int sem_trywait(sem_t *s)
{
    AO_t at = REC_CAP;
    struct rec *r = TAKING(s, &at);
    return taken(r, s, at, REAL(trywait, "sem_trywait")(s));
}

FSAFE_EXPORT int sem_timedwait(sem_t *restrict s, const struct timespec *restrict ts)
{
    AO_t at = REC_CAP;
    struct rec *r = TAKING(s, &at);
    return taken(r, s, at, REAL(timedwait, "sem_timedwait")(s, ts));
}

FSAFE_EXPORT int sem_clockwait(sem_t *restrict s, clockid_t c, const struct timespec *restrict ts)
{
    AO_t at = REC_CAP;
    struct rec *r = TAKING(s, &at);
    return taken(r, s, at, REAL(clockwait, "sem_clockwait")(s, c, ts));
}

/*
 * A post by the holder: the real post first, then the holder's name is
 * cleared (CAS: a new taker may already have put its own).  So a semaphore
 * held at the fork is always named in the table; a free one may still name
 * its last holder, and its value (1) keeps the child from posting it.  Any
 * other post, and a value above 1 after the holder's post, make it
 * signalling.  sem_post is async-signal-safe, and so is this.
 */
FSAFE_EXPORT int sem_post(sem_t *s)
{
    int (*post)(sem_t *) = REAL(post, "sem_post");
    struct fsafe__addr_slot *t = (struct fsafe__addr_slot *)AO_load_acquire((AO_t *)&tab);
    if (!SEM_TRACK || !t || !sem_private(s))
        return post(s);
    struct fsafe__addr_slot *e = slot_find(t, s, 1);
    if (!e)
        return post(s);
    struct rec *r = me;
    AO_t st = AO_load_acquire(&e->state);
    if (st == SIGNAL)
        return post(s);
    if (!r || holder_of(st) != (AO_t)r) {
        /* Posted by a thread that did not take it (or before anyone did). */
        AO_store_release(&e->state, SIGNAL);
        return post(s);
    }
    int ret = post(s);
    /* (Nothing below touches errno: post's own value stays the caller's.) */
    AO_compare_and_swap_full(&e->state, st, LOCK); /* taken and given back: a lock */
    AO_t n = r->n;
    if (likely(n - 1 < REC_CAP) && likely(r->held[n - 1] == s)) {
        AO_store_release(&r->n, n - 1); /* the usual case: the topmost entry */
    } else {
        rec_drop(r, s);
    }
    if (unlikely(ret == 0 && sem_value(s) > 1))
        AO_store_release(&e->state, SIGNAL);
    return ret;
}

/* The object that defines PyThread_allocate_lock, as the span of its
 * segments, looked up at the first sem_init with value 1 (not at start-up:
 * a process that never makes a semaphore pays nothing); [0, 0) when there
 * is none. */
static uintptr_t cpython_lo, cpython_hi;
static AO_t cpython_looked;

static int span_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t want = *(uintptr_t *)data, lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        lo = a < lo ? a : lo;
        hi = a + ph->p_memsz > hi ? a + ph->p_memsz : hi;
    }
    if (want < lo || want >= hi)
        return 0;
    cpython_lo = lo;
    cpython_hi = hi;
    return 1;
}

static void find_cpython(void)
{
    void *f = dlsym(RTLD_DEFAULT, "PyThread_allocate_lock");
    uintptr_t want = (uintptr_t)f;
    if (f)
        dl_iterate_phdr(span_cb, &want);
}

/* A new semaphore at this address: what was learnt about the old one goes.
 * A PyThread lock is a lock from the start. */
FSAFE_EXPORT int sem_init(sem_t *s, int pshared, unsigned value)
{
    uintptr_t caller = (uintptr_t)__builtin_return_address(0);
    int ret = REAL(init, "sem_init")(s, pshared, value);
    struct fsafe__addr_slot *t = (struct fsafe__addr_slot *)AO_load_acquire((AO_t *)&tab);
    if (SEM_TRACK && ret == 0 && t) {
        if (value == 1 && !AO_load_acquire(&cpython_looked)) {
            find_cpython();
            AO_store_release(&cpython_looked, 1);
        }
        int declared = value == 1 && caller >= cpython_lo && caller < cpython_hi;
        struct fsafe__addr_slot *e = slot_find(t, s, value > 1 || declared);
        if (e)
            AO_store_release(&e->state, value > 1 ? SIGNAL : declared ? LOCK : 0);
    }
    return ret;
}

FSAFE_EXPORT int sem_destroy(sem_t *s)
{
    struct fsafe__addr_slot *t = (struct fsafe__addr_slot *)AO_load_acquire((AO_t *)&tab);
    if (SEM_TRACK && t) {
        struct fsafe__addr_slot *e = slot_find(t, s, 0);
        if (e)
            AO_store_release(&e->state, 0);
        if (me)
            rec_drop(me, s);
    }
    return REAL(destroy, "sem_destroy")(s);
}

/* ---- setup and the child ------------------------------------------------------------------ */
void fsafe__sem_init(void)
{
    if (!SEM_TRACK)
        return;
    if (pthread_key_create(&exit_key, on_exit_thread) == 0) {
        AO_store_release(&have_key, 1);
        if (me)
            pthread_setspecific(exit_key, me);
    }
    /* Untouched pages cost nothing; the table is 512 KiB of address space. */
    void *p = mmap(NULL, TAB_SIZE * sizeof(struct fsafe__addr_slot), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED)
        AO_store_release((AO_t *)&tab, (AO_t)p);
}

/* In the child, on its only thread (the forker's copy): async-signal-safe. */
void fsafe__sem_postfork_child(AO_t parent_token)
{
    struct fsafe__addr_slot *t = tab;
    struct rec *mine = me;
    if (mine)
        AO_store_release(&mine->in_use, AO_load(&fsafe__at_token)); /* the child's now */
    if (!SEM_TRACK || !t)
        return;
    void *first = NULL;
    int nposted = 0;
    for (struct rec *r = (struct rec *)AO_load_acquire(&recs); r; r = r->next) {
        if (r == mine || AO_load_acquire(&r->in_use) != parent_token)
            continue;
        /* A parent's thread: its record is left as the fork copied it (free
         * to claim here: fsafe__at_token has moved on). */
        AO_t n = AO_load_acquire(&r->n);
        for (AO_t j = 0; j < n && j < REC_CAP; j++) {
            sem_t *s = r->held[j];
            if ((uintptr_t)s & ACQUIRING) {
                /* In a wait at the fork: if it decremented a lock nobody is
                 * named as holding, that thread has it (and is not here). */
                s = (sem_t *)((uintptr_t)s & ~ACQUIRING);
                struct fsafe__addr_slot *e = slot_find(t, s, 0);
                AO_t st = e ? AO_load(&e->state) : SIGNAL;
                /* (Named as this thread: took() ran its CAS, not yet its
                 * swap of this entry.) */
                if ((st != LOCK && st != ((AO_t)r | LOCK)) || sem_value(s) != 0)
                    continue; /* signalling, unproven, held by someone named, or not taken */
                AO_store(&e->state, LOCK);
                real.post(s);
                if (!nposted++)
                    first = s;
                continue;
            }
            struct fsafe__addr_slot *e = s ? slot_find(t, s, 0) : NULL;
            AO_t st = e ? AO_load(&e->state) : 0;
            if (holder_of(st) != (AO_t)r)
                continue;           /* posted, re-initialised, or signalling since */
            AO_store(&e->state, st & LOCK); /* its holder does not exist here */
            if (!(st & LOCK))
                continue; /* taken once and kept: maybe a token, not a lock */
            if (!sem_private(s) || sem_value(s) != 0)
                continue;
            real.post(s);
            if (!nposted++)
                first = s;
        }
    }
    if (nposted && fsafe__svc.cfg && fsafe__svc.cfg->verbose) {
        fsafe__amsg("child %d: posted %d semaphore%s that other threads held as locks at the fork "
                    "(first: %p); the fork does not wait for semaphores, so what they guard may "
                    "be half-updated",
                    (int)getpid(), nposted, nposted == 1 ? "" : "s", first);
    }
}
