/* SPDX-License-Identifier: MIT */
/*
 * Declarations shared by the files of libfsafe-auto.so (auto mode), in their
 * layer order (src/README.md, "Layers"): the fork-time quiescence and child
 * reset (fork.c); the families: libc's own locks (libc.c), semaphores used as
 * locks (sem.c), OpenMP (omp.c), GLib (glib.c), abseil (absl.c); lock
 * tracking (track.c); glibc's loader locks (loader.c); what libfsafe.so lends
 * and the real functions (svc.c).  libfsafe-auto.so sits on top of
 * libfsafe.so and reaches it only through src/common/contract.h.
 */
#ifndef FSAFE_AUTO_H
#define FSAFE_AUTO_H

#include <stddef.h>

#include "contract.h"
#include "glibc.h"

/* Everything declared below is this library's own: the compiler then reaches
 * another file's variable directly, not through the GOT (one instruction
 * fewer per access on a lock call's path; -fvisibility=hidden covers only
 * definitions). */
#pragma GCC visibility push(hidden)

/* What libfsafe.so lends the auto library (filled at attach). */
extern struct fsafe__ext_services fsafe__svc;
/* Non-zero when auto mode is on in this process (FSAFE_AUTO not 0, attached). */
extern int fsafe__auto_on;
void fsafe__amsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- track.c: the per-thread sets of held locks ------------------------ */
/* Lock kinds reuse FSAFE_MUTEX, FSAFE_RWLOCK and FSAFE_SPINLOCK. */
#define FSAFE__AT_CAP 48 /* holds a thread records; more are counted only */

enum fsafe__at_mode { FSAFE__AT_EXCL = 0, FSAFE__AT_SHARED = 1 };
enum fsafe__at_state {
    FSAFE__AT_HELD = 0,
    FSAFE__AT_WAITING = 1,  /* in a condition wait */
    FSAFE__AT_ACQUIRING = 2 /* the lock call has not returned: a free lock word
                             * does not make the entry stale */
};

/*
 * One hold, or one acquisition in progress.  Written only by the owning thread
 * (and signal handlers on it, which nest); read by the forker.  lock is 0
 * while the slot is reserved but not yet filled in; it is published with
 * release order after the other fields, and the state becomes HELD (release
 * order) only once the lock is really held.  Every field is an AO_t accessed
 * through AO_load/AO_store (plain moves on x86-64), so that these races by
 * design are atomic accesses to the compiler and to ThreadSanitizer.
 */
struct fsafe__at_entry {
    AO_t lock;   /* the lock (a struct fsafe__gate for FSAFE__AT_GATE) */
    AO_t cond;   /* FSAFE__AT_WAITING: the condition variable */
    AO_t caller; /* return address of the lock call */
    AO_t info;   /* kind | mode << 8 | state << 16 */
};
/* Every field an AO_t (above): the forker reads each with one load. */
_Static_assert(sizeof(struct fsafe__at_entry) == 4 * sizeof(AO_t), "a hold entry is four words");
#define FSAFE__AT_INFO(kind, mode, state) ((AO_t)(kind) | (AO_t)(mode) << 8 | (AO_t)(state) << 16)
/* An entry's lock: 0 while its slot is reserved and not yet filled in (by a
 * lock call that may still park), FSAFE__AT_ANON for a hold whose lock is
 * not known (one of the holds past FSAFE__AT_CAP, moved down).  Both read as
 * busy to the forker; only ANON is a hold to the thread itself (hold_slow). */
#define FSAFE__AT_ANON ((void *)1)
static inline void *fsafe__at_lock(const struct fsafe__at_entry *e)
{
    return (void *)AO_load_acquire(&e->lock);
}
static inline int fsafe__at_kind(const struct fsafe__at_entry *e)
{
    return (int)(AO_load(&e->info) & 0xff);
}
static inline int fsafe__at_mode(const struct fsafe__at_entry *e)
{
    return (int)(AO_load(&e->info) >> 8 & 0xff);
}
static inline int fsafe__at_estate(const struct fsafe__at_entry *e)
{
    return (int)(AO_load_acquire(&e->info) >> 16 & 0xff);
}
static inline void fsafe__at_set_estate(struct fsafe__at_entry *e, int state)
{
    AO_store_release(&e->info, (AO_load(&e->info) & 0xffff) | (AO_t)state << 16);
}

struct fsafe__at_thread {
    /* Entries in use.  May exceed FSAFE__AT_CAP: holds beyond it are counted
     * but not recorded.  Owner writes, with store_release; forker reads. */
    AO_t n;
    AO_t in_use;       /* fsafe__at_token of the owner's process while a live
                        * thread owns the record; 0 or an ancestor's token:
                        * free (fsafe__records_claim) */
    pid_t tid;         /* the owner's kernel thread id */
    AO_t self;         /* the owner's thread pointer */
    AO_t given_back;   /* forker-written: fsafe__at_fork_seq * 4 + how many times
                        * that fork gave this thread a taken monitor's mutex
                        * back (fork.c, give_back) */
    AO_t signalled;    /* fsafe__at_fork_seq of the pending fork during which the
                        * owner signalled a condition while holding locks: it
                        * parks once it holds none (track.c) */
    AO_t forking;      /* > 0 while the owner is inside fork() and its fork
                        * has not run yet: its holds stay as they are until
                        * then (auto_postfork_parent ends the mark before the gate
                        * lets the next forker in) */
    struct fsafe__at_thread *next; /* every record ever made; never unlinked */
    struct fsafe__at_entry e[FSAFE__AT_CAP];
};

/*
 * The one word every lock call reads (zero on the fast path):
 * PENDING while a forker waits for other threads (a thread that holds no
 * tracked lock parks before taking one, except a monitor's mutex);
 * CLOSED, with PENDING, once the forker parks every such lock call, monitors'
 * too (fork.c: the fork is "open" while PENDING is set without it);
 * OFF when tracking is off (FSAFE_AUTO=0); FENCE when membarrier() is missing
 * and each hold must fence itself.
 */
#define FSAFE__AT_PENDING 1u
#define FSAFE__AT_OFF 2u
#define FSAFE__AT_FENCE 4u
#define FSAFE__AT_CLOSED 8u
/* With CLOSED: the fork stayed open as long as it may (fork.c); threads
 * parked after signalling go on, to park at their next lock call. */
#define FSAFE__AT_LATE 16u
/* While PENDING: the low bits of fsafe__at_fork_seq, so that a thread that
 * sleeps on the word (futex_wait compares its low 32 bits) until the fork it
 * saw is over cannot sleep through the next one, announced with the same
 * flags before it reached the kernel (a stale park, stalling that fork). */
#define FSAFE__AT_GEN_SHIFT 5
#define FSAFE__AT_GEN_MASK ((AO_t)0xffffffe0u)
/* Every bit of a pending fork, cleared when it ends. */
#define FSAFE__AT_FORK_BITS \
    ((AO_t)(FSAFE__AT_PENDING | FSAFE__AT_CLOSED | FSAFE__AT_LATE) | FSAFE__AT_GEN_MASK)
/* hold_begin's answer for the forker's own lock calls during its protocol
 * (the registered walk, other libraries' atfork handlers): not tracked. */
#define FSAFE__AT_FORKER_CALL (-2)
extern AO_t fsafe__at_state;
extern AO_t fsafe__at_fork_owner; /* thread pointer of the forker */
extern AO_t fsafe__at_fork_owner_tid; /* its kernel thread id (fork.c) */
extern AO_t fsafe__at_fork_seq;   /* forks announced so far (the forker counts) */
/* Head of the list of every record (track.c). */
extern AO_t fsafe__at_threads;

void fsafe__at_init(void);
/*
 * Per-thread records (track.c, sem.c) live in mmap'd chunks on a
 * lock-free list that only grows: claims a free record (in_use 0 or another
 * process's token -> this process's) or maps a chunk of them.  NULL when mmap
 * fails.  Keeps errno.  Records are never unmapped, so a forker may read any
 * of them at any time.  A record claimed from an ancestor's thread may hold
 * its old contents: the claimer empties it.
 */
/* This process's generation: 1 in a process that was not forked under auto
 * mode, its parent's plus one in a child (fork.c).  A record stamped
 * with another value belongs to a thread of an ancestor: gone here. */
extern AO_t fsafe__at_token;
static inline int fsafe__at_live(const AO_t *in_use)
{
    return AO_load_acquire(in_use) == AO_load(&fsafe__at_token);
}
void *fsafe__records_claim(AO_t *head, size_t size, size_t in_use_off, size_t next_off);
#define FSAFE__RECORDS_CLAIM(head, type)                                                           \
    ((type *)fsafe__records_claim((head), sizeof(type), offsetof(type, in_use), offsetof(type, next)))
/*
 * Address tables (track.c): open addressing with linear probing over
 * 1 << bits slots, in memory the caller maps zeroed.  A key is claimed with
 * one CAS on an empty slot, so an address has at most one slot, and keys are
 * never removed (the owner clears the state instead).  Returns the key's
 * slot, or NULL when it is absent (insert 0) or no slot is left within the
 * probe limit (insert 1: *full is counted up).  Lock-free, async-signal-safe.
 */
struct fsafe__addr_slot {
    AO_t key;   /* the address, 0 = empty */
    AO_t state; /* the owner's */
};
struct fsafe__addr_slot *fsafe__addr_find(struct fsafe__addr_slot *tab, unsigned bits,
                                          const void *key, int insert, AO_t *full);
/* The slot an address hashes to first (fsafe__addr_find probes on from it). */
static inline unsigned fsafe__addr_hash(const void *key, unsigned bits)
{
    return (unsigned)(((uintptr_t)key >> 4) * 0x9E3779B97F4A7C15ull >> (64 - bits));
}
/* fsafe__addr_find with its usual case inline: the key in its first slot. */
static inline struct fsafe__addr_slot *fsafe__addr_get(struct fsafe__addr_slot *tab, unsigned bits,
                                                       const void *key, int insert, AO_t *full)
{
    struct fsafe__addr_slot *e = &tab[fsafe__addr_hash(key, bits)];
    if (__builtin_expect(AO_load_acquire(&e->key) == (AO_t)key, 1))
        return e;
    return fsafe__addr_find(tab, bits, key, insert, full);
}
/* Bumped by a thread that let go of its last hold while a fork is pending;
 * the forker sleeps on it between looks, with fsafe__at_forker_sleeps set
 * (track.c, quiet_now). */
extern AO_t fsafe__at_quiet_seq;
extern AO_t fsafe__at_forker_sleeps;
struct fsafe__at_thread *fsafe__at_current(void); /* NULL if the thread has none */
/* Wakes every thread parked by PENDING (parent), after clearing it and CLOSED. */
void fsafe__at_unpark_all(void);
/* Sets or clears CLOSED; clearing wakes threads parked at monitors' mutexes.
 * late (with closed): sets LATE too, and wakes threads parked after a signal. */
void fsafe__at_set_closed(int closed, int late);
/* Non-zero once any mutex has been seen in a condition wait. */
extern AO_t fsafe__at_monitors;
int fsafe__at_is_monitor(const void *mutex);
/* The forker's own lock call on a mutex this fork took from a condition
 * waiter (another library's prepare handler): the mutex becomes the
 * caller's, and 1 is returned; 0 when the fork did not take it.  Set by
 * fork.c at attach, before any fork: the lock calls below it reach the fork
 * phase through this pointer, not by name (the layers, src/README.md). */
extern int (*fsafe__at_handover)(void *mutex);
/* Child: a new token; the forker's record (mine) is stamped with it, every
 * other record is its parent's and left untouched.  Returns the old token. */
AO_t fsafe__at_child_new_token(struct fsafe__at_thread *mine);
/* Whether the lock word says the lock is free (glibc layouts); 0 when unsure. */
int fsafe__at_lock_free(const void *lock, int kind);

/* Real functions, resolved once (track.c). */
/* The next definition of name after this library (dlsym(RTLD_NEXT)), or,
 * for a caller outside the global scope (a plugin loaded RTLD_LOCAL), the
 * one in the caller's own scope; found at the first call and kept in *slot;
 * aborts with a message naming it when there is none.  caller: the return
 * address of the interposed call.  NEXT(type, "name") keeps a slot per call
 * site. */
void *fsafe__next_sym(AO_t *slot, const char *name, const void *caller);
/* The function in *slot, with the load inline (a lock call's fast path); the
 * first call resolves it. */
#define FSAFE__NEXT_IN(slot, type, name)                                                           \
    ({                                                                                             \
        void *p_ = (void *)AO_load_acquire(slot);                                                  \
        if (__builtin_expect(p_ == NULL, 0))                                                       \
            p_ = fsafe__next_sym((slot), (name), __builtin_return_address(0));                                                  \
        (type) p_;                                                                                 \
    })
#define NEXT(type, name)                                                                           \
    ({                                                                                             \
        static AO_t sym_;                                                                          \
        FSAFE__NEXT_IN(&sym_, type, name);                                                         \
    })
/* The real lock calls the other files use too, one pointer each (svc.c):
 * fsafe__real_mutex_lock(m) calls libc's pthread_mutex_lock.  Never NULL:
 * each starts at a function that resolves it on the first call. */
#define FSAFE__REAL_CALLS(X)                                                                       \
    X(mutex_lock, pthread_mutex_t)                                                                 \
    X(mutex_trylock, pthread_mutex_t)                                                              \
    X(mutex_unlock, pthread_mutex_t)                                                               \
    X(rwlock_rdlock, pthread_rwlock_t)                                                             \
    X(rwlock_tryrdlock, pthread_rwlock_t)                                                          \
    X(rwlock_wrlock, pthread_rwlock_t)                                                             \
    X(rwlock_trywrlock, pthread_rwlock_t)                                                          \
    X(rwlock_unlock, pthread_rwlock_t)                                                             \
    X(spin_lock, pthread_spinlock_t)
#define FSAFE__REAL_DECLARE(op, type) extern int (*fsafe__real_##op)(type *);
FSAFE__REAL_CALLS(FSAFE__REAL_DECLARE)

/* ---- gates: libc calls that must not be in flight at fork (libc.c) ---- */
/*
 * A call into a libc family whose internal lock a child may need (time zone,
 * NSS, syslog, ...) is tracked like a lock hold on the family's gate: it
 * parks while a fork is pending if the thread holds nothing else, and the
 * forker waits, within FSAFE_AUTO_WAIT_MS, until no other thread is inside a
 * gated call.  Nested calls and forks from inside a gated call (a callback, a
 * constructor run by dlopen) nest like locks the forker holds itself.
 */
#define FSAFE__AT_GATE 7 /* entry kind: a gate, not a lock */
/* Entry kind: a lock that is one 32-bit futex word, 0 when free (GLib's
 * GMutex: glib.c); the child resets it by storing 0. */
#define FSAFE__AT_WORD 6
/* Entry kind: an absl::Mutex (absl.c): its word's layout is abseil's,
 * so the fork only waits for it; the child never resets one. */
#define FSAFE__AT_ABSL 5
struct fsafe__gate {
    const char *family; /* named in messages: "time zone (localtime_r)" */
    /* Non-zero when a hold of the gate by a thread inside fork() excludes
     * every other caller, as an exclusive lock does: another thread's fork
     * then waits for none of the gate's holds, that thread's included
     * (fork.c: holds_against).  A call that holds libc's lock for its whole
     * duration is not enough (a fork from a signal handler may have
     * interrupted it inside or outside the lock): the fork must make the
     * lock safe itself, as it does for the loader's (it takes dl_load_lock;
     * loader.c repairs dl_load_write_lock in the child).  The loader's gate
     * only (libc.c, the gates' slots). */
    int exclusive;
};
void fsafe__gate_enter(struct fsafe__gate *g, uintptr_t caller);
void fsafe__gate_leave(struct fsafe__gate *g);


/* ---- loader.c: glibc's loader locks ------------------------------------------ */
void fsafe__loader_init(void);  /* constructor: finds the two locks */
void fsafe__loader_postfork_child(void); /* async-signal-safe: the child's fix-ups */
/* dl_load_lock: whether thread tid holds it; the forker's take (0: taken, or
 * nothing to take; -1: held by *holder); its release. */
int fsafe__loader_holds(pid_t tid);
int fsafe__loader_take(pid_t *holder);
void fsafe__loader_release(void);
/* This thread's dl_iterate_phdr calls in progress (libc.c's interposer). */
extern __thread int fsafe__in_iterate __attribute__((tls_model("initial-exec")));

/* ---- sem.c: POSIX semaphores used as locks (issue 15) ------------------- */
void fsafe__sem_init(void);
/* Async-signal-safe; parent_token: the records of the parent's threads. */
void fsafe__sem_postfork_child(AO_t parent_token);

/* Tracking for the interposers of other libraries' lock functions
 * (glib.c), out of line: a hold of lock (kind, exclusive) begins,
 * before the call that may block (returns its slot, or -1 / FSAFE__AT_FORKER_CALL
 * when it is not tracked), is done or cancelled after it; a release; a
 * condition wait on it (wait_begin marks the hold WAITING, wait_end HELD
 * again). */
long fsafe__at_lock_begin(void *lock, int kind, int mode, uintptr_t caller);
void fsafe__at_lock_done(long slot, void *lock, int kind, int mode);
void fsafe__at_lock_cancel(long slot);
void fsafe__at_unlocked(void *lock);
long fsafe__at_wait_begin(void *lock, int kind, uintptr_t caller);
void fsafe__at_wait_end(long slot);

/* ---- watch.c: the child's watch (issue 24) ------------------------------ */
/* Non-zero in the child of a multithreaded fork while it has one thread and
 * has said nothing yet: its waits without a timeout go through these. */
extern AO_t fsafe__watch_armed;
void fsafe__watch_prefork(void);
void fsafe__watch_postfork_child(void); /* async-signal-safe */
/* The waits the program asked for, with the same results and errno; one
 * line first when FSAFE_CHILD_WATCH_MS runs out and nothing can end them.
 * fn: the call's name in that line; caller: its return address. */
int fsafe__watch_cond_wait(pthread_cond_t *c, pthread_mutex_t *m, const char *fn,
                           uintptr_t caller);
int fsafe__watch_sem_wait(sem_t *s, uintptr_t caller);

/* ---- omp.c: OpenMP's pool (issue 24) ------------------------------------ */
/* Async-signal-safe: from now on every parallel region of this child has one
 * thread if the forker had started one in the parent (its pool is gone). */
void fsafe__omp_postfork_child(void);

#pragma GCC visibility pop

#endif /* FSAFE_AUTO_H */
