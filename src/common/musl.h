/* SPDX-License-Identifier: MIT */
/*
 * musl's mutex layout, for the core's build on musl (test/platforms/musl.sh;
 * auto mode and FSAFE_LOCKS are glibc-only).  musl's pthread_impl.h,
 * unchanged since musl 1.1: int words _m_type (the attribute bits: type & 3,
 * robust 4, priority inheritance 8, process-shared 128), _m_lock (the owner's
 * thread id for every kind but a plain NORMAL one; 0x40000000 owner died,
 * 0x80000000 waiters) and _m_count (a recursive mutex's holds beyond the
 * first).  musl defines no macro of its own: another Linux libc than glibc
 * is taken for musl, and core/lockops.c checks this layout on a probe mutex
 * before it relies on it.
 */
#ifndef FSAFE_MUSL_H
#define FSAFE_MUSL_H

#if !defined(__GLIBC__) && defined(__linux__)
#define FSAFE__MUSL 1
#define FSAFE__MU_TYPE(m) (((volatile int *)(m))[0])
#define FSAFE__MU_LOCK(m) (((volatile int *)(m))[1])
#define FSAFE__MU_COUNT(m) (((volatile int *)(m))[5])
#define FSAFE__MU_OWNED 15 /* type bits for which _m_lock holds the owner */
#define FSAFE__MU_TID 0x3fffffff
#define FSAFE__MU_PSHARED 128
#endif

#endif /* FSAFE_MUSL_H */
