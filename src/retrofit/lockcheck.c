/* SPDX-License-Identifier: MIT */
/*
 * Is this memory a lock?  A read-only look at glibc's layout of an initialised
 * pthread mutex, rwlock or spinlock, to refuse an FSAFE_LOCKS symbol that names
 * something else before fsafe takes and re-initialises it on every fork.
 * Never writes the bytes and never calls a lock function on them.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include "internal.h"

#ifdef __GLIBC__
#define K_TYPE ((unsigned)FSAFE__GL_KIND_TYPE)
#define K_ROBUST ((unsigned)FSAFE__GL_KIND_ROBUST)
#define K_PI ((unsigned)FSAFE__GL_KIND_PI)
#define K_PP ((unsigned)FSAFE__GL_KIND_PP)
#define K_PSHARED ((unsigned)FSAFE__GL_KIND_PSHARED)
#define K_ELISION ((unsigned)FSAFE__GL_KIND_ELISION)
#define K_NO_ELISION ((unsigned)FSAFE__GL_KIND_NO_ELISION)
#define K_CEILING FSAFE__GL_PP_CEILING
#define TID_MASK FSAFE__GL_TID_MASK
#endif
#define TID_MAX (1u << 22)    /* the kernel's largest pid_max */

static const char *mutex_check(const pthread_mutex_t *pm)
{
#ifdef __GLIBC__
    struct __pthread_mutex_s m;
    memcpy(&m, &pm->__data, sizeof m);
    unsigned k = (unsigned)m.__kind;
    if (m.__kind == -1)
        return "kind -1: a destroyed mutex";
    if (k & ~(K_TYPE | K_ROBUST | K_PI | K_PP | K_PSHARED | K_ELISION | K_NO_ELISION | K_CEILING))
        return "its kind field is no known mutex type";
    if ((k & K_PI) && (k & K_PP))
        return "its kind field claims both priority inheritance and protection";
    if ((k & K_ELISION) && (k & K_NO_ELISION))
        return "its kind field claims elision both on and off";
    if (m.__owner < 0 && m.__owner != 0x7fffffff && m.__owner != 0x7ffffffe)
        return "its owner field is no thread id";
    if ((unsigned)m.__owner >= TID_MAX && m.__owner < 0x7ffffffe)
        return "its owner field is no thread id";
    if (k & (K_ROBUST | K_PI)) {
        /* Lock word: the owner's tid with FUTEX_WAITERS / FUTEX_OWNER_DIED. */
        if (((unsigned)m.__lock & TID_MASK) >= TID_MAX)
            return "its lock word holds no thread id";
        if ((m.__list.__prev == NULL) != (m.__list.__next == NULL))
            return "its robust-list links are half set";
    } else {
        unsigned w = (unsigned)m.__lock & ~(k & K_PP ? K_CEILING : 0u);
        if (w > 2)
            return "its lock word is not 0, 1 or 2";
        if (m.__list.__prev || m.__list.__next)
            return "it has robust-list links but is not a robust mutex";
        if (w == 0 && m.__owner != 0)
            return "it is unlocked but names an owner";
        if ((k & K_TYPE) != PTHREAD_MUTEX_RECURSIVE && !(k & K_PP) && m.__count != 0)
            return "it has a recursion count but is not a recursive mutex";
    }
    if (m.__spins < 0)
        return "its spin count is negative";
#else
    (void)pm;
#endif
    return NULL;
}

static const char *rwlock_check(const pthread_rwlock_t *pr)
{
#ifdef __GLIBC__
    struct __pthread_rwlock_arch_t r;
    memcpy(&r, &pr->__data, sizeof r);
    if (r.__flags > PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP)
        return "its kind field is no known rwlock kind";
    if ((unsigned)r.__shared > 1)
        return "its process-shared field is neither 0 nor 1";
    if (r.__wrphase_futex > 3 || r.__writers_futex > 3)
        return "its futex words are not 0 to 3";
    if (r.__cur_writer < 0 || (unsigned)r.__cur_writer >= TID_MAX)
        return "its writer field is no thread id";
    if (r.__pad3 || r.__pad4 || r.__pad2)
        return "its padding is not zero";
    /* __pad1 is unsigned char[7] on x86-64 and an unsigned long on aarch64
     * (glibc's generic bits/struct_rwlock.h): compared byte by byte. */
    const unsigned char *pad1 = (const unsigned char *)&r.__pad1;
    for (size_t i = 0; i < sizeof r.__pad1; i++)
        if (pad1[i])
            return "its padding is not zero";
#else
    (void)pr;
#endif
    return NULL;
}

const char *fsafe__lock_implausible(const void *p, int kind)
{
    if (kind == FSAFE_SPINLOCK) {
        int v;
        memcpy(&v, p, sizeof v);
        return v == 0 || v == 1 ? NULL : "a spinlock is 0 or 1";
    }
    if (kind == FSAFE__SPEC_LLL) {
        int v;
        memcpy(&v, p, sizeof v);
        return v >= 0 && v <= 2 ? NULL : "a glibc low-level lock is 0, 1 or 2";
    }
    if (kind == FSAFE_RWLOCK)
        return rwlock_check(p);
    return mutex_check(p);
}
