/* SPDX-License-Identifier: MIT */
/*
 * glibc's lock layout, in one place.  Every file of both libraries that looks
 * inside a pthread_mutex_t, pthread_rwlock_t, pthread_cond_t or sem_t beyond the
 * POSIX calls does it with the names here.  The fields are glibc's public
 * struct members (bits/struct_mutex.h, bits/struct_rwlock.h,
 * bits/thread-shared-types.h); what their bits mean is nptl's (pthreadP.h,
 * pthread_rwlock_common.c, pthread_cond_common.c): the mutex kind bits are
 * stable since glibc 2.3, the rwlock and condition variable words since 2.25
 * (the algorithms of that release).  Outside glibc nothing here is defined,
 * and every user has a portable fallback or says it cannot tell.
 */
#ifndef FSAFE_GLIBC_H
#define FSAFE_GLIBC_H

#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>

#include "contract.h" /* FSAFE_TSAN */

#if defined(__GLIBC__) && defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h> /* glibc 2.32 */
#define FSAFE__GL_HAVE_SINGLE_THREADED 1
#endif
#endif

/* glibc's __libc_single_threaded (2.32): 1 while this process has never
 * had a second thread, 0 once it has; -1 where the build's libc has no
 * such flag (glibc < 2.32, musl), so that a caller must ask otherwise. */
static inline int fsafe__gl_single_threaded(void)
{
#ifdef FSAFE__GL_HAVE_SINGLE_THREADED
    return __libc_single_threaded;
#else
    return -1;
#endif
}

#ifdef __GLIBC__
/* ---- the ABI's first symbol version ----------------------------------------- */
/* The oldest symbol version of libc on this ABI, the one that programs
 * linked before a function got a new version still call (glibc's
 * shlib-versions: x86_64 GLIBC_2.2.5, aarch64 GLIBC_2.17, i386 GLIBC_2.0).
 * Undefined on the ABIs not listed (test/libc/kill_old.c keeps a copy). */
#if defined(__x86_64__) && defined(__LP64__)
#define FSAFE__GL_BASE_VERSION "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define FSAFE__GL_BASE_VERSION "GLIBC_2.17"
#elif defined(__i386__)
#define FSAFE__GL_BASE_VERSION "GLIBC_2.0"
#endif

/* ---- mutex: __kind -------------------------------------------------------- */
#define FSAFE__GL_KIND_TYPE 3 /* NORMAL 0, RECURSIVE 1, ERRORCHECK 2, ADAPTIVE 3 */
#define FSAFE__GL_KIND_ROBUST 16
#define FSAFE__GL_KIND_PI 32
#define FSAFE__GL_KIND_PP 64 /* priority protection: the ceiling shares the lock word */
#define FSAFE__GL_KIND_PSHARED 128
#define FSAFE__GL_KIND_ELISION 256
#define FSAFE__GL_KIND_NO_ELISION 512
/* The kind without the process-shared and elision bits. */
#define FSAFE__GL_KIND_LOCAL 0x7f
/* ---- mutex: __lock (the futex word) --------------------------------------- */
/* A plain mutex: 0 free, 1 locked, 2 locked with waiters (lowlevellock.h). */
/* Robust and PI mutexes: the owner's tid, FUTEX_WAITERS and FUTEX_OWNER_DIED
 * above it (linux/futex.h). */
#define FSAFE__GL_TID_MASK 0x3fffffffu
#define FSAFE__GL_FUTEX_WAITERS 0x80000000u
/* PP mutexes: the priority ceiling in the top bits, the lock state below. */
#define FSAFE__GL_PP_CEILING 0xfff80000u

static inline volatile int *fsafe__gl_mutex_word(const pthread_mutex_t *m)
{
    return (volatile int *)&m->__data.__lock;
}
/* The owner's tid while locked (all kinds), 0 when free.  A plain pointer:
 * a thread that reads another's mutex reads it once with AO_int_load. */
static inline int *fsafe__gl_mutex_owner(const pthread_mutex_t *m)
{
    return (int *)&m->__data.__owner;
}
static inline int fsafe__gl_mutex_kind(const pthread_mutex_t *m)
{
    return ((const volatile pthread_mutex_t *)m)->__data.__kind;
}
/* A recursive mutex's depth. */
static inline unsigned fsafe__gl_mutex_count(const pthread_mutex_t *m)
{
    return ((const volatile pthread_mutex_t *)m)->__data.__count;
}

/* ---- rwlock --------------------------------------------------------------- */
/* __readers: bit 1 write-locked (PTHREAD_RWLOCK_WRLOCKED), readers counted
 * from bit 3 (PTHREAD_RWLOCK_READER_SHIFT). */
#define FSAFE__GL_RW_WRLOCKED 2u
#define FSAFE__GL_RW_READER_SHIFT 3
static inline unsigned fsafe__gl_rwlock_readers(const pthread_rwlock_t *l)
{
    return ((const volatile pthread_rwlock_t *)l)->__data.__readers;
}
/* The writer's tid while write-locked, else 0. */
static inline int fsafe__gl_rwlock_writer(const pthread_rwlock_t *l)
{
    return ((const volatile pthread_rwlock_t *)l)->__data.__cur_writer;
}
/* PTHREAD_RWLOCK_PREFER_*_NP, as pthread_rwlockattr_setkind_np takes it. */
static inline int fsafe__gl_rwlock_pref(const pthread_rwlock_t *l)
{
    return (int)l->__data.__flags;
}
static inline int fsafe__gl_rwlock_pshared(const pthread_rwlock_t *l)
{
    return l->__data.__shared != 0;
}

/* ---- condition variable: __wrefs ------------------------------------------ */
/* Bit 0 process-shared, bit 1 the clock; waiter references above bit 2. */
#define FSAFE__GL_COND_PSHARED 1u
#define FSAFE__GL_COND_MONOTONIC 2u /* pthread_condattr_setclock(CLOCK_MONOTONIC) */
#define FSAFE__GL_COND_FLAGS 3u
static inline unsigned *fsafe__gl_cond_wrefs(pthread_cond_t *c)
{
    return &c->__data.__wrefs;
}

#ifdef __LP64__
/* ---- semaphore: struct new_sem (nptl/semaphoreP.h, 64-bit atomics) -------
 * The value in the low 32 bits of the first word, the waiter count in the
 * high 32 bits; then `private`, 0 for a process-private semaphore and
 * FUTEX_PRIVATE_FLAG (128) for pshared=1 and sem_open. */
static inline unsigned fsafe__gl_sem_value(const sem_t *s)
{
    return (unsigned)(*(const volatile uint64_t *)(const void *)s & 0xffffffffu);
}

static inline int fsafe__gl_sem_private(const sem_t *s)
{
    return ((const volatile int *)(const void *)s)[2] == 0;
}
#endif
#endif /* __GLIBC__ */

/* ---- the fork walk's per-lock fast paths ----------------------------------
 * Inline because each runs once per lock per fork (src/core/walk.c). */
/* Child: r's mutex, taken by the walk, re-initialised unlocked in place.
 * Returns 0, or -1 when it is not a plain mutex (fsafe__lock_postfork_child). */
static inline int fsafe__mutex_reset_plain(pthread_mutex_t *m)
{
#if defined(__GLIBC__) && !FSAFE_TSAN
    int k = m->__data.__kind;
    if ((k & (FSAFE__GL_KIND_ROBUST | FSAFE__GL_KIND_PI | FSAFE__GL_KIND_PP)) ||
        ((k & FSAFE__GL_KIND_TYPE) == PTHREAD_MUTEX_RECURSIVE && m->__data.__count > 1))
        return -1; /* (a recursive mutex the forker also held: its depth to restore) */
    /* The state the static initializer for this type gives, field by field:
     * the fields lock and unlock write, and the kind only when it carries more
     * than the type (the process-shared bit: the child's copy is private).
     * __spins is an adaptive mutex's estimate; __list is unused without
     * ROBUST.  (Copying a whole initializer built on the stack costs a
     * store-forwarding stall per mutex, 5 ns here.) */
    m->__data.__lock = 0;
    m->__data.__count = 0;
    m->__data.__owner = 0;
    m->__data.__nusers = 0;
    if (k != (k & FSAFE__GL_KIND_TYPE))
        m->__data.__kind = k & FSAFE__GL_KIND_TYPE;
    return 0;
#else
    (void)m;
    return -1;
#endif
}

/* Whether a mutex is unlocked, read without writing to it (a single-threaded
 * walk leaves such a mutex alone).  0 when unsure. */
static inline int fsafe__mutex_looks_free(const pthread_mutex_t *m)
{
#ifdef __GLIBC__
    /* __lock is 0 exactly when no one holds it, for every kind but priority
     * protection, which keeps its ceiling there. */
    return *fsafe__gl_mutex_word(m) == 0;
#else
    (void)m;
    return 0;
#endif
}

#endif /* FSAFE_GLIBC_H */
