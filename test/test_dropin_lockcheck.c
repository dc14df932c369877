/* SPDX-License-Identifier: MIT */
/*
 * FSAFE_LOCKS's "is this a lock?" check (fsafe__lock_implausible, linked from
 * libfsafe.a): every kind of glibc lock, in every state a program can leave it
 * in, is accepted; memory that is not a lock of that kind is refused; and the
 * check never writes the bytes it looks at.
 */
#define _GNU_SOURCE
#include "common.h"

#include "internal.h"

static int accepted(const volatile void *vp, size_t size, int kind)
{
    const void *p = (const void *)vp;
    unsigned char before[64];
    memcpy(before, p, size);
    const char *why = fsafe__lock_implausible(p, kind);
    if (memcmp(before, p, size) != 0)
        FAIL("the check wrote to the lock");
    return why == NULL;
}

#define ACCEPT(p, kind)                                                                            \
    do {                                                                                           \
        if (!accepted((const void *)(p), sizeof *(p), (kind)))                                                   \
            FAIL("refused a real lock: %s (%s)", #p, fsafe__lock_implausible((const void *)(p), (kind)));        \
    } while (0)
#define REFUSE(p, kind)                                                                            \
    do {                                                                                           \
        if (accepted((const void *)(p), sizeof *(p), (kind)))                                                  \
            FAIL("accepted as a lock: %s", #p);                                                    \
    } while (0)

static pthread_mutex_t m_static = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m_rec_static = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t m_err_static = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static pthread_rwlock_t rw_static = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t rw_wp_static = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

static pthread_mutex_t shared_m;
static void *hold(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&shared_m);
    return NULL;
}

static void mutex_kinds(void)
{
    ACCEPT(&m_static, FSAFE_MUTEX);
    ACCEPT(&m_rec_static, FSAFE_MUTEX);
    ACCEPT(&m_err_static, FSAFE_MUTEX);
    int types[] = {PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_RECURSIVE, PTHREAD_MUTEX_ERRORCHECK,
                   PTHREAD_MUTEX_ADAPTIVE_NP};
    for (int robust = 0; robust < 2; robust++)
        for (int proto = 0; proto < 3; proto++)
            for (int pshared = 0; pshared < 2; pshared++)
                for (int t = 0; t < 4; t++) {
                    pthread_mutexattr_t a;
                    pthread_mutex_t m;
                    pthread_mutexattr_init(&a);
                    pthread_mutexattr_settype(&a, types[t]);
                    pthread_mutexattr_setrobust(&a, robust);
                    pthread_mutexattr_setpshared(&a, pshared);
                    pthread_mutexattr_setprotocol(&a, proto == 0   ? PTHREAD_PRIO_NONE
                                                      : proto == 1 ? PTHREAD_PRIO_INHERIT
                                                                   : PTHREAD_PRIO_PROTECT);
                    if (proto == 2)
                        pthread_mutexattr_setprioceiling(&a, 1);
                    int ir = pthread_mutex_init(&m, &a);
                    if (ir == ENOTSUP) /* a combination this glibc does not offer */
                        continue;
                    CHECK_EQ(ir, 0);
                    ACCEPT(&m, FSAFE_MUTEX); /* unlocked */
                    int r = pthread_mutex_lock(&m);
                    if (r == 0) {
                        if (!accepted(&m, sizeof m, FSAFE_MUTEX))
                            FAIL("type %d robust %d proto %d pshared %d locked: %s (count %u kind %d)", t, robust, proto, pshared, fsafe__lock_implausible(&m, FSAFE_MUTEX), m.__data.__count, m.__data.__kind);
                        if (types[t] == PTHREAD_MUTEX_RECURSIVE &&
                            pthread_mutex_lock(&m) == 0) {
                            ACCEPT(&m, FSAFE_MUTEX); /* count 2 */
                            pthread_mutex_unlock(&m);
                        }
                        pthread_mutex_unlock(&m);
                    } else if (proto != 2) {
                        FAIL("lock type %d robust %d proto %d: %d", t, robust, proto, r);
                    }
                    ACCEPT(&m, FSAFE_MUTEX); /* unlocked again */
                    pthread_mutex_destroy(&m);
                    pthread_mutexattr_destroy(&a);
                }
    /* Held by another thread, with a waiter (lock word 2), then left locked
     * by a thread that is gone. */
    pthread_t th;
    pthread_mutex_init(&shared_m, NULL);
    pthread_create(&th, NULL, hold, NULL);
    pthread_join(th, NULL);
    ACCEPT(&shared_m, FSAFE_MUTEX);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    CHECK_EQ(pthread_mutex_timedlock(&shared_m, &ts), ETIMEDOUT);
    ACCEPT(&shared_m, FSAFE_MUTEX);
}

static void rwlock_kinds(void)
{
    ACCEPT(&rw_static, FSAFE_RWLOCK);
    ACCEPT(&rw_wp_static, FSAFE_RWLOCK);
    for (int kind = 0; kind < 3; kind++)
        for (int pshared = 0; pshared < 2; pshared++) {
            pthread_rwlockattr_t a;
            pthread_rwlock_t rw;
            pthread_rwlockattr_init(&a);
            pthread_rwlockattr_setkind_np(&a, kind);
            pthread_rwlockattr_setpshared(&a, pshared);
            pthread_rwlock_init(&rw, &a);
            ACCEPT(&rw, FSAFE_RWLOCK);
            pthread_rwlock_rdlock(&rw);
            pthread_rwlock_rdlock(&rw);
            ACCEPT(&rw, FSAFE_RWLOCK);
            pthread_rwlock_unlock(&rw);
            pthread_rwlock_unlock(&rw);
            pthread_rwlock_wrlock(&rw);
            ACCEPT(&rw, FSAFE_RWLOCK);
            pthread_rwlock_unlock(&rw);
            ACCEPT(&rw, FSAFE_RWLOCK);
            pthread_rwlock_destroy(&rw);
        }
}

static void spin_kinds(void)
{
    pthread_spinlock_t s;
    pthread_spin_init(&s, PTHREAD_PROCESS_PRIVATE);
    ACCEPT(&s, FSAFE_SPINLOCK);
    pthread_spin_lock(&s);
    ACCEPT(&s, FSAFE_SPINLOCK);
    pthread_spin_unlock(&s);
    static pthread_spinlock_t zero; /* a static spinlock nobody initialised */
    ACCEPT(&zero, FSAFE_SPINLOCK);
}

/* What FSAFE_LOCKS was given in the field: a C++ object whose first member is
 * a std::map (an empty red-black tree header points at itself). */
struct fake_map {
    long cmp_and_color;
    void *parent, *left, *right;
    size_t count;
};

static void not_locks(void)
{
    union {
        struct fake_map map;
        pthread_mutex_t m;
        pthread_rwlock_t rw;
        unsigned char bytes[64];
    } u;
    memset(&u, 0, sizeof u);
    u.map.left = u.map.right = &u.map.parent;
    REFUSE(&u.m, FSAFE_MUTEX);
    REFUSE(&u.rw, FSAFE_RWLOCK);
    /* A destroyed mutex, and single fields out of range. */
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_destroy(&m);
    REFUSE(&m, FSAFE_MUTEX);
    struct {
        int field, value;
    } bad_mutex[] = {{0, 3}, {0, 7}, {2, -5}, {4, 1 << 12}, {4, 32 | 64}, {1, 1}};
    for (size_t i = 0; i < sizeof bad_mutex / sizeof *bad_mutex; i++) {
        pthread_mutex_t b = PTHREAD_MUTEX_INITIALIZER;
        ((int *)&b)[bad_mutex[i].field] = bad_mutex[i].value;
        if (accepted(&b, sizeof b, FSAFE_MUTEX))
            FAIL("mutex with int %d = %d accepted", bad_mutex[i].field, bad_mutex[i].value);
    }
    pthread_mutex_t links = PTHREAD_MUTEX_INITIALIZER;
    links.__data.__list.__next = (void *)&links;
    REFUSE(&links, FSAFE_MUTEX);
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    rw.__data.__flags = 7;
    REFUSE(&rw, FSAFE_RWLOCK);
    rw = (pthread_rwlock_t)PTHREAD_RWLOCK_INITIALIZER;
    rw.__data.__shared = 2;
    REFUSE(&rw, FSAFE_RWLOCK);
    rw = (pthread_rwlock_t)PTHREAD_RWLOCK_INITIALIZER;
    rw.__data.__pad2 = 99;
    REFUSE(&rw, FSAFE_RWLOCK);
    int spin = 2;
    REFUSE(&spin, FSAFE_SPINLOCK);
    spin = -1;
    REFUSE(&spin, FSAFE_SPINLOCK);
    /* glibc's low-level lock: 0 free, 1 held, 2 held with waiters. */
    for (int v = 0; v <= 2; v++)
        ACCEPT(&v, FSAFE__SPEC_LLL);
    int lll = 3;
    REFUSE(&lll, FSAFE__SPEC_LLL);
    lll = -1;
    REFUSE(&lll, FSAFE__SPEC_LLL);
}

int main(void)
{
    mutex_kinds();
    rwlock_kinds();
    spin_kinds();
    not_locks();
    puts("lockcheck ok");
    return 0;
}
