/* SPDX-License-Identifier: MIT */
/*
 * The lock registry: register, unregister, and the ordered walk fork makes.
 *
 * Writers (register/unregister) are serialised by reg_mutex.  The forker never
 * takes reg_mutex: it reads the order list lock-free, and it claims each entry
 * with one CAS on the entry's state word.  Every writer step leaves the order
 * list valid for a reader, so a child whose writer thread vanished mid-step
 * can rebuild the writer-side indexes from it (registry_rebuild).
 * This file never mallocs: entries, the hash table and the rank directory live
 * in mmap'd memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>
#include <time.h>

#include "internal.h"

/*
 * Entry state word: (epoch << 4) | PENDING | status.
 *
 * The global fork_epoch is odd while a fork walk is active and even otherwise.
 * An entry whose status is CLAIMED/RELEASED belongs to the fork of the
 * epoch stored with it; once fork_epoch has moved on, it is plain LIVE again.
 * This is what lets the parent and the child end a fork with a single store
 * instead of writing every entry (each such write would be a copy-on-write
 * fault on the registry's pages).
 *
 *   LIVE      registered, not held by fsafe
 *   CLAIMED   the forker of epoch E is acquiring the lock, or holds it (then
 *             it is in the held list, tagged with how it holds it)
 *   RELEASED  the forker of epoch E is done with it before E ended
 *   DEAD      unregistered; fork skips it; unlinked by the writer
 *   PENDING   an unregister waits for the forker of epoch E to let go
 */
enum { ST_FREE = 0, ST_LIVE = 1, ST_DEAD = 2, ST_CLAIMED = 3, ST_RELEASED = 4 };
#define ST_MASK 7u
#define ST_PENDING 8u
#define ST_EPOCH_SHIFT 4
#define ST_MAKE(epoch, st) (((AO_t)(epoch) << ST_EPOCH_SHIFT) | (st))
#define ST_STATUS(w) ((unsigned)((w)&ST_MASK))
#define ST_EPOCH(w) ((w) >> ST_EPOCH_SHIFT)

static AO_t fork_epoch;    /* odd while a fork walk is active */
static AO_t pending_count; /* unregisters waiting on the forker */
static AO_t nregistered;

static pthread_mutex_t reg_mutex = PTHREAD_MUTEX_INITIALIZER;
static int reg_dirty; /* child: a writer vanished mid-step; rebuild before writing */

/* Order list: ascending rank, registration order within a rank. */
static struct fsafe__entry head = {.rank = INT_MIN};

/*
 * The held list: the locks this fork holds, in acquisition order, with what
 * the parent and the child need to release them (struct fsafe__held).  A
 * dense array: a fork writes 16 bytes per lock into it rather than dirtying
 * every entry's page, and the child reads it sequentially with cold caches.
 * A released slot has ptr == NULL.  Writers make sure the published buffer can
 * hold every entry slot there is (held_reserve) before linking an entry from
 * a new chunk; a forker keeps the buffer it loaded, so old buffers are never
 * unmapped.
 */
struct held_buf {
    size_t cap;
    struct fsafe__held slot[];
};
static AO_t held_published;     /* struct held_buf *, writers publish */
static struct held_buf *held;   /* forker-only: the buffer of this walk */
/* Forker-only, but read by the child of a fork that bypassed the gate while
 * the forker walked (reset_orphaned): a slot is written before held_n counts
 * it (store_release). */
static AO_t held_n;


/* ---- memory ------------------------------------------------------------ */
static void *map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Entries live in chunks that are never unmapped: a forker may still be
 * reading an entry that a writer has just unlinked (see limbo). */
#define CHUNK0 256
#define NCHUNKS 23 /* up to 2^31 entries: index fits in 32 bits */
static struct fsafe__entry *chunks[NCHUNKS];
static AO_t *chunk_states[NCHUNKS]; /* one state word per entry, dense */
static size_t chunk_used[NCHUNKS];
static int nchunks;
static struct fsafe__entry *free_list;
static struct fsafe__entry *limbo; /* unlinked while a fork was active */

static size_t chunk_cap(int k)
{
    return (size_t)CHUNK0 << k;
}

static size_t total_slots(int n)
{
    return ((size_t)CHUNK0 << n) - CHUNK0;
}

/* Publishes a held buffer with room for every slot of the first n chunks. */
static int held_reserve(int n)
{
    struct held_buf *cur = (struct held_buf *)AO_load_acquire(&held_published);
    size_t need = total_slots(n);
    if (cur && cur->cap >= need)
        return 0;
    struct held_buf *b = map_zeroed(sizeof *b + need * sizeof b->slot[0]);
    if (!b)
        return ENOMEM;
    b->cap = need;
    AO_store_release(&held_published, (AO_t)b);
    return 0;
}

/* The entry in slot i (the forker's way back from the held list). */
static struct fsafe__entry *entry_at(uint32_t i)
{
    int k = 63 - __builtin_clzll((unsigned long long)(i / CHUNK0 + 1));
    return &chunks[k][i - total_slots(k)];
}

static struct fsafe__entry *entry_alloc(void)
{
    struct fsafe__entry *e = free_list;
    if (e) {
        free_list = e->aux_next;
        return e;
    }
    if (nchunks == 0 || chunk_used[nchunks - 1] == chunk_cap(nchunks - 1)) {
        if (nchunks == NCHUNKS || held_reserve(nchunks + 1) != 0)
            return NULL;
        struct fsafe__entry *c = map_zeroed(chunk_cap(nchunks) * sizeof *c);
        AO_t *st = c ? map_zeroed(chunk_cap(nchunks) * sizeof *st) : NULL;
        if (!st) {
            if (c)
                munmap(c, chunk_cap(nchunks) * sizeof *c);
            return NULL;
        }
        chunks[nchunks] = c;
        chunk_states[nchunks] = st;
        nchunks++;
    }
    int k = nchunks - 1;
    size_t j = chunk_used[k]++;
    e = &chunks[k][j];
    e->st = &chunk_states[k][j];
    e->index = (uint32_t)(total_slots(k) + j);
    return e;
}

/* An unlinked entry may be reused only once no forker can still be standing on
 * it: immediately if no fork walk was active after the unlink became visible,
 * otherwise once the epoch it was unlinked in has ended. */
static void entry_retire(struct fsafe__entry *e)
{
    AO_nop_full(); /* order the unlink before reading the epoch (Dekker with the forker) */
    AO_t ep = AO_load_acquire(&fork_epoch);
    if ((ep & 1) == 0) {
        AO_store_release(e->st, ST_FREE);
        e->aux_next = free_list;
        free_list = e;
    } else {
        e->limbo_epoch = ep;
        e->aux_next = limbo;
        limbo = e;
    }
}

static void limbo_reclaim(void)
{
    AO_t ep = AO_load_acquire(&fork_epoch);
    struct fsafe__entry **pp = &limbo;
    while (*pp) {
        struct fsafe__entry *e = *pp;
        if (e->limbo_epoch != ep) {
            *pp = e->aux_next;
            AO_store_release(e->st, ST_FREE);
            e->aux_next = free_list;
            free_list = e;
        } else {
            pp = &e->aux_next;
        }
    }
}

/* ---- hash: lock address -> entry (writer-only) -------------------------- */
#define TOMB ((struct fsafe__entry *)1)
static struct fsafe__entry **htab;
static size_t hcap, hused, htombs;

static size_t hslot(const void *p, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (cap - 1);
}

static struct fsafe__entry **hfind(const void *lock)
{
    if (!htab)
        return NULL;
    for (size_t i = hslot(lock, hcap);; i = (i + 1) & (hcap - 1)) {
        struct fsafe__entry *e = htab[i];
        if (!e)
            return NULL;
        if (e != TOMB && e->lock == lock)
            return &htab[i];
    }
}

static void hput_raw(struct fsafe__entry **tab, size_t cap, struct fsafe__entry *e)
{
    size_t i = hslot(e->lock, cap);
    while (tab[i] && tab[i] != TOMB)
        i = (i + 1) & (cap - 1);
    tab[i] = e;
}

static int hgrow_if_needed(void)
{
    if (htab && (hused + htombs + 1) * 4 < hcap * 3)
        return 0;
    size_t ncap = hcap ? hcap : 1024;
    while ((hused + 1) * 2 > ncap)
        ncap *= 2;
    struct fsafe__entry **nt = map_zeroed(ncap * sizeof *nt);
    if (!nt)
        return ENOMEM;
    for (size_t i = 0; i < hcap; i++)
        if (htab[i] && htab[i] != TOMB)
            hput_raw(nt, ncap, htab[i]);
    if (htab)
        munmap(htab, hcap * sizeof *htab);
    htab = nt;
    hcap = ncap;
    htombs = 0;
    return 0;
}

/* ---- rank directory: sorted (rank, last entry of that rank) -------------- */
struct rank_slot {
    int rank;
    struct fsafe__entry *tail;
};
static struct rank_slot *rdir;
static size_t rcount, rcap;

/* Index of the first slot with rank >= r. */
static size_t rdir_lower(int r)
{
    size_t lo = 0, hi = rcount;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rdir[mid].rank < r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int rdir_reserve(void)
{
    if (rcount < rcap)
        return 0;
    size_t ncap = rcap ? rcap * 2 : 256;
    struct rank_slot *n = map_zeroed(ncap * sizeof *n);
    if (!n)
        return ENOMEM;
    if (rdir) {
        memcpy(n, rdir, rcount * sizeof *n);
        munmap(rdir, rcap * sizeof *rdir);
    }
    rdir = n;
    rcap = ncap;
    return 0;
}

/* Links e into the order list after the last entry of rank <= e->rank.  The
 * single store_release of pred->next is the publication point. */
static void order_insert(struct fsafe__entry *e)
{
    size_t i = rdir_lower(e->rank);
    struct fsafe__entry *pred;
    if (i < rcount && rdir[i].rank == e->rank) {
        pred = rdir[i].tail;
        rdir[i].tail = e;
    } else {
        pred = i > 0 ? rdir[i - 1].tail : &head;
        memmove(&rdir[i + 1], &rdir[i], (rcount - i) * sizeof *rdir);
        rdir[i].rank = e->rank;
        rdir[i].tail = e;
        rcount++;
    }
    struct fsafe__entry *succ = (struct fsafe__entry *)pred->next;
    e->prev = pred;
    e->next = (AO_t)succ;
    if (succ)
        succ->prev = e;
    AO_store_release(&pred->next, (AO_t)e);
}

static void order_unlink(struct fsafe__entry *e)
{
    size_t i = rdir_lower(e->rank);
    if (i < rcount && rdir[i].tail == e) {
        if (e->prev != &head && e->prev->rank == e->rank) {
            rdir[i].tail = e->prev;
        } else {
            memmove(&rdir[i], &rdir[i + 1], (rcount - i - 1) * sizeof *rdir);
            rcount--;
        }
    }
    struct fsafe__entry *succ = (struct fsafe__entry *)e->next;
    if (succ)
        succ->prev = e->prev;
    /* e->next stays as it is: a forker standing on e walks on from it. */
    AO_store_release(&e->prev->next, (AO_t)succ);
}

/* A child whose writer vanished mid-step: rebuild the hash, the rank directory,
 * the free list and the prev links from the order list, which is always
 * consistent.  Entries being unregistered (DEAD, PENDING) are dropped.  The old
 * hash table and rank directory are abandoned, not reused: the writer may have
 * vanished between unmapping one and publishing its replacement. */
static int dropped(AO_t w)
{
    return ST_STATUS(w) == ST_DEAD || ST_STATUS(w) == ST_FREE || (w & ST_PENDING);
}

static void registry_rebuild(void)
{
    size_t live = 0;
    for (struct fsafe__entry *e = (struct fsafe__entry *)head.next; e;
         e = (struct fsafe__entry *)e->next)
        live += !dropped(*e->st);
    htab = NULL;
    hcap = hused = htombs = 0;
    rdir = NULL;
    rcap = rcount = 0;
    free_list = limbo = NULL;
    for (int k = 0; k < nchunks; k++)
        for (size_t j = 0; chunks[k] && chunk_states[k] && j < chunk_used[k]; j++) {
            /* The slot's own fields, again: a writer may have vanished
             * between counting the slot and filling them in. */
            chunks[k][j].st = &chunk_states[k][j];
            chunks[k][j].index = (uint32_t)(total_slots(k) + j);
            chunks[k][j].aux_next = TOMB; /* "not seen in the list" */
        }
    /* Sized up front so that nothing below can fail half-way. */
    hused = live; /* hgrow_if_needed sizes for hused + 1 */
    int ok = hgrow_if_needed() == 0;
    hused = 0;
    while (ok && rcap < live + 1)
        ok = (rcount = rcap, rdir_reserve() == 0);
    rcount = 0;
    uint64_t n = 0;
    struct fsafe__entry *pred = &head;
    for (struct fsafe__entry *e = (struct fsafe__entry *)head.next; e;
         e = (struct fsafe__entry *)e->next) {
        if (dropped(*e->st))
            continue; /* pred->next is re-pointed past it below */
        pred->next = (AO_t)e;
        e->prev = pred;
        e->aux_next = NULL;
        *e->st = ST_LIVE;
        if (ok) {
            hput_raw(htab, hcap, e);
            hused++;
            if (rcount && rdir[rcount - 1].rank == e->rank) {
                rdir[rcount - 1].tail = e;
            } else {
                rdir[rcount].rank = e->rank;
                rdir[rcount].tail = e;
                rcount++;
            }
        }
        pred = e;
        n++;
    }
    pred->next = 0;
    for (int k = 0; k < nchunks; k++)
        for (size_t j = 0; chunks[k] && chunk_states[k] && j < chunk_used[k]; j++) {
            struct fsafe__entry *e = &chunks[k][j];
            if (e->aux_next == TOMB) {
                *e->st = ST_FREE;
                e->aux_next = free_list;
                free_list = e;
            }
        }
    AO_store_release(&nregistered, n);
    /* Out of memory: stay dirty and try again at the next write. */
    reg_dirty = !ok;
}

/* Returns 0 with reg_mutex held, or ENOMEM (not held) when a child's rebuild
 * could not get memory: writing to a half-indexed registry could duplicate
 * entries. */
static int writer_lock(void)
{
    if (fsafe__in_fork_self()) {
        /* The forker itself (another library's atfork handler registers while
         * this thread's fork holds locks): the writer holding reg_mutex may be
         * an unregister waiting for this very fork to let go of its lock. */
        struct timespec ts = {0, 50 * 1000};
        while (pthread_mutex_trylock(&reg_mutex) != 0) {
            fsafe__registry_poll_pending();
            nanosleep(&ts, NULL);
        }
    } else {
        pthread_mutex_lock(&reg_mutex);
    }
    if (reg_dirty)
        registry_rebuild();
    if (reg_dirty) {
        pthread_mutex_unlock(&reg_mutex);
        return ENOMEM;
    }
    limbo_reclaim();
    return 0;
}

static void writer_unlock(void)
{
    pthread_mutex_unlock(&reg_mutex);
}

/* ---- public: register --------------------------------------------------- */
static int register_entry(void *lock, int kind, int flags, const struct fsafe_lock_ops *ops,
                          int rank, const char *name)
{
    fsafe__init();
    /* Decided before taking the writer lock: it reads /proc/self/maps. */
    unsigned short mem = 0;
    if (flags & FSAFE_SHARED)
        mem = FSAFE__MEM_SHARED;
    else if (!(flags & FSAFE_PRIVATE) && kind != FSAFE__KIND_OPS &&
             fsafe__lock_mem_shared(lock, kind))
        mem = FSAFE__MEM_SHARED;

    int err = writer_lock();
    if (err)
        return err;
    struct fsafe__entry *e = NULL;
    if (hfind(lock)) {
        err = EEXIST;
    } else if ((err = hgrow_if_needed()) != 0 || (err = rdir_reserve()) != 0) {
        /* err set */
    } else if (!(e = entry_alloc())) {
        err = ENOMEM;
    } else {
        e->lock = lock;
        e->rank = rank;
        e->kind = (unsigned short)kind;
        e->mem = mem;
        e->warned = 0;
        e->max_wait_ns = 0;
        e->aux_next = NULL;
        if (ops)
            e->ops = *ops;
        else
            memset(&e->ops, 0, sizeof e->ops);
        size_t n = name ? strnlen(name, FSAFE_NAME_MAX - 1) : 0;
        memcpy(e->name, name ? name : "", n);
        e->name[n] = '\0';
        AO_store_release(e->st, ST_LIVE);
        order_insert(e);
        hput_raw(htab, hcap, e);
        hused++;
        AO_fetch_and_add_full(&nregistered, 1);
    }
    writer_unlock();
    if (err && fsafe__cfg.verbose)
        fsafe__msg("register %p (%s): error %d", lock, name ? name : "", err);
    return err;
}

/* A pointer that cannot be a lock of that kind: misaligned, or not readable.
 * The read goes through the kernel (process_vm_readv on ourselves), so a bogus
 * pointer gives EINVAL here instead of a fault inside a later fork.  Where the
 * call is refused (seccomp, old kernel) only the alignment is checked. */
static int lock_ptr_bogus(void *lock, int base)
{
    size_t size = base == FSAFE_MUTEX    ? sizeof(pthread_mutex_t)
                  : base == FSAFE_RWLOCK ? sizeof(pthread_rwlock_t)
                                         : sizeof(pthread_spinlock_t);
    size_t align = base == FSAFE_MUTEX    ? _Alignof(pthread_mutex_t)
                   : base == FSAFE_RWLOCK ? _Alignof(pthread_rwlock_t)
                                          : _Alignof(pthread_spinlock_t);
    if ((uintptr_t)lock % align)
        return 1;
    char buf[sizeof(pthread_rwlock_t) > sizeof(pthread_mutex_t) ? sizeof(pthread_rwlock_t)
                                                                : sizeof(pthread_mutex_t)];
    struct iovec local = {buf, size}, remote = {lock, size};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) < 0 && errno == EFAULT;
}

FSAFE_EXPORT int fsafe_register_lock(void *lock, int kind, int rank, const char *name)
{
    int base = kind & 0xff, flags = kind & ~0xff;
    if (!lock || base < FSAFE_MUTEX || base > FSAFE_SPINLOCK ||
        (flags & ~(FSAFE_SHARED | FSAFE_PRIVATE)) ||
        (flags & (FSAFE_SHARED | FSAFE_PRIVATE)) == (FSAFE_SHARED | FSAFE_PRIVATE))
        return EINVAL;
    int saved = errno;
    int bogus = lock_ptr_bogus(lock, base);
    errno = saved;
    if (bogus)
        return EINVAL;
    return register_entry(lock, base, flags, NULL, rank, name);
}

FSAFE_EXPORT int fsafe_register_ops(void *key, const struct fsafe_lock_ops *ops, int rank,
                                    const char *name)
{
    if (!key || !ops || !ops->acquire || !ops->release_parent || !ops->release_child)
        return EINVAL;
    return register_entry(key, FSAFE__KIND_OPS, 0, ops, rank, name);
}

/* ---- public: unregister -------------------------------------------------- */
static int claimed_by_current_fork(AO_t w, AO_t epoch)
{
    unsigned st = ST_STATUS(w);
    return (epoch & 1) && ST_EPOCH(w) == epoch && st == ST_CLAIMED;
}

/* Waits, without reg_mutex's help, until the forker has let go of e. */
static void wait_for_forker(struct fsafe__entry *e)
{
    struct timespec ts = {0, 50 * 1000};
    for (;;) {
        if (fsafe__in_fork_self()) {
            /* Unregister from inside this thread's own fork (another library's
             * atfork prepare handler): we are the forker, so let go here. */
            fsafe__registry_poll_pending();
        }
        AO_t w = AO_load_acquire(e->st);
        if (!claimed_by_current_fork(w, AO_load_acquire(&fork_epoch)))
            return;
        nanosleep(&ts, NULL);
    }
}

FSAFE_EXPORT int fsafe_unregister_lock(void *lock)
{
    if (!lock)
        return EINVAL;
    fsafe__init();
    int err = writer_lock();
    if (err)
        return err;
    int counted = 0;
    for (;;) {
        struct fsafe__entry **slot = hfind(lock);
        if (!slot) {
            err = ENOENT;
            break;
        }
        struct fsafe__entry *e = *slot;
        AO_t w = AO_load_acquire(e->st);
        if (claimed_by_current_fork(w, AO_load_acquire(&fork_epoch))) {
            if (!(w & ST_PENDING)) {
                if (!AO_compare_and_swap_full(e->st, w, w | ST_PENDING))
                    continue;
                /* Once per call: after a wait the lock may be registered
                 * again and claimed by the next walk, and PENDING set anew
                 * (found by the model check, P5). */
                if (!counted)
                    AO_fetch_and_add_full(&pending_count, 1);
                counted = 1;
            }
            /* Wait without reg_mutex: the forker's path may register or
             * unregister (another library's atfork handler), and a thread the
             * forker waits for may be registering.  Entries are never unmapped,
             * so e stays readable; the slot is looked up again afterwards. */
            writer_unlock();
            wait_for_forker(e);
            if ((err = writer_lock()) != 0) {
                /* Not unregistered after all: the lock must not stay PENDING,
                 * or every later fork would skip it. */
                for (AO_t v; (v = AO_load_acquire(e->st)) & ST_PENDING;)
                    if (AO_compare_and_swap_full(e->st, v, v & ~(AO_t)ST_PENDING))
                        break;
                if (counted)
                    AO_fetch_and_add_full(&pending_count, (AO_t)-1);
                return err;
            }
            continue;
        }
        /* Not this fork's: DEAD wins the race against any later claim. */
        if (!AO_compare_and_swap_full(e->st, w, ST_DEAD))
            continue;
        *slot = TOMB;
        hused--;
        htombs++;
        order_unlink(e);
        entry_retire(e);
        AO_fetch_and_add_full(&nregistered, (AO_t)-1);
        break;
    }
    if (counted)
        AO_fetch_and_add_full(&pending_count, (AO_t)-1);
    writer_unlock();
    return err;
}

FSAFE_FORK_PATH uint64_t fsafe__registry_count(void)
{
    return AO_load_acquire(&nregistered);
}

void fsafe__registry_foreach(void (*fn)(const struct fsafe__entry *, void *), void *arg)
{
    if (writer_lock() != 0)
        return;
    for (struct fsafe__entry *e = (struct fsafe__entry *)head.next; e;
         e = (struct fsafe__entry *)e->next)
        if (ST_STATUS(*e->st) != ST_DEAD)
            fn(e, arg);
    writer_unlock();
}

/* ---- the fork side -------------------------------------------------------- */
/* Forker: move an entry from CLAIMED to RELEASED, keeping PENDING. */
static void mark_released(struct fsafe__entry *e)
{
    for (;;) {
        AO_t w = AO_load_acquire(e->st);
        AO_t n = (w & ~(AO_t)ST_MASK) | ST_RELEASED;
        if (AO_compare_and_swap_full(e->st, w, n))
            return;
    }
}

static int pending_on(struct fsafe__entry *e)
{
    return (AO_load_acquire(e->st) & ST_PENDING) != 0;
}

/* Let go, before the real fork, of every held entry whose unregister waits. */
void fsafe__registry_poll_pending(void)
{
    if (AO_load_acquire(&pending_count) == 0)
        return;
    for (size_t i = 0; i < held_n; i++) {
        struct fsafe__held *h = &held->slot[i];
        struct fsafe__entry *e = h->ptr ? entry_at(h->index) : NULL;
        if (h->ptr && pending_on(e)) {
            fsafe__lock_release_parent(h);
            h->ptr = NULL;
            mark_released(e);
        }
    }
}

/* Why the walk gave up: another thread waits to fork (ABORT_GATE), or a lock
 * stayed busy while the walk held others (ABORT_ORDER, see order_backoff). */
enum { ABORT_NONE, ABORT_GATE, ABORT_ORDER };
static int walk_aborted;
#define BACKOFF_AFTER_NS (5 * 1000 * 1000u)
/* How long the walk waits for one lock while it holds others before it gives
 * everything back (issue 12.5).  20 ms: two of lockops' wait slices, far above
 * any critical section that does not itself wait, and short enough that a
 * conflict costs a fork little.  0 turns the back-off off (tests only). */
static uint64_t order_backoff_ns = 20 * 1000 * 1000u;
static uint64_t order_waited_ns; /* the wait that made the walk give up */

void fsafe__registry_set_order_backoff_ms(unsigned ms)
{
    order_backoff_ns = (uint64_t)ms * 1000000u;
}

static int holding_any(void)
{
    for (size_t i = 0; i < held_n; i++)
        if (held->slot[i].ptr && held->slot[i].how == FSAFE__HOW_ACQUIRED)
            return 1;
    return 0;
}

static int abandon_wait(struct fsafe__entry *e, uint64_t waited_ns)
{
    fsafe__registry_poll_pending();
    if (waited_ns >= BACKOFF_AFTER_NS && fsafe__gate_contended()) {
        walk_aborted = ABORT_GATE;
        return 1;
    }
    if (order_backoff_ns && waited_ns >= order_backoff_ns && holding_any()) {
        walk_aborted = ABORT_ORDER;
        order_waited_ns = waited_ns;
        return 1;
    }
    return pending_on(e);
}

/* While the walk waits for a lock and holds nothing: only an unregister of
 * that lock, or another forker, ends the wait early. */
static int abandon_free_wait(struct fsafe__entry *e, uint64_t waited_ns)
{
    if (waited_ns >= BACKOFF_AFTER_NS && fsafe__gate_contended())
        return 1;
    return pending_on(e);
}

/* Pairs already reported by this process: (held lock, awaited lock). */
#define MAX_PAIRS 64
static const void *pair_seen[MAX_PAIRS][2];
static unsigned npairs;
static pid_t pairs_pid;

/*
 * One line per pair and process.  The lock the walk waited for is known; the
 * other is the newest lock the walk held that another thread waits for (glibc
 * mutexes show waiters), else the newest lock it held.
 */
static void report_conflict(const struct fsafe__entry *want, uint64_t waited_ns)
{
    const struct fsafe__entry *other = NULL;
    int known = 0;
    for (size_t i = held_n; i-- > 0 && !known;) {
        const struct fsafe__held *h = &held->slot[i];
        if (!h->ptr || h->how != FSAFE__HOW_ACQUIRED)
            continue;
        const struct fsafe__entry *e = entry_at(h->index);
        known = fsafe__lock_has_waiters(e->lock, e->kind) > 0;
        if (known || !other)
            other = e;
    }
    if (!other)
        return;
    pid_t pid = getpid();
    if (pairs_pid != pid) {
        pairs_pid = pid;
        npairs = 0;
    }
    for (unsigned i = 0; i < npairs; i++)
        if (pair_seen[i][0] == other->lock && pair_seen[i][1] == want->lock)
            return;
    if (npairs == MAX_PAIRS)
        return;
    pair_seen[npairs][0] = other->lock;
    pair_seen[npairs][1] = want->lock;
    npairs++;
    fsafe__msg("lock order conflict: fork waited %lu ms for '%s' (rank %d) while holding '%s' "
               "(rank %d)%s; it gave its locks back and retried.  A thread that takes '%s' "
               "before '%s' needs it ranked lower",
               (unsigned long)(waited_ns / 1000000u), want->name, want->rank, other->name,
               other->rank, known ? ", which another thread waits for" : "", want->name,
               other->name);
}

/*
 * The walk waited too long for e while holding others: the rank order may
 * contradict the order in which the program nests these locks (a thread holds
 * e and waits for one the walk holds).  As folly's AtFork does: give back
 * everything, wait for e to come free without holding anything, and let the
 * caller start again.  e stays CLAIMED in this epoch while the walk waits for
 * it, so an unregister of e still waits for the walk to let go.
 */
static void order_backoff(struct fsafe__entry *e, uint64_t waited_ns)
{
    report_conflict(e, waited_ns);
    for (size_t i = held_n; i-- > 0;) {
        struct fsafe__held *h = &held->slot[i];
        if (!h->ptr)
            continue;
        fsafe__lock_release_parent(h);
        h->ptr = NULL;
        mark_released(entry_at(h->index));
    }
    AO_store_release(&held_n, 0);
    int how = fsafe__lock_acquire(e, abandon_free_wait);
    if (how == FSAFE__HOW_ACQUIRED) {
        struct fsafe__held h = {e->kind == FSAFE__KIND_OPS ? (void *)e : e->lock, e->index,
                                e->kind, FSAFE__HOW_ACQUIRED, (unsigned char)e->mem};
        fsafe__lock_release_parent(&h);
    }
}

static void end_epoch(void);
static void release_held(void);

int fsafe__registry_acquire_all(void)
{
    AO_t epoch = AO_fetch_and_add_full(&fork_epoch, 1) + 1; /* now odd */
    /* Loaded after the epoch: it has room for every entry linked by now. */
    held = (struct held_buf *)AO_load_acquire(&held_published);
    held_n = 0;
    walk_aborted = ABORT_NONE;
    uint64_t acquired = 0;
    for (struct fsafe__entry *e = (struct fsafe__entry *)AO_load_acquire(&head.next); e;
         e = (struct fsafe__entry *)AO_load_acquire(&e->next)) {
        /* A slot beyond the buffer's room was allocated during this walk: a
         * lock registered meanwhile, which this fork need not take.  (No slot
         * is reused during a walk, so the rest always fit.) */
        if (!held || e->index >= held->cap)
            continue; /* (no buffer yet: the first lock ever, registered just now) */
        AO_t w = AO_load_acquire(e->st);
        for (;;) {
            unsigned st = ST_STATUS(w);
            if (st == ST_FREE || st == ST_DEAD || (w & ST_PENDING))
                goto next;
            if (AO_compare_and_swap_full(e->st, w, ST_MAKE(epoch, ST_CLAIMED)))
                break;
            w = AO_load_acquire(e->st);
        }
        int how = fsafe__lock_acquire(e, abandon_wait);
        if (how == FSAFE__HOW_NONE) {
            if (walk_aborted == ABORT_ORDER) {
                order_backoff(e, order_waited_ns);
                mark_released(e);
                end_epoch();
                return -1;
            }
            mark_released(e);
            if (walk_aborted) {
                release_held(); /* (not counted: the walk starts again) */
                end_epoch();
                return -1;
            }
            continue;
        }
        /* The entry stays CLAIMED while held, so the walk pays one CAS per
         * lock; an unregister that arrives meanwhile is seen by the
         * poll_pending calls (while waiting, and at the end of the walk). */
        struct fsafe__held *h = &held->slot[held_n];
        h->ptr = e->kind == FSAFE__KIND_OPS ? (void *)e : e->lock;
        h->index = e->index;
        h->kind = e->kind;
        h->how = (unsigned char)how;
        h->mem = (unsigned char)e->mem;
        AO_store_release(&held_n, held_n + 1);
        acquired++;
    next:;
    }
    fsafe__stats.locks_acquired += acquired;
    /* Unregisters that arrived while the walk went on without waiting. */
    fsafe__registry_poll_pending();
    return 0;
}

/* Ends the walk's epoch: every CLAIMED/RELEASED entry is LIVE again and any
 * unregister waiting on this fork may proceed. */
static void end_epoch(void)
{
    held_n = 0;
    AO_fetch_and_add_full(&fork_epoch, 1); /* now even */
}

static void release_held(void)
{
    /* Newest first: the reverse of the acquisition order. */
    for (size_t i = held_n; i-- > 0;)
        if (held->slot[i].ptr)
            fsafe__lock_release_parent(&held->slot[i]);
}

void fsafe__registry_release_parent(void)
{
    release_held();
    end_epoch();
}

static void reset_held(int orphaned)
{
    size_t n = AO_load_acquire(&held_n);
    for (size_t i = 0; i < n; i++)
        if (held->slot[i].ptr)
            fsafe__lock_reset_child(&held->slot[i], orphaned);
}

void fsafe__registry_reset_child(void)
{
    reset_held(0);
    end_epoch();
}

/* The walking thread does not exist in this child: its locks, and its own
 * earlier holds, have no owner here.  Reset them unlocked. */
void fsafe__registry_reset_orphaned(void)
{
    if ((AO_load_acquire(&fork_epoch) & 1) == 0)
        return; /* it had not started walking, or had finished */
    reset_held(1);
    end_epoch();
}

/* Child, every fork: the writer lock may have been held by a thread that did
 * not survive.  Re-initialise it and rebuild before the next write.  Reads
 * before writing so that a clean registry costs no copy-on-write fault. */
FSAFE_FORK_PATH void fsafe__registry_child_fixup(void)
{
#ifdef __GLIBC__
    int writer_was_inside = reg_mutex.__data.__lock != 0;
#else
    int writer_was_inside = pthread_mutex_trylock(&reg_mutex) != 0;
    if (!writer_was_inside)
        pthread_mutex_unlock(&reg_mutex);
#endif
    if (writer_was_inside) {
        static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
        memcpy(&reg_mutex, &fresh, sizeof fresh);
        reg_dirty = 1;
    }
    /* An unregister was waiting on a forker: its thread is gone, and the
     * rebuild drops the half-unregistered entry. */
    if (AO_load_acquire(&pending_count) != 0) {
        reg_dirty = 1;
        AO_store_release(&pending_count, 0);
    }
    if (AO_load_acquire(&fork_epoch) & 1) {
        /* A walk of another thread's fork was in progress (this child came from
         * a fork that bypassed fsafe); no forker survives to end it. */
        AO_fetch_and_add_full(&fork_epoch, 1);
    }
}
