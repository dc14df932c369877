/* SPDX-License-Identifier: MIT */
/*
 * The contract between fsafe's two libraries: what libfsafe-auto.so (src/auto)
 * may know of libfsafe.so (src/core, src/retrofit).  The auto library is
 * compiled with src/auto and src/common only on its include path, so anything
 * it uses of libfsafe.so is declared here, and a change here is a change of
 * FSAFE__EXT_ABI.  Both libraries also share the build's conventions (the
 * atomics, the export and fork-path attributes, ThreadSanitizer detection).
 */
#ifndef FSAFE_CONTRACT_H
#define FSAFE_CONTRACT_H

#define AO_REQUIRE_CAS
#include <atomic_ops.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#include "fsafe.h"

#if !defined(AO_HAVE_compare_and_swap_full) || !defined(AO_HAVE_load_acquire) ||                 \
    !defined(AO_HAVE_store_release) || !defined(AO_HAVE_fetch_and_add_full) ||                   \
    !defined(AO_HAVE_nop_full)
#error "fsafe needs AO_compare_and_swap_full, AO_load_acquire, AO_store_release, AO_fetch_and_add_full and AO_nop_full"
#endif

#define FSAFE_EXPORT __attribute__((visibility("default")))
/* The few functions every fork runs, even with nothing registered, live
 * together in .text.hot: a child faults in file-backed text pages one by one,
 * so one page instead of several is measurably cheaper per fork. */
#define FSAFE_FORK_PATH __attribute__((hot, noinline))

/* Under ThreadSanitizer fsafe uses only calls TSan intercepts (lockops.c). */
#if defined(__SANITIZE_THREAD__)
#define FSAFE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FSAFE_TSAN 1
#endif
#endif
#ifndef FSAFE_TSAN
#define FSAFE_TSAN 0
#endif

/* The calling thread's identity (fork gate, walker, tracked holds): the thread
 * pointer, read without a call into libc (and without faulting in a libc text
 * page in every child).  On x86-64 it is what glibc's pthread_self() returns;
 * on aarch64 the two differ by a constant, which is harmless: every
 * comparison uses this one function. */
static inline AO_t fsafe__self_id(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__)) && __GNUC__ >= 11
    return (AO_t)__builtin_thread_pointer();
#else
    return (AO_t)pthread_self();
#endif
}

/* ---- the settings (src/core/config.c reads them once, at init) ------------- */
struct fsafe__config {
    int verbose;       /* FSAFE_VERBOSE */
    int stats;         /* FSAFE_STATS */
    long warn_ms;      /* FSAFE_WARN_MS, 0 = off */
    int flush;         /* FSAFE_FLUSH */
    int warn_threads;  /* FSAFE_WARN_THREADS */
    int churn;         /* FSAFE_CHURN: count, or FSAFE_CHURN_AUTO */
    int log_fd;        /* FSAFE_LOG_FD, default 2 */
    const char *locks; /* FSAFE_LOCKS, NULL = unset (points into environ) */
    int auto_mode;     /* FSAFE_AUTO: 1 on, 0 off, -1 unset (on when libfsafe-auto is loaded) */
    long auto_wait_ms; /* FSAFE_AUTO_WAIT_MS: bound on fork's wait for tracked locks */
    int auto_keep;     /* FSAFE_AUTO_ON_TIMEOUT=keep: leave still-held locks as they are */
    long child_watch_ms; /* FSAFE_CHILD_WATCH_MS: the child's watch (auto), 0 = off */
    int auto_attached;   /* not a setting: libfsafe-auto.so has attached (core/fork.c) */
};

/* ---- ext: the auto library's hooks (libfsafe-auto.so, src/auto) ---------- */
/*
 * libfsafe-auto.so has the core built in and attaches to its fork path
 * through fsafe__ext_attach(), a private entry point the core exports (it is
 * not in fsafe.h; fsafe__ext_init, below, is the other).  The call goes
 * through the dynamic symbol, so that where libfsafe.so's copy of the core
 * comes first in the lookup order (a program linked with it dlopens
 * libfsafe-auto.so) auto mode attaches to that copy, and the built-in one
 * stays dormant (core/api.c).  The hooks run on the fork-gate owner's
 * thread, named for the three fork phases as everywhere in fsafe (jemalloc's
 * words): prefork before the registry walk (wrapper and atfork paths alike),
 * postfork_parent after the registry's release, postfork_child after the
 * registry's reset (async-signal-safe calls only).  The services let the
 * auto library use the core's config, messages and lock resets without a
 * second copy of them.
 */
#define FSAFE__EXT_ABI 6
struct fsafe__ext_ops {
    int abi; /* FSAFE__EXT_ABI */
    /* 0, or -1 when it gave up (and undid itself) for a thread waiting at the
     * fork gate; the forker then backs off and calls it again. */
    int (*prefork)(void);
    void (*prefork_abort)(void); /* undoes a prefork that returned 0 */
    pid_t (*real_fork)(void); /* libc's fork, as the auto library finds it */
    void (*postfork_parent)(void);
    void (*postfork_child)(void);
    /* After a prefork that returned 0: ns it waited, mutexes handed over so
     * far in this fork (the parent handler's count is final). */
    uint64_t (*waited_ns)(void);
    int (*handed_over)(void);
    /* After a prefork that returned 0: holds of other threads its first look
     * found (0: the fork did not wait for anyone). */
    int (*busy_seen)(void);
};
struct fsafe__ext_services {
    const struct fsafe__config *cfg;
    void (*vmsg)(const char *fmt, va_list ap);
    /* Re-initialises a lock of kind FSAFE_MUTEX/RWLOCK/SPINLOCK unlocked, with
     * its attributes; async-signal-safe.  Leaves process-shared memory alone. */
    void (*reset_unlocked)(void *lock, int kind);
    int (*mem_shared)(const void *lock, int kind);
    uint64_t (*now_ns)(void);
    int (*gate_contended)(void); /* another thread waits to fork */
    /* "symbol+0xOFF (library)" for addr, from .dynsym, .symtab or a debug
     * file; 0 when nothing is known.  Not in a child, nor with threads parked. */
    int (*describe)(const void *addr, char *out, size_t size);
    int (*walk_handover)(const void *lock); /* fsafe__walk_handover */
    /* The forking thread is about to call into libc during its own fork
     * (another library's atfork prepare handler): the walk releases the
     * FSAFE_LOCKS "lll" locks it took (libc's own, which that call may
     * take), so that the thread does not wait for itself. */
    void (*walk_give_back_libc)(void);
    /* FSAFE_LOCKS' hooks around dlopen and dlclose, for auto mode's wrappers
     * of them: dl_watch() is 0 while they have nothing to do; dl_loaded()
     * after a dlopen that returned a handle and after every dlclose,
     * dl_unloading() before a dlclose.  They keep errno. */
    int (*dl_watch)(void);
    void (*dl_loaded)(void);
    void (*dl_unloading)(void);
};
/* Returns 0, or -1 when another library is already attached or the ABI differs. */
FSAFE_EXPORT int fsafe__ext_attach(const struct fsafe__ext_ops *ops, struct fsafe__ext_services *out);
/* The core's init, now, with the environment the loader passed to the
 * calling constructor: each copy's constructor calls the active copy's
 * (core/api.c). */
FSAFE_EXPORT void fsafe__ext_init(char **envp);

#endif /* FSAFE_CONTRACT_H */
