/* SPDX-License-Identifier: MIT */
/*
 * One lock of one kind, held by another thread at the moment of fork and
 * released by it 300 ms later.  With fsafe the child can then lock and unlock
 * it again and again; without fsafe (expect "hang") the child times out on it.
 *
 *   test_kinds <variant> ok|hang
 *
 * Built twice: linked with -lfsafe, and with FSAFE_OPTIONAL and no link (run
 * plainly it shows the hang; under LD_PRELOAD it registers and passes).
 */
#include "common.h"

#include <semaphore.h>
#include <sys/mman.h>

#include "fsafe.h"

#define REPS 200
#define CHILD_LOCK_MS 1000

enum lk { LK_MUTEX, LK_RWLOCK, LK_SPIN, LK_OPS };

/* A priority-inheritance mutex of a thread that is gone: glibc aborts on the
 * futex's stale owner (ESRCH); musl's child waits on it like any other. */
#ifdef __GLIBC__
#define PI_WITHOUT (128 + SIGABRT)
#else
#define PI_WITHOUT T_CHILD_HUNG
#endif

static struct {
    const char *name;
    enum lk lk;
    int type;   /* mutex type, or rwlock kind */
    int robust, protocol, pshared;
    int without; /* the child's status without fsafe: T_CHILD_HUNG, or 128+signal; 0 = none */
} const variants[] = {
    {"normal", LK_MUTEX, PTHREAD_MUTEX_NORMAL, 0, PTHREAD_PRIO_NONE, 0, T_CHILD_HUNG},
    {"errorcheck", LK_MUTEX, PTHREAD_MUTEX_ERRORCHECK, 0, PTHREAD_PRIO_NONE, 0, T_CHILD_HUNG},
    {"recursive", LK_MUTEX, PTHREAD_MUTEX_RECURSIVE, 0, PTHREAD_PRIO_NONE, 0, T_CHILD_HUNG},
    {"adaptive", LK_MUTEX, PTHREAD_MUTEX_ADAPTIVE_NP, 0, PTHREAD_PRIO_NONE, 0, T_CHILD_HUNG},
    {"robust", LK_MUTEX, PTHREAD_MUTEX_NORMAL, 1, PTHREAD_PRIO_NONE, 0, T_CHILD_HUNG},
    {"robust-errorcheck", LK_MUTEX, PTHREAD_MUTEX_ERRORCHECK, 1, PTHREAD_PRIO_NONE, 0, T_CHILD_HUNG},
    {"pi", LK_MUTEX, PTHREAD_MUTEX_NORMAL, 0, PTHREAD_PRIO_INHERIT, 0, PI_WITHOUT},
    {"pi-recursive", LK_MUTEX, PTHREAD_MUTEX_RECURSIVE, 0, PTHREAD_PRIO_INHERIT, 0, PI_WITHOUT},
    {"pp", LK_MUTEX, PTHREAD_MUTEX_NORMAL, 0, PTHREAD_PRIO_PROTECT, 0, T_CHILD_HUNG},
    {"pshared", LK_MUTEX, PTHREAD_MUTEX_NORMAL, 0, PTHREAD_PRIO_NONE, 1, 0},
    {"pshared-robust", LK_MUTEX, PTHREAD_MUTEX_ERRORCHECK, 1, PTHREAD_PRIO_NONE, 1, 0},
    {"rwlock", LK_RWLOCK, PTHREAD_RWLOCK_PREFER_READER_NP, 0, 0, 0, T_CHILD_HUNG},
    {"rwlock-writer", LK_RWLOCK, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP, 0, 0, 0, T_CHILD_HUNG},
    {"rwlock-pshared", LK_RWLOCK, PTHREAD_RWLOCK_PREFER_READER_NP, 0, 0, 1, 0},
    {"spin", LK_SPIN, 0, 0, 0, 0, T_CHILD_HUNG},
    {"spin-pshared", LK_SPIN, 0, 0, 0, 1, 0},
    {"ops", LK_OPS, 0, 0, 0, 0, T_CHILD_HUNG},
};

static int V;
static int expect_ok;
static void *lockp;
static sem_t held;

/* ---- generic lock operations on the variant ----------------------------- */
static int lk_timed(long ms)
{
    struct timespec ts;
    switch (variants[V].lk) {
    case LK_MUTEX:
        t_deadline(&ts, ms);
        return pthread_mutex_timedlock(lockp, &ts);
    case LK_RWLOCK:
        t_deadline(&ts, ms);
        return pthread_rwlock_timedwrlock(lockp, &ts);
    case LK_SPIN:
    case LK_OPS:
        for (long i = 0; i < ms * 10; i++) {
            int r = variants[V].lk == LK_SPIN ? pthread_spin_trylock(lockp) : t_tas_try(lockp);
            if (r == 0)
                return 0;
            struct timespec s = {0, 100000};
            nanosleep(&s, NULL);
        }
        return ETIMEDOUT;
    }
    return EINVAL;
}

static int lk_try(void)
{
    switch (variants[V].lk) {
    case LK_MUTEX:
        return pthread_mutex_trylock(lockp);
    case LK_RWLOCK:
        return pthread_rwlock_trywrlock(lockp);
    case LK_SPIN:
        return pthread_spin_trylock(lockp);
    case LK_OPS:
        return t_tas_try(lockp);
    }
    return EINVAL;
}

static int lk_unlock(void)
{
    switch (variants[V].lk) {
    case LK_MUTEX:
        return pthread_mutex_unlock(lockp);
    case LK_RWLOCK:
        return pthread_rwlock_unlock(lockp);
    case LK_SPIN:
        return pthread_spin_unlock(lockp);
    case LK_OPS:
        t_tas_unlock(lockp);
        return 0;
    }
    return EINVAL;
}

/* Reader side of an rwlock must work too. */
static int lk_read_cycle(void)
{
    if (variants[V].lk != LK_RWLOCK)
        return 0;
    int r = pthread_rwlock_tryrdlock(lockp);
    if (r)
        return r;
    return pthread_rwlock_unlock(lockp);
}

static void *lk_create(void)
{
    int sh = variants[V].pshared;
    void *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                     (sh ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED);
    int psh = sh ? PTHREAD_PROCESS_SHARED : PTHREAD_PROCESS_PRIVATE;
    switch (variants[V].lk) {
    case LK_MUTEX: {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, variants[V].type);
        if (variants[V].robust)
            CHECK(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) == 0);
        int r = pthread_mutexattr_setprotocol(&a, variants[V].protocol);
        if (r == ENOTSUP) { /* musl has no priority-protect mutexes */
            printf("SKIP: this libc has no %s mutexes (%s)\n", variants[V].name, strerror(r));
            exit(T_SKIP);
        }
        CHECK(r == 0);
#ifdef __GLIBC__ /* musl declares it but does not define it */
        if (variants[V].protocol == PTHREAD_PRIO_PROTECT)
            CHECK(pthread_mutexattr_setprioceiling(&a, sched_get_priority_min(SCHED_FIFO)) == 0);
#endif
        CHECK(pthread_mutexattr_setpshared(&a, psh) == 0);
        CHECK(pthread_mutex_init(mem, &a) == 0);
        break;
    }
    case LK_RWLOCK: {
        pthread_rwlockattr_t a;
        pthread_rwlockattr_init(&a);
        pthread_rwlockattr_setkind_np(&a, variants[V].type);
        CHECK(pthread_rwlockattr_setpshared(&a, psh) == 0);
        CHECK(pthread_rwlock_init(mem, &a) == 0);
        break;
    }
    case LK_SPIN:
        CHECK(pthread_spin_init(mem, psh) == 0);
        break;
    case LK_OPS:
        break; /* zeroed t_tas */
    }
    return mem;
}

static int lk_register(void)
{
    if (variants[V].lk == LK_OPS) {
        static const struct fsafe_lock_ops ops = {t_tas_acquire, t_tas_try, t_tas_release_parent,
                                                  t_tas_release_child};
        return fsafe_opt_register_ops(lockp, &ops, 10, variants[V].name);
    }
    int kind = variants[V].lk == LK_MUTEX ? FSAFE_MUTEX
               : variants[V].lk == LK_RWLOCK ? FSAFE_RWLOCK
                                             : FSAFE_SPINLOCK;
    return fsafe_opt_register_lock(lockp, kind, 10, variants[V].name);
}

/* ---- the scenario ---------------------------------------------------------- */
static void *holder(void *arg)
{
    (void)arg;
    CHECK(lk_timed(5000) == 0);
    sem_post(&held);
    t_sleep_ms(300);
    CHECK(lk_unlock() == 0);
    return NULL;
}

/* Child: lock, trylock (must be busy for non-recursive), unlock, many times. */
static int child_main(void)
{
    if (expect_ok && variants[V].lk == LK_OPS && ((struct t_tas *)lockp)->released_child != 1) {
        t_say("child: release_child was not called exactly once\n");
        return 8;
    }
    for (int i = 0; i < REPS; i++) {
        int r = lk_timed(CHILD_LOCK_MS);
        if (r == ETIMEDOUT) {
            t_say("child: timed out on the lock\n");
            return T_CHILD_HUNG;
        }
        if (r != 0) {
            t_say("child: lock failed\n");
            return 4;
        }
        int recursive = variants[V].lk == LK_MUTEX && variants[V].type == PTHREAD_MUTEX_RECURSIVE;
        r = lk_try();
        if (recursive ? r != 0 : r == 0) {
            t_say("child: trylock on a held lock gave the wrong answer\n");
            return 5;
        }
        if (recursive && lk_unlock() != 0)
            return 6;
        if (lk_unlock() != 0) {
            t_say("child: unlock failed\n");
            return 6;
        }
        if (lk_read_cycle() != 0) {
            t_say("child: read lock failed\n");
            return 7;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[2], "ok") && strcmp(argv[2], "hang")))
        FAIL("usage: %s <variant> ok|hang", argv[0]);
    V = -1;
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++)
        if (strcmp(argv[1], variants[i].name) == 0)
            V = (int)i;
    if (V < 0)
        FAIL("unknown variant %s", argv[1]);
    expect_ok = strcmp(argv[2], "ok") == 0;
#ifndef __GLIBC__
    /* common.h maps these to plain kinds; test/core.cmake configures them on
     * glibc only. */
    if (strcmp(variants[V].name, "adaptive") == 0 ||
        strcmp(variants[V].name, "rwlock-writer") == 0) {
        printf("SKIP: %s is a glibc lock kind\n", variants[V].name);
        return T_SKIP;
    }
#endif

    lockp = lk_create();
    if (variants[V].protocol == PTHREAD_PRIO_PROTECT) {
        int r = pthread_mutex_lock(lockp);
        if (r != 0) {
            printf("SKIP: cannot lock a priority-protect mutex here (%s)\n", strerror(r));
            return T_SKIP;
        }
        pthread_mutex_unlock(lockp);
    }
    int r = lk_register();
    if (expect_ok)
        CHECK_EQ(r, 0);
    else
        CHECK(r == ENOSYS); /* built optional and run without fsafe */

    sem_init(&held, 0, 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, holder, NULL) == 0);
    sem_wait(&held);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(child_main());
    pthread_join(th, NULL);
    /* The parent's lock still works. */
    CHECK_EQ(lk_timed(2000), 0);
    CHECK_EQ(lk_unlock(), 0);
    int st = t_wait(pid, 20000);
    if (expect_ok) {
        if (st != 0)
            FAIL("variant %s: child exit status %d, expected 0", variants[V].name, st);
        if (variants[V].lk == LK_OPS) {
            struct t_tas *t = lockp;
            CHECK_EQ(t->released_parent, 1);
            CHECK_EQ(t->released_child, 0); /* counted in the child's copy */
        }
    } else {
        /* Without fsafe the child hangs on the lock; a priority-inheritance
         * mutex is worse with glibc (PI_WITHOUT). */
        if (!variants[V].without)
            FAIL("variant %s cannot show a failure without fsafe", variants[V].name);
        if (st != variants[V].without)
            FAIL("variant %s without fsafe: child status %d, expected %d", variants[V].name, st,
                 variants[V].without);
    }
    if (expect_ok)
        CHECK_EQ(fsafe_opt_unregister_lock(lockp), 0);
    printf("ok %s (%s)\n", variants[V].name, argv[2]);
    return 0;
}
