/* SPDX-License-Identifier: MIT */
/*
 * The registry's entry store: entries, the address hash, the rank directory
 * and the rank-ordered list, all behind the writer lock (store_mutex), plus
 * the child's rebuild when a writer vanished mid-step.  Calls nothing above
 * it.  Never mallocs (mmap'd memory; entry chunks are never unmapped), and is
 * never read by the fork walk directly: the walk reads the snapshot that
 * walk.c builds from the ordered list under the writer lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static pthread_mutex_t store_mutex = PTHREAD_MUTEX_INITIALIZER;
static int store_dirty; /* child: a writer vanished mid-step; rebuild before use */
static AO_t nregistered;

/* Ordered list: ascending rank, registration order within a rank.  Every
 * writer step leaves it valid (next is published with store_release), so a
 * child whose writer vanished can rebuild the rest from it. */
static struct fsafe__entry head = {.rank = INT_MIN};

/* ---- entries: chunks that double in size, never unmapped ------------------ */
#define CHUNK0 256
#define NCHUNKS 23 /* up to 2^31 entries: an index fits in 32 bits */
static struct fsafe__entry *chunks[NCHUNKS];
static size_t chunk_used[NCHUNKS];
static int nchunks;
static struct fsafe__entry *free_list;

/* What entries refer to by id: their names and ops tables, one copy each. */
static struct fsafe__intern names = {.size = FSAFE_NAME_MAX};
static struct fsafe__intern opstabs = {.size = sizeof(struct fsafe_lock_ops)};

const char *fsafe__entry_name(const struct fsafe__entry *e)
{
    return fsafe__intern_at(&names, e->name);
}

const struct fsafe_lock_ops *fsafe__entry_ops(const struct fsafe__entry *e)
{
    return fsafe__intern_at(&opstabs, e->ops);
}

static size_t chunk_cap(int k)
{
    return (size_t)CHUNK0 << k;
}

static size_t total_slots(int k)
{
    return fsafe__chunk_first(k, CHUNK0);
}

struct fsafe__entry *fsafe__store_entry(uint32_t i)
{
    int k = fsafe__chunk_of(i, CHUNK0);
    return &chunks[k][i - total_slots(k)];
}

static struct fsafe__entry *entry_alloc(void)
{
    struct fsafe__entry *e = free_list;
    if (e) {
        free_list = e->free_next;
        return e;
    }
    if (nchunks == 0 || chunk_used[nchunks - 1] == chunk_cap(nchunks - 1)) {
        if (nchunks == NCHUNKS)
            return NULL;
        struct fsafe__entry *c = fsafe__map_zeroed(chunk_cap(nchunks) * sizeof *c);
        if (!c)
            return NULL;
        chunks[nchunks++] = c;
    }
    int k = nchunks - 1;
    size_t j = chunk_used[k]++;
    e = &chunks[k][j];
    e->index = (uint32_t)(total_slots(k) + j);
    return e;
}

static void entry_free_raw(struct fsafe__entry *e)
{
    e->lock = NULL;
    e->name = e->ops = 0;
    e->free_next = free_list;
    free_list = e;
}

void fsafe__store_free(struct fsafe__entry *e)
{
    fsafe__intern_put(&names, e->name);
    fsafe__intern_put(&opstabs, e->ops);
    entry_free_raw(e);
}

/* ---- hash: lock address -> entry ------------------------------------------- */
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
    struct fsafe__entry **nt = fsafe__map_zeroed(ncap * sizeof *nt);
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

/* ---- rank directory: sorted (rank, last entry of that rank) ---------------- */
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
    struct rank_slot *n = fsafe__map_zeroed(ncap * sizeof *n);
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

/* Links e after the last entry of rank <= e->rank; the store_release of
 * pred->next is the step a child's rebuild sees or does not see. */
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
    AO_store_release(&e->prev->next, (AO_t)succ);
}

/* ---- the store's operations (writer lock held) ------------------------------ */
struct fsafe__entry *fsafe__store_find(const void *lock)
{
    struct fsafe__entry **slot = hfind(lock);
    return slot ? *slot : NULL;
}

int fsafe__store_add(struct fsafe__entry **out, void *lock, int rank, const char *name,
                     const struct fsafe_lock_ops *ops)
{
    if (hfind(lock))
        return EEXIST;
    int err = hgrow_if_needed();
    if (!err)
        err = rdir_reserve();
    if (err)
        return err;
    char nbuf[FSAFE_NAME_MAX] = {0};
    if (name)
        memcpy(nbuf, name, strnlen(name, FSAFE_NAME_MAX - 1));
    struct fsafe_lock_ops obuf = {0};
    if (ops)
        obuf = *ops;
    uint32_t nid = fsafe__intern_get(&names, nbuf);
    if (nid == FSAFE__INTERN_NOMEM)
        return ENOMEM;
    uint32_t oid = fsafe__intern_get(&opstabs, &obuf);
    struct fsafe__entry *e = oid == FSAFE__INTERN_NOMEM ? NULL : entry_alloc();
    if (!e) {
        fsafe__intern_put(&names, nid);
        if (oid != FSAFE__INTERN_NOMEM)
            fsafe__intern_put(&opstabs, oid);
        return ENOMEM;
    }
    e->lock = lock;
    e->rank = rank;
    e->name = nid;
    e->ops = oid;
    e->unseen = 0;
    *out = e;
    return 0;
}

/* e filled in by the caller: now it is findable and in the ordered list. */
void fsafe__store_link(struct fsafe__entry *e)
{
    order_insert(e);
    hput_raw(htab, hcap, e);
    hused++;
    AO_fetch_and_add_full(&nregistered, 1);
}

void fsafe__store_unlink(struct fsafe__entry *e)
{
    struct fsafe__entry **slot = hfind(e->lock);
    if (slot) {
        *slot = TOMB;
        hused--;
        htombs++;
    }
    order_unlink(e);
    AO_fetch_and_add_full(&nregistered, (AO_t)-1);
}

struct fsafe__entry *fsafe__store_first(void)
{
    return (struct fsafe__entry *)AO_load_acquire(&head.next);
}

FSAFE_FORK_PATH uint64_t fsafe__store_count(void)
{
    return AO_load_acquire(&nregistered);
}

/* ---- the child's rebuild ------------------------------------------------------ */
/* A child whose writer vanished mid-step: rebuild the hash, the rank directory,
 * the free list and the prev links from the ordered list, which is always
 * consistent.  The old hash table and rank directory are abandoned, not
 * reused: the writer may have vanished between unmapping one and publishing
 * its replacement.  An entry outside the list (being registered, or being
 * unregistered by a thread that is gone) goes back to the free list. */
static void store_rebuild(void)
{
    size_t live = 0;
    for (struct fsafe__entry *e = fsafe__store_first(); e; e = (struct fsafe__entry *)e->next)
        live++;
    htab = NULL;
    hcap = hused = htombs = 0;
    rdir = NULL;
    rcap = rcount = 0;
    free_list = NULL;
    for (int k = 0; k < nchunks; k++)
        for (size_t j = 0; chunks[k] && j < chunk_used[k]; j++) {
            /* The slot's index again: a writer may have vanished between
             * counting the slot and filling it in. */
            chunks[k][j].index = (uint32_t)(total_slots(k) + j);
            chunks[k][j].unseen = 1;
        }
    fsafe__intern_recount_begin(&names);
    fsafe__intern_recount_begin(&opstabs);
    /* Sized up front so that nothing below can fail half-way. */
    hused = live; /* hgrow_if_needed sizes for hused + 1 */
    int ok = hgrow_if_needed() == 0;
    hused = 0;
    while (ok && rcap < live + 1)
        ok = (rcount = rcap, rdir_reserve() == 0);
    rcount = 0;
    uint64_t n = 0;
    struct fsafe__entry *pred = &head;
    for (struct fsafe__entry *e = fsafe__store_first(); e; e = (struct fsafe__entry *)e->next) {
        e->prev = pred;
        e->unseen = 0;
        fsafe__intern_recount_ref(&names, e->name);
        fsafe__intern_recount_ref(&opstabs, e->ops);
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
    for (int k = 0; k < nchunks; k++)
        for (size_t j = 0; chunks[k] && j < chunk_used[k]; j++)
            if (chunks[k][j].unseen)
                entry_free_raw(&chunks[k][j]); /* (its ids were not counted) */
    ok = ok && fsafe__intern_recount_end(&names) == 0;
    ok = ok && fsafe__intern_recount_end(&opstabs) == 0;
    AO_store_release(&nregistered, n);
    /* Out of memory: stay dirty and try again at the next write. */
    store_dirty = !ok;
}

static int after_lock(void)
{
    if (store_dirty)
        store_rebuild();
    if (store_dirty) {
        pthread_mutex_unlock(&store_mutex);
        return ENOMEM;
    }
    return 0;
}

/* Set while this thread is inside a writer step, from before it asks for the
 * lock to after it has let go: a fork from a signal handler that interrupted
 * the step (even inside pthread_mutex_lock, before the owner is recorded)
 * must not wait for the lock. */
static __thread int in_writer;

/* 0 with the writer lock held, or ENOMEM (not held) when a child's rebuild
 * could not get memory: writing to a half-indexed store could duplicate
 * entries. */
int fsafe__store_lock(void)
{
    in_writer = 1;
    pthread_mutex_lock(&store_mutex);
    int r = after_lock();
    if (r)
        in_writer = 0;
    return r;
}

/* As fsafe__store_lock, or EBUSY; EDEADLK when this thread is inside a
 * writer step already (a fork from a signal handler that interrupted it). */
int fsafe__store_trylock(void)
{
    if (in_writer)
        return EDEADLK;
    if (pthread_mutex_trylock(&store_mutex) != 0)
        return EBUSY;
    in_writer = 1;
    int r = after_lock();
    if (r)
        in_writer = 0;
    return r;
}

void fsafe__store_unlock(void)
{
    pthread_mutex_unlock(&store_mutex);
    in_writer = 0;
}

/* Child, every fork: the writer lock may have been held by a thread that did
 * not survive.  Re-initialise it and rebuild before the next use.  Reads
 * before writing so that a clean store costs no copy-on-write fault.  Returns
 * non-zero if a writer was inside. */
FSAFE_FORK_PATH int fsafe__store_postfork_child(void)
{
#ifdef __GLIBC__
    int writer_was_inside = *fsafe__gl_mutex_word(&store_mutex) != 0;
#else
    int writer_was_inside = pthread_mutex_trylock(&store_mutex) != 0;
    if (!writer_was_inside)
        pthread_mutex_unlock(&store_mutex);
#endif
    if (writer_was_inside) {
        static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
        memcpy(&store_mutex, &fresh, sizeof fresh);
        store_dirty = 1;
    }
    return writer_was_inside;
}
