/* SPDX-License-Identifier: MIT */
/*
 * Interned fixed-size blobs for the registry's entries (lock names, ops
 * tables): one counted copy per distinct value, so that an entry carries a
 * 32-bit id instead of the bytes.  Every page of the registry is copied into
 * each child's page tables at fork, so bytes per lock cost every fork.
 * Writers hold the registry's writer lock; readers of a live entry's id need
 * nothing: slots live in chunks that are never unmapped, and a slot is reused
 * only after the last entry holding its id is freed.  Never mallocs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

/* A slot: its reference count, the next slot of its hash chain (or of the
 * free list), and the blob.  Ids are slot number + 1; id 0 is the all-zero
 * blob, which is never stored. */
struct slot {
    uint32_t refs;
    uint32_t next;
    unsigned char blob[];
};

/* The registry's memory, here at its bottom (the store, the intern tables and
 * the walk's snapshot use it): zeroed pages, never malloc. */
void *fsafe__map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

#define CHUNK0 FSAFE__INTERN_CHUNK0

/* Slots chunk k has (chunk_slots) and has handed out (chunk_used). */
static size_t chunk_slots(int k)
{
    return (size_t)CHUNK0 << k;
}

static size_t chunk_used(const struct fsafe__intern *t, int k)
{
    return k == t->nchunks - 1 ? t->used : chunk_slots(k);
}

static size_t slot_bytes(const struct fsafe__intern *t)
{
    return (sizeof(struct slot) + t->size + 7) & ~(size_t)7;
}

static struct slot *slot_at(const struct fsafe__intern *t, uint32_t id)
{
    uint32_t i = id - 1;
    int k = fsafe__chunk_of(i, CHUNK0);
    return (struct slot *)((char *)t->chunk[k] +
                           (i - fsafe__chunk_first(k, CHUNK0)) * slot_bytes(t));
}

const void *fsafe__intern_at(const struct fsafe__intern *t, uint32_t id)
{
    static const unsigned char zero[FSAFE__INTERN_MAX];
    return id ? slot_at(t, id)->blob : zero;
}

static uint32_t blob_hash(const struct fsafe__intern *t, const void *blob)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < t->size; i++)
        h = (h ^ ((const unsigned char *)blob)[i]) * 0x100000001b3ull;
    return (uint32_t)(h ^ (h >> 32));
}

static int blob_zero(const struct fsafe__intern *t, const void *blob)
{
    for (size_t i = 0; i < t->size; i++)
        if (((const unsigned char *)blob)[i])
            return 0;
    return 1;
}

static void chain_add(struct fsafe__intern *t, uint32_t id)
{
    struct slot *s = slot_at(t, id);
    uint32_t *head = &t->bucket[blob_hash(t, s->blob) & (t->nbuckets - 1)];
    s->next = *head;
    *head = id;
}

/* Room for one more value: buckets at most one value each on average. */
static int reserve(struct fsafe__intern *t)
{
    if (t->live < t->nbuckets)
        return 0;
    size_t n = t->nbuckets ? t->nbuckets * 2 : 64;
    while (n <= t->live)
        n *= 2;
    uint32_t *b = fsafe__map_zeroed(n * sizeof *b);
    if (!b)
        return ENOMEM;
    uint32_t *old = t->bucket;
    size_t oldn = t->nbuckets;
    t->bucket = b;
    t->nbuckets = n;
    for (size_t i = 0; i < oldn; i++)
        for (uint32_t id = old[i], next; id; id = next) {
            next = slot_at(t, id)->next;
            chain_add(t, id);
        }
    if (old)
        munmap(old, oldn * sizeof *old);
    return 0;
}

static uint32_t slot_new(struct fsafe__intern *t)
{
    if (t->free) {
        uint32_t id = t->free;
        t->free = slot_at(t, id)->next;
        return id;
    }
    if (t->nchunks == 0 || t->used == chunk_slots(t->nchunks - 1)) {
        if (t->nchunks == FSAFE__INTERN_NCHUNKS)
            return 0;
        void *c = fsafe__map_zeroed(chunk_slots(t->nchunks) * slot_bytes(t));
        if (!c)
            return 0;
        t->chunk[t->nchunks++] = c;
        t->used = 0;
    }
    return (uint32_t)(fsafe__chunk_first(t->nchunks - 1, CHUNK0) + t->used++ + 1);
}

uint32_t fsafe__intern_get(struct fsafe__intern *t, const void *blob)
{
    if (blob_zero(t, blob))
        return 0;
    if (t->nbuckets) {
        for (uint32_t id = t->bucket[blob_hash(t, blob) & (t->nbuckets - 1)]; id;
             id = slot_at(t, id)->next)
            if (memcmp(slot_at(t, id)->blob, blob, t->size) == 0) {
                slot_at(t, id)->refs++;
                return id;
            }
    }
    if (reserve(t) != 0)
        return FSAFE__INTERN_NOMEM;
    uint32_t id = slot_new(t);
    if (!id)
        return FSAFE__INTERN_NOMEM;
    struct slot *s = slot_at(t, id);
    memcpy(s->blob, blob, t->size);
    s->refs = 1;
    chain_add(t, id);
    t->live++;
    return id;
}

void fsafe__intern_put(struct fsafe__intern *t, uint32_t id)
{
    if (!id)
        return;
    struct slot *s = slot_at(t, id);
    if (--s->refs)
        return;
    uint32_t *p = &t->bucket[blob_hash(t, s->blob) & (t->nbuckets - 1)];
    while (*p != id)
        p = &slot_at(t, *p)->next;
    *p = s->next;
    s->next = t->free;
    t->free = id;
    t->live--;
}

/*
 * A child whose writer vanished mid-step: the counts, chains and free list may
 * be half-changed.  Begin forgets them (the bucket array is abandoned, not
 * reused: the writer may have vanished while replacing it), ref counts each
 * id that a listed entry holds, end rebuilds chains and free list and returns
 * 0, or ENOMEM (then the caller stays dirty and recounts again later).
 */
void fsafe__intern_recount_begin(struct fsafe__intern *t)
{
    t->bucket = NULL;
    t->nbuckets = 0;
    t->free = 0;
    t->live = 0;
    for (int k = 0; k < t->nchunks; k++) {
        size_t n = chunk_used(t, k), first = fsafe__chunk_first(k, CHUNK0);
        for (size_t j = 0; j < n; j++)
            slot_at(t, (uint32_t)(first + j + 1))->refs = 0;
    }
}

void fsafe__intern_recount_ref(struct fsafe__intern *t, uint32_t id)
{
    if (id && slot_at(t, id)->refs++ == 0)
        t->live++;
}

int fsafe__intern_recount_end(struct fsafe__intern *t)
{
    int err = reserve(t);
    if (err)
        return err;
    for (int k = t->nchunks; k-- > 0;) {
        size_t n = chunk_used(t, k), first = fsafe__chunk_first(k, CHUNK0);
        for (size_t j = n; j-- > 0;) {
            uint32_t id = (uint32_t)(first + j + 1);
            struct slot *s = slot_at(t, id);
            if (s->refs) {
                chain_add(t, id);
            } else {
                s->next = t->free;
                t->free = id;
            }
        }
    }
    return 0;
}
