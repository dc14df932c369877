/* SPDX-License-Identifier: MIT */
/*
 * fsafe: make fork() safe in multithreaded programs.
 *
 * Libraries register the locks their code may need in a forked child.  fsafe's
 * fork() takes every registered lock in rank order before the real fork and
 * leaves each one usable in both processes afterwards.  This is the only
 * installed header; everything in it is stable API.
 */
#ifndef FSAFE_H
#define FSAFE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version lives here and only here; CMake reads it from these lines. */
#define FSAFE_VERSION_MAJOR 0
#define FSAFE_VERSION_MINOR 1
#define FSAFE_VERSION_PATCH 0
#define FSAFE_VERSION                                                                              \
    ((FSAFE_VERSION_MAJOR << 16) | (FSAFE_VERSION_MINOR << 8) | FSAFE_VERSION_PATCH)
#define FSAFE_STRINGIFY_(x) #x
#define FSAFE_STRINGIFY(x) FSAFE_STRINGIFY_(x)
#define FSAFE_VERSION_STRING                                                                       \
    FSAFE_STRINGIFY(FSAFE_VERSION_MAJOR)                                                           \
    "." FSAFE_STRINGIFY(FSAFE_VERSION_MINOR) "." FSAFE_STRINGIFY(FSAFE_VERSION_PATCH)

/*
 * Optional use.  A library that wants fork safety when fsafe is present, and
 * nothing at all when it is absent, defines FSAFE_OPTIONAL before including
 * this header and does not link -lfsafe.  Every function below is then a weak
 * reference: it is NULL unless libfsafe is in the process (LD_PRELOAD,
 * fsafe-run, or linked by the program or interpreter).  Call through the
 * fsafe_opt_*() helpers, which return ENOSYS when fsafe is absent.
 */
#if defined(FSAFE_OPTIONAL) && (defined(__GNUC__) || defined(__clang__))
/* visibility("default") too: a weak reference that a library's own
 * "#pragma GCC visibility push(hidden)" made hidden would be resolved to NULL
 * by the static linker and never bind to libfsafe at run time. */
#define FSAFE_API __attribute__((weak, visibility("default")))
#elif defined(__GNUC__) || defined(__clang__)
#define FSAFE_API __attribute__((visibility("default")))
#else
#define FSAFE_API
#endif

/* Lock kinds for fsafe_register_lock(). */
enum fsafe_kind {
    FSAFE_MUTEX = 1,    /* pthread_mutex_t of any type (normal, errorcheck, recursive,
                           robust, priority-inherit/protect, process-shared) */
    FSAFE_RWLOCK = 2,   /* pthread_rwlock_t, held for writing across fork */
    FSAFE_SPINLOCK = 3, /* pthread_spinlock_t */
};

/*
 * Flags that may be OR-ed into the kind.  By default fsafe asks the kernel
 * (/proc/self/maps) whether a lock that may be process-shared lives in a shared
 * mapping; these say it outright and skip the look-up.
 *   FSAFE_SHARED:  the lock is in memory the child shares with the parent.  It
 *                  is taken before fork, released once by the parent, and never
 *                  reset by the child.
 *   FSAFE_PRIVATE: the lock is in private memory.  The child resets its copy.
 */
#define FSAFE_SHARED 0x100
#define FSAFE_PRIVATE 0x200

/*
 * Register a lock.  Before each fork, fsafe takes every registered lock in
 * ascending rank (equal ranks in registration order); after the fork the
 * parent releases them and the child resets them to unlocked.  In a process
 * that has never had a second thread (glibc's __libc_single_threaded) only
 * the locks the forking thread holds and ops locks are taken: fsafe_fork(3).
 * name is copied
 * (truncated to FSAFE_NAME_MAX - 1 bytes) and appears in messages; NULL is
 * allowed.  Safe from any thread at any time, including constructors and
 * another library's pthread_atfork handlers; not async-signal-safe.
 *
 * Returns 0, or an errno value: EINVAL (NULL lock, unknown kind or flags),
 * EEXIST (lock already registered, under any kind), ENOMEM.
 */
FSAFE_API int fsafe_register_lock(void *lock, int kind, int rank, const char *name);

#define FSAFE_NAME_MAX 48

/*
 * Locks of any other shape: a library's own spinlock, a semaphore, a
 * "quiesce my worker pool" step.  key identifies the registration (it must be
 * unique, like a lock address) and is passed to every callback.
 *
 *   acquire         required.  Called before fork, in rank order; blocks until
 *                   the resource is held.  Return 0, or an errno value to say
 *                   it was not taken (it is then neither released nor reset).
 *   try_acquire     optional.  Return 0 if taken, non-zero if busy.  With it,
 *                   fsafe polls instead of blocking, so that FSAFE_WARN_MS can
 *                   name the lock and a concurrent unregister never waits.
 *   release_parent  required.  Called in the parent after fork (also when
 *                   fork failed).
 *   release_child   required.  Called in the child after fork.  It runs in the
 *                   child of a multithreaded process: async-signal-safe calls
 *                   only.  Typically re-initialises the lock.
 *
 * The ops structure is copied.
 */
struct fsafe_lock_ops {
    int (*acquire)(void *key);
    int (*try_acquire)(void *key);
    void (*release_parent)(void *key);
    void (*release_child)(void *key);
};
FSAFE_API int fsafe_register_ops(void *key, const struct fsafe_lock_ops *ops, int rank,
                                 const char *name);

/*
 * Unregister a lock (or ops key).  When it returns 0, fsafe will never touch
 * that memory again, even if another thread is inside fork: if that fork holds
 * the lock, unregister waits until it has been released.  Returns 0, EINVAL
 * (NULL) or ENOENT (not registered).
 */
FSAFE_API int fsafe_unregister_lock(void *lock);

/*
 * The wrapped fork.  When libfsafe.so is loaded, plain fork() is this
 * function; fsafe_fork() exists for static links and explicit use.
 */
FSAFE_API pid_t fsafe_fork(void);

/* Runtime version, FSAFE_VERSION / FSAFE_VERSION_STRING of the loaded library. */
FSAFE_API unsigned fsafe_version(void);
FSAFE_API const char *fsafe_version_string(void);

/*
 * Throwaway threads spawned and joined around each fork so that no stale
 * thread id survives into the child (NetBSD 5.0, see README).
 */
#define FSAFE_CHURN_AUTO (-1) /* on where the platform needs it, off elsewhere */
#define FSAFE_CHURN_OFF 0
/* Set the count (>= 0, or FSAFE_CHURN_AUTO).  Returns 0 or EINVAL. */
FSAFE_API int fsafe_set_churn(int count);

/* Counters.  Pass sizeof(struct fsafe_stats); fields are only ever appended. */
struct fsafe_stats {
    uint64_t forks;          /* forks that ran fsafe's protocol */
    uint64_t forks_via_handler; /* of which: reached fsafe only through pthread_atfork
                                   (daemon(), forkpty()) */
    uint64_t locks_registered;  /* currently registered */
    uint64_t locks_acquired;    /* lock acquisitions by fork, in total (one-thread
                                   forks take only held and ops locks) */
    uint64_t acquire_ns_total;  /* ns from a fork's call to its real fork, in total: the
                                   fork gate, auto mode's wait, the registered walk */
    uint64_t acquire_ns_max;    /* ns, the longest of these for one fork */
    uint64_t churn_spawned;     /* throwaway threads created */
    uint64_t churn_reaped;      /* throwaway threads joined */
    uint64_t churn_failed;      /* throwaway threads that could not be created */
    /* Auto mode (libfsafe-auto.so; 0 without it): */
    uint64_t auto_wait_ns_total; /* ns forks waited for other threads' locks, in total
                                    (part of acquire_ns_total) */
    uint64_t auto_wait_ns_max;   /* ns, the longest such wait of one fork */
    uint64_t auto_handed_over;   /* mutexes taken from condition waiters that the forking
                                    thread's own lock calls (other libraries' atfork
                                    prepare handlers) asked for: theirs from then on */
};
FSAFE_API int fsafe_get_stats(struct fsafe_stats *out, size_t size);

/* Helpers for optional use (see FSAFE_OPTIONAL above). */
#ifdef FSAFE_OPTIONAL
#define FSAFE_OPT_CALL_(fn, ...) ((fn) ? fn(__VA_ARGS__) : ENOSYS)
static inline int fsafe_present(void)
{
    return fsafe_register_lock != 0;
}
#else
#define FSAFE_OPT_CALL_(fn, ...) fn(__VA_ARGS__)
static inline int fsafe_present(void)
{
    return 1;
}
#endif
static inline int fsafe_opt_register_lock(void *lock, int kind, int rank, const char *name)
{
    return FSAFE_OPT_CALL_(fsafe_register_lock, lock, kind, rank, name);
}
static inline int fsafe_opt_register_ops(void *key, const struct fsafe_lock_ops *ops, int rank,
                                         const char *name)
{
    return FSAFE_OPT_CALL_(fsafe_register_ops, key, ops, rank, name);
}
static inline int fsafe_opt_unregister_lock(void *lock)
{
    return FSAFE_OPT_CALL_(fsafe_unregister_lock, lock);
}

#ifdef __cplusplus
}
#endif

#endif /* FSAFE_H */
