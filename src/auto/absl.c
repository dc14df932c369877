/* SPDX-License-Identifier: MIT */
/*
 * abseil's absl::Mutex under auto mode (issue 24), from a shared
 * libabsl_synchronization (Debian's libabsl-dev).
 *
 * An absl::Mutex is one word that abseil takes with atomic operations and
 * its own waiter queue: no pthread call, so lock tracking never saw it, and
 * one that another thread held at the fork stays held in the child.  These
 * interposers track the program's calls of its member functions (kind
 * FSAFE__AT_ABSL; reader locks shared): the fork waits until no other
 * thread holds one.  The word's layout and waiter queue are abseil's
 * business, so fsafe never writes it: a lock still held when the wait runs
 * out is left as it is in the child (as without fsafe), and a thread inside
 * Await or CondVar::Wait, which releases the mutex inside abseil, is not
 * waited for (the fork cannot stop it from taking the mutex back just
 * before the fork, a narrow window that remains).
 *
 * The functions are C++ members; they are defined here under their mangled
 * names (the Itanium C++ ABI: `this` first; absl::Duration and absl::Time
 * are 16-byte trivially copyable structs, passed in two registers; bool
 * returns in al) for each inline namespace given to ABSL_WRAPPERS below:
 * Debian builds each abseil release under its own (Debian 11's 20200923 as
 * absl::debian1, Debian 12's 20220623 as absl::debian3, Debian 13's
 * 20240722 as absl::debian7, unstable's 20260526 as absl::debian10),
 * upstream under absl::lts_<version>.  An
 * abseil whose namespace is not listed is not tracked (as without fsafe).  Calls that abseil makes to
 * itself (absl::Notification, its own CondVar internals) are not seen.
 */
#include "auto.h"

#include <stdbool.h>
#include <stdint.h>

#define CALLER ((uintptr_t)__builtin_return_address(0))

struct absl_duration { /* absl::Duration, and absl::Time (a Duration) */
    int64_t hi;
    uint32_t lo;
};

/* Resolved per wrapper, by mangled name. */
#define REAL(type, sym) FSAFE__NEXT_IN(&real_, type, sym)

/* A lock call: the hold begins before it, is done after it (a try that
 * failed cancels it).  call is the real call's expression; ok whether it
 * took the lock (r_ is its value).  The value of the call. */
/* Whether this thread is inside one of these wrappers: abseil's own calls
 * of its members (LockWhenWithTimeout ends in a call of
 * LockWhenWithDeadline through the PLT, 20220623) pass through, so that one
 * call of the program is one hold. */
static __thread int inside __attribute__((tls_model("initial-exec")));

#define ABSL_LOCK(mode, call, ok)                                                                  \
    ({                                                                                             \
        __typeof__(call) r_;                                                                       \
        if (inside) {                                                                              \
            r_ = (call);                                                                           \
        } else {                                                                                   \
            inside = 1;                                                                            \
            long slot_ = fsafe__at_lock_begin(mu, FSAFE__AT_ABSL, (mode), CALLER);                 \
            r_ = (call);                                                                           \
            if (ok)                                                                                \
                fsafe__at_lock_done(slot_, mu, FSAFE__AT_ABSL, (mode));                            \
            else                                                                                   \
                fsafe__at_lock_cancel(slot_);                                                      \
            inside = 0;                                                                            \
        }                                                                                          \
        r_;                                                                                        \
    })

/* A wait that releases mu inside abseil and takes it back. */
#define ABSL_WAIT(call)                                                                            \
    ({                                                                                             \
        __typeof__(call) r_;                                                                       \
        if (inside) {                                                                              \
            r_ = (call);                                                                           \
        } else {                                                                                   \
            inside = 1;                                                                            \
            long slot_ = fsafe__at_wait_begin(mu, FSAFE__AT_ABSL, CALLER);                         \
            r_ = (call);                                                                           \
            fsafe__at_wait_end(slot_);                                                             \
            inside = 0;                                                                            \
        }                                                                                          \
        r_;                                                                                        \
    })

/* An unlock: the hold ends after it. */
#define ABSL_UNLOCK(call)                                                                          \
    do {                                                                                           \
        call;                                                                                      \
        if (!inside)                                                                               \
            fsafe__at_unlocked(mu);                                                                \
    } while (0)

/* The void members go through the same macros with a dummy int value. */
#define VOID_CALL(call) ((call), 0)

/* One wrapper per shape of member, defined under its mangled name sym:
 * fn(mu), fn(mu) -> bool, an unlock, fn(mu, condition), the same with a
 * Duration or Time (returns bool), and CondVar's (cv, mu[, Duration]). */
#define ABSL_PLAIN_LOCK(fn, sym, mode)                                                             \
    FSAFE_EXPORT void fn(void *mu) __asm__(sym);                                                   \
    void fn(void *mu)                                                                              \
    {                                                                                              \
        static AO_t real_;                                                                         \
        (void)ABSL_LOCK((mode), VOID_CALL(REAL(void (*)(void *), sym)(mu)), 1);                    \
    }
#define ABSL_TRY_LOCK(fn, sym, mode)                                                               \
    FSAFE_EXPORT bool fn(void *mu) __asm__(sym);                                                   \
    bool fn(void *mu)                                                                              \
    {                                                                                              \
        static AO_t real_;                                                                         \
        return ABSL_LOCK((mode), REAL(bool (*)(void *), sym)(mu), r_);                             \
    }
#define ABSL_UNLOCK_FN(fn, sym)                                                                    \
    FSAFE_EXPORT void fn(void *mu) __asm__(sym);                                                   \
    void fn(void *mu)                                                                              \
    {                                                                                              \
        static AO_t real_;                                                                         \
        ABSL_UNLOCK(REAL(void (*)(void *), sym)(mu));                                              \
    }
/* LockWhen and its timed forms return with the mutex held either way. */
#define ABSL_COND_LOCK(fn, sym, mode)                                                              \
    FSAFE_EXPORT void fn(void *mu, const void *c) __asm__(sym);                                    \
    void fn(void *mu, const void *c)                                                               \
    {                                                                                              \
        static AO_t real_;                                                                         \
        (void)ABSL_LOCK((mode), VOID_CALL(REAL(void (*)(void *, const void *), sym)(mu, c)), 1);   \
    }
#define ABSL_TIMED_LOCK(fn, sym, mode)                                                             \
    FSAFE_EXPORT bool fn(void *mu, const void *c, struct absl_duration d) __asm__(sym);            \
    bool fn(void *mu, const void *c, struct absl_duration d)                                       \
    {                                                                                              \
        static AO_t real_;                                                                         \
        return ABSL_LOCK(                                                                          \
            (mode), REAL(bool (*)(void *, const void *, struct absl_duration), sym)(mu, c, d), 1); \
    }
#define ABSL_COND_WAIT(fn, sym)                                                                    \
    FSAFE_EXPORT void fn(void *mu, const void *c) __asm__(sym);                                    \
    void fn(void *mu, const void *c)                                                               \
    {                                                                                              \
        static AO_t real_;                                                                         \
        (void)ABSL_WAIT(VOID_CALL(REAL(void (*)(void *, const void *), sym)(mu, c)));              \
    }
#define ABSL_TIMED_WAIT(fn, sym)                                                                   \
    FSAFE_EXPORT bool fn(void *mu, const void *c, struct absl_duration d) __asm__(sym);            \
    bool fn(void *mu, const void *c, struct absl_duration d)                                       \
    {                                                                                              \
        static AO_t real_;                                                                         \
        return ABSL_WAIT(                                                                          \
            REAL(bool (*)(void *, const void *, struct absl_duration), sym)(mu, c, d));            \
    }
/* CondVar members: `this` is the CondVar, the mutex comes second. */
#define ABSL_CV_WAIT(fn, sym)                                                                      \
    FSAFE_EXPORT void fn(void *cv, void *mu) __asm__(sym);                                         \
    void fn(void *cv, void *mu)                                                                    \
    {                                                                                              \
        static AO_t real_;                                                                         \
        (void)ABSL_WAIT(VOID_CALL(REAL(void (*)(void *, void *), sym)(cv, mu)));                   \
    }
#define ABSL_CV_TIMED_WAIT(fn, sym)                                                                \
    FSAFE_EXPORT bool fn(void *cv, void *mu, struct absl_duration d) __asm__(sym);                 \
    bool fn(void *cv, void *mu, struct absl_duration d)                                            \
    {                                                                                              \
        static AO_t real_;                                                                         \
        return ABSL_WAIT(REAL(bool (*)(void *, void *, struct absl_duration), sym)(cv, mu, d));    \
    }

/* Every wrapper of one inline namespace, whose mangled prefix P is
 * _ZN4absl<length><name> (e.g. _ZN4absl7debian3). */
#define COND "ERKNS0_9ConditionE"
#define DUR "NS0_8DurationE"
#define TIME "NS0_4TimeE"
/* The plain lock members (lock, reader lock, their try forms, the two
 * unlocks), given as the mangled names after "5Mutex": MEMBERS names the
 * list of a release (ABSL_MEMBERS_CAPS or ABSL_MEMBERS_STD, below). */
#define ABSL_LOCKS(tag, P, ...) ABSL_LOCKS_(tag, P, __VA_ARGS__)
#define ABSL_LOCKS_(tag, P, lk, rlk, tlk, rtlk, ulk, rulk)                                         \
    ABSL_PLAIN_LOCK(tag##_lock, P "5Mutex" lk, FSAFE__AT_EXCL)                                     \
    ABSL_PLAIN_LOCK(tag##_rlock, P "5Mutex" rlk, FSAFE__AT_SHARED)                                 \
    ABSL_TRY_LOCK(tag##_trylock, P "5Mutex" tlk, FSAFE__AT_EXCL)                                   \
    ABSL_TRY_LOCK(tag##_rtrylock, P "5Mutex" rtlk, FSAFE__AT_SHARED)                               \
    ABSL_UNLOCK_FN(tag##_unlock, P "5Mutex" ulk)                                                   \
    ABSL_UNLOCK_FN(tag##_runlock, P "5Mutex" rulk)
/* Lock, ReaderLock, ... up to 20240722; from 20260526 the standard
 * library's names (lock, lock_shared, ...), Lock() and the others being
 * inline calls of them. */
#define ABSL_MEMBERS_CAPS                                                                          \
    "4LockEv", "10ReaderLockEv", "7TryLockEv", "13ReaderTryLockEv", "6UnlockEv", "12ReaderUnlockEv"
#define ABSL_MEMBERS_STD                                                                           \
    "4lockEv", "11lock_sharedEv", "8try_lockEv", "15try_lock_sharedEv", "6unlockEv",               \
        "13unlock_sharedEv"

#define ABSL_WRAPPERS(tag, P)                                                                      \
    ABSL_LOCKS(tag, P, ABSL_MEMBERS_CAPS)                                                          \
    ABSL_COND_LOCK(tag##_lockwhen, P "5Mutex8LockWhen" COND, FSAFE__AT_EXCL)                       \
    ABSL_COND_LOCK(tag##_rlockwhen, P "5Mutex14ReaderLockWhen" COND, FSAFE__AT_SHARED)             \
    ABSL_TIMED_LOCK(tag##_lockwhen_to, P "5Mutex19LockWhenWithTimeout" COND DUR, FSAFE__AT_EXCL)   \
    ABSL_TIMED_LOCK(tag##_rlockwhen_to, P "5Mutex25ReaderLockWhenWithTimeout" COND DUR,            \
                    FSAFE__AT_SHARED)                                                              \
    ABSL_TIMED_LOCK(tag##_lockwhen_dl, P "5Mutex20LockWhenWithDeadline" COND TIME, FSAFE__AT_EXCL) \
    ABSL_TIMED_LOCK(tag##_rlockwhen_dl, P "5Mutex26ReaderLockWhenWithDeadline" COND TIME,          \
                    FSAFE__AT_SHARED)                                                              \
    ABSL_COND_WAIT(tag##_await, P "5Mutex5Await" COND)                                             \
    ABSL_TIMED_WAIT(tag##_await_to, P "5Mutex16AwaitWithTimeout" COND DUR)                         \
    ABSL_TIMED_WAIT(tag##_await_dl, P "5Mutex17AwaitWithDeadline" COND TIME)                       \
    ABSL_CV_WAIT(tag##_cvwait, P "7CondVar4WaitEPNS0_5MutexE")                                     \
    ABSL_CV_TIMED_WAIT(tag##_cvwait_to, P "7CondVar15WaitWithTimeoutEPNS0_5MutexE" DUR)            \
    ABSL_CV_TIMED_WAIT(tag##_cvwait_dl, P "7CondVar16WaitWithDeadlineEPNS0_5MutexE" TIME)

/* Abseil 20230802 and later make the waits inline in mutex.h, each a call
 * of one out-of-line member with a synchronization_internal::KernelTimeout
 * (one 64-bit word; forwarded unchanged, so whether the ABI passes it in a
 * register or by reference does not matter here): LockWhenCommon(cond, t,
 * write) -> bool, AwaitCommon(cond, t) -> bool, CondVar::WaitCommon(mu, t)
 * -> bool.  The plain lock members keep their names until 20260526
 * (ABSL_MEMBERS_CAPS, then ABSL_MEMBERS_STD). */
#define KT "NS0_24synchronization_internal13KernelTimeoutE"
#define ABSL_KT_LOCK(fn, sym)                                                                      \
    FSAFE_EXPORT bool fn(void *mu, const void *c, uint64_t t, bool write) __asm__(sym);            \
    bool fn(void *mu, const void *c, uint64_t t, bool write)                                       \
    {                                                                                              \
        static AO_t real_;                                                                         \
        return ABSL_LOCK(write ? FSAFE__AT_EXCL : FSAFE__AT_SHARED,                                \
                         REAL(bool (*)(void *, const void *, uint64_t, bool), sym)(mu, c, t, write), \
                         1);                                                                       \
    }
#define ABSL_KT_WAIT(fn, sym)                                                                      \
    FSAFE_EXPORT bool fn(void *mu, const void *c, uint64_t t) __asm__(sym);                        \
    bool fn(void *mu, const void *c, uint64_t t)                                                   \
    {                                                                                              \
        static AO_t real_;                                                                         \
        return ABSL_WAIT(REAL(bool (*)(void *, const void *, uint64_t), sym)(mu, c, t));           \
    }
#define ABSL_KT_CV_WAIT(fn, sym)                                                                   \
    FSAFE_EXPORT bool fn(void *cv, void *mu, uint64_t t) __asm__(sym);                             \
    bool fn(void *cv, void *mu, uint64_t t)                                                        \
    {                                                                                              \
        static AO_t real_;                                                                         \
        return ABSL_WAIT(REAL(bool (*)(void *, void *, uint64_t), sym)(cv, mu, t));                \
    }
/* The waits of abseil 20230802 and later; its lock members by MEMBERS. */
#define ABSL_WRAPPERS_KT(tag, P, members)                                                          \
    ABSL_LOCKS(tag, P, members)                                                                    \
    ABSL_KT_LOCK(tag##_lockwhen, P "5Mutex14LockWhenCommon" COND KT "b")                           \
    ABSL_KT_WAIT(tag##_await, P "5Mutex11AwaitCommon" COND KT)                                     \
    ABSL_KT_CV_WAIT(tag##_cvwait, P "7CondVar10WaitCommonEPNS0_5MutexE" KT)

/* The inline namespaces, each Debian release's and upstream's LTS name of
 * the same version (nm -D libabsl_synchronization.so): */
ABSL_WRAPPERS(debian1, "_ZN4absl7debian1")                  /* Debian 11: 20200923 */
ABSL_WRAPPERS(lts_2020_09_23, "_ZN4absl14lts_2020_09_23")   /* its upstream LTS */
ABSL_WRAPPERS(debian3, "_ZN4absl7debian3")                  /* Debian 12: 20220623 */
ABSL_WRAPPERS(lts_20220623, "_ZN4absl12lts_20220623")       /* its upstream LTS */
ABSL_WRAPPERS_KT(debian7, "_ZN4absl7debian7", ABSL_MEMBERS_CAPS)        /* Debian 13: 20240722 */
ABSL_WRAPPERS_KT(lts_20240722, "_ZN4absl12lts_20240722", ABSL_MEMBERS_CAPS) /* its upstream LTS */
ABSL_WRAPPERS_KT(debian10, "_ZN4absl8debian10", ABSL_MEMBERS_STD)       /* unstable: 20260526 */
ABSL_WRAPPERS_KT(lts_20260526, "_ZN4absl12lts_20260526", ABSL_MEMBERS_STD) /* its upstream LTS */
