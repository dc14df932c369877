/* SPDX-License-Identifier: MIT */
/*
 * The registry's writers: what fsafe_register_lock, fsafe_register_ops and
 * fsafe_unregister_lock do (api.c exports them), and the read-only views for
 * stats.  Entries live in
 * registry_store.c; the fork walk (walk.c) learns of changes through
 * fsafe__walk_invalidate and fsafe__walk_retire.  Never holds the writer
 * lock while it waits for a fork walk: the walk may be waiting for a lock
 * whose holder is about to register or unregister.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* The writer lock.  On the walking thread itself (another library's atfork
 * handler registers while this thread's fork holds locks), the writer that
 * holds it may be an unregister waiting for this very walk: poll meanwhile. */
static int writer_lock(void)
{
    if (fsafe__walk_is_self()) {
        struct timespec ts = {0, 50 * 1000};
        int r;
        while ((r = fsafe__store_trylock()) == EBUSY) {
            fsafe__walk_poll();
            nanosleep(&ts, NULL);
        }
        return r;
    }
    return fsafe__store_lock();
}

/* ---- register ------------------------------------------------------------ */
static int register_entry(void *lock, int kind, int flags, const struct fsafe_lock_ops *ops,
                          int rank, const char *name)
{
    /* Decided before taking the writer lock: it reads /proc/self/maps. */
    unsigned mem = 0;
    if (flags & FSAFE_SHARED)
        mem = FSAFE__MEM_SHARED;
    else if (!(flags & FSAFE_PRIVATE) && kind != FSAFE__KIND_OPS &&
             fsafe__lock_mem_shared(lock, kind))
        mem = FSAFE__MEM_SHARED;

    int err = writer_lock();
    if (err)
        return err;
    struct fsafe__entry *e = NULL;
    err = fsafe__store_add(&e, lock, rank, name, ops);
    if (!err) {
        e->kind = (unsigned char)kind;
        e->mem = (unsigned char)mem;
        e->warned = 0;
        e->max_wait_ns = 0;
        e->snap_gen = 0; /* in no snapshot yet */
        fsafe__store_link(e);
        fsafe__walk_invalidate();
    }
    fsafe__store_unlock();
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

int fsafe__registry_add_lock(void *lock, int kind, int rank, const char *name)
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

int fsafe__registry_add_ops(void *key, const struct fsafe_lock_ops *ops, int rank,
                            const char *name)
{
    if (!key || !ops || !ops->acquire || !ops->release_parent || !ops->release_child)
        return EINVAL;
    return register_entry(key, FSAFE__KIND_OPS, 0, ops, rank, name);
}

/* ---- unregister ------------------------------------------------------------ */
/*
 * One writer step takes the lock out of the store and marks its snapshot
 * record dead; if a fork walk is active, the entry is kept (off every list)
 * until the walk has let go of the lock, waited for without the writer lock.
 * A registration of the same lock meanwhile gets a new entry.
 */
int fsafe__registry_remove(void *lock)
{
    if (!lock)
        return EINVAL;
    int err = writer_lock();
    if (err)
        return err;
    struct fsafe__entry *e = fsafe__store_find(lock);
    if (!e) {
        fsafe__store_unlock();
        return ENOENT;
    }
    fsafe__store_unlink(e);
    fsafe__walk_invalidate();
    AO_t epoch = 0;
    uint64_t ticket = fsafe__walk_retire(e, &epoch);
    if (ticket) {
        fsafe__store_unlock();
        fsafe__walk_wait(ticket, epoch);
        /* The entry goes back to the store only now; if this thread's fork's
         * child rebuilt the store meanwhile, there is no "meanwhile" here. */
        if (writer_lock() != 0)
            return 0; /* unregistered; the entry is lost to the free list */
    }
    fsafe__store_free(e);
    fsafe__store_unlock();
    return 0;
}

FSAFE_FORK_PATH uint64_t fsafe__registry_count(void)
{
    return fsafe__store_count();
}

void fsafe__registry_foreach(void (*fn)(const struct fsafe__entry *, void *), void *arg)
{
    if (writer_lock() != 0)
        return;
    for (struct fsafe__entry *e = fsafe__store_first(); e; e = (struct fsafe__entry *)e->next)
        fn(e, arg);
    fsafe__store_unlock();
}
