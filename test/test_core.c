/* SPDX-License-Identifier: MIT */
/*
 * Core behaviours, one per case; CTest runs each case as its own process:
 *   test_core <case>
 * Every fork is waited for with a timeout and its exit status checked.
 */
#include "common.h"

#include <dlfcn.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pty.h>
#include <semaphore.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "fsafe.h"

/* Registered by a constructor in every run (see case_constructor). */
#ifdef PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP
static pthread_mutex_t ctor_m = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
#else
static pthread_mutex_t ctor_m; /* made errorcheck by register_early() */
#endif

/* Registered locks live to the end of the process, in static storage: fsafe
 * keeps its registry in mmap'd memory, which LeakSanitizer does not scan. */
static pthread_mutex_t mutex_pool[64];
static int mutex_pool_used;

static pthread_mutex_t *new_mutex(int type)
{
    CHECK(mutex_pool_used < 64);
    pthread_mutex_t *m = &mutex_pool[mutex_pool_used++];
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    CHECK(pthread_mutex_init(m, &a) == 0);
    return m;
}

/* Child helper: every mutex in the array can be taken within ms. */
static int child_take_all(pthread_mutex_t **m, int n, long ms)
{
    for (int i = 0; i < n; i++) {
        struct timespec ts;
        t_deadline(&ts, ms);
        if (pthread_mutex_timedlock(m[i], &ts) != 0)
            return T_CHILD_HUNG;
        if (pthread_mutex_unlock(m[i]) != 0)
            return 4;
    }
    return 0;
}

/* ---- rank order ------------------------------------------------------------ */
/* Ops locks that log the order in which fork takes them. */
static int order_log[64], order_n;
static int rank_acquire(void *k)
{
    order_log[order_n++] = (int)(intptr_t)k;
    return 0;
}
static int rank_try(void *k)
{
    return rank_acquire(k);
}
static void rank_release(void *k)
{
    (void)k;
}

static void case_rank_order(void)
{
    static const struct fsafe_lock_ops ops = {rank_acquire, rank_try, rank_release, rank_release};
    /* key i+1 registered with rank (9 - i/2): reverse of registration order,
     * with pairs of equal ranks that must keep registration order. */
    for (int i = 0; i < 10; i++)
        CHECK_EQ(fsafe_register_ops((void *)(intptr_t)(i + 1), &ops, 9 - i / 2, "rank"), 0);
    order_n = 0;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(0);
    CHECK_EQ(t_wait(pid, 10000), 0);
    static const int want[10] = {9, 10, 7, 8, 5, 6, 3, 4, 1, 2};
    CHECK_EQ(order_n, 10);
    for (int i = 0; i < 10; i++)
        if (order_log[i] != want[i])
            FAIL("position %d: key %d, expected %d", i, order_log[i], want[i]);
    printf("ok: 10 locks taken in rank order, equal ranks in registration order\n");
}

/* Threads lock 8 mutexes in rank order (registered in reverse) while main forks. */
#define RN 8
static pthread_mutex_t *rank_m[RN];
static int rank_stop; /* __atomic: read by the workers */
static void *rank_worker(void *arg)
{
    unsigned long rounds = 0;
    while (!__atomic_load_n(&rank_stop, __ATOMIC_ACQUIRE)) {
        for (int i = 0; i < RN; i++)
            pthread_mutex_lock(rank_m[i]);
        for (int i = RN - 1; i >= 0; i--)
            pthread_mutex_unlock(rank_m[i]);
        rounds++;
    }
    *(unsigned long *)arg = rounds;
    return NULL;
}

static void case_rank_no_deadlock(void)
{
    for (int i = 0; i < RN; i++)
        rank_m[i] = new_mutex(PTHREAD_MUTEX_NORMAL);
    for (int i = RN - 1; i >= 0; i--)
        CHECK_EQ(fsafe_register_lock(rank_m[i], FSAFE_MUTEX, i * 10, "ranked"), 0);
    pthread_t th[2];
    unsigned long rounds[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, rank_worker, &rounds[i]);
    for (int f = 0; f < 200; f++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(child_take_all(rank_m, RN, 2000));
        int st = t_wait(pid, 10000);
        if (st != 0)
            FAIL("fork %d: child status %d", f, st);
    }
    __atomic_store_n(&rank_stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK(rounds[0] > 0 && rounds[1] > 0);
    printf("ok: 200 forks against 2 threads locking in rank order (%lu + %lu rounds)\n",
           rounds[0], rounds[1]);
}

/* ---- a thread holds the lock at fork time ------------------------------------ */
static pthread_mutex_t *held_m;
static sem_t held_sem;
static void *hold_300ms(void *arg)
{
    (void)arg;
    pthread_mutex_lock(held_m);
    sem_post(&held_sem);
    t_sleep_ms(300);
    pthread_mutex_unlock(held_m);
    return NULL;
}

static pthread_t start_holder(void)
{
    pthread_t th;
    sem_init(&held_sem, 0, 0);
    CHECK(pthread_create(&th, NULL, hold_300ms, NULL) == 0);
    sem_wait(&held_sem);
    return th;
}

static void case_forkpty(void)
{
    held_m = new_mutex(PTHREAD_MUTEX_ERRORCHECK);
    CHECK_EQ(fsafe_register_lock(held_m, FSAFE_MUTEX, 1, "forkpty"), 0);
    pthread_t th = start_holder();
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(child_take_all(&held_m, 1, 2000));
    pthread_join(th, NULL);
    CHECK_EQ(t_wait(pid, 10000), 0);
    struct fsafe_stats s;
    fsafe_get_stats(&s, sizeof s);
    CHECK_EQ(s.forks, 1);
#if defined(__GLIBC__) && __GLIBC__ == 2 && __GLIBC_MINOR__ < 34
    /* libutil.so.1's forkpty calls fork through the PLT: fsafe's wrapper. */
    CHECK_EQ(s.forks_via_handler, 0);
#else
    CHECK_EQ(s.forks_via_handler, 1); /* reached fsafe only through pthread_atfork */
#endif
    printf("ok: forkpty() child got the lock\n");
}

static void case_daemon(void)
{
    held_m = new_mutex(PTHREAD_MUTEX_RECURSIVE);
    CHECK_EQ(fsafe_register_lock(held_m, FSAFE_MUTEX, 1, "daemon"), 0);
    int p[2];
    CHECK(pipe(p) == 0);
    /* daemon() exits the calling process, so run it in a single-threaded
     * helper child that first starts the holder thread. */
    pid_t helper = fork();
    CHECK(helper >= 0);
    if (helper == 0) {
        close(p[0]);
        start_holder();
        if (daemon(1, 1) != 0)
            _exit(9);
        /* The daemon: a grandchild whose parent held the lock in a thread. */
        char c = (char)('0' + child_take_all(&held_m, 1, 2000));
        ssize_t w = write(p[1], &c, 1);
        _exit(w == 1 ? 0 : 8);
    }
    close(p[1]);
    CHECK_EQ(t_wait(helper, 10000), 0);
    char c = 'x';
    struct timespec ts = {5, 0};
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(p[0], &fds);
    CHECK(pselect(p[0] + 1, &fds, NULL, NULL, &ts, NULL) == 1);
    CHECK(read(p[0], &c, 1) == 1);
    if (c != '0')
        FAIL("daemon child status %c", c);
    printf("ok: daemon() child got the lock\n");
}

/* ---- fork from a non-main thread ------------------------------------------- */
static void *fork_from_thread(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_take_all(&held_m, 1, 2000));
    return (void *)(intptr_t)t_wait(pid, 10000);
}

static void case_thread_fork(void)
{
    held_m = new_mutex(PTHREAD_MUTEX_NORMAL);
    CHECK_EQ(fsafe_register_lock(held_m, FSAFE_MUTEX, 1, "thread"), 0);
    pthread_t holder = start_holder();
    pthread_t forker;
    void *st;
    pthread_create(&forker, NULL, fork_from_thread, NULL);
    pthread_join(forker, &st);
    pthread_join(holder, NULL);
    CHECK_EQ((intptr_t)st, 0);
    printf("ok: fork from a non-main thread\n");
}

/* ---- the forking thread holds registered locks ----------------------------- */
static void case_self_held(void)
{
    pthread_mutex_t *n = new_mutex(PTHREAD_MUTEX_NORMAL);
    pthread_mutex_t *e = new_mutex(PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t *r = new_mutex(PTHREAD_MUTEX_RECURSIVE);
    static pthread_rwlock_t rwl;
    pthread_rwlock_t *w = &rwl;
    pthread_rwlock_init(w, NULL);
    /* glibc's trylock answers EDEADLK (not EBUSY) for these when the caller
     * owns them. */
    pthread_mutex_t *re = &mutex_pool[mutex_pool_used++], *pe = &mutex_pool[mutex_pool_used++];
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    CHECK(pthread_mutex_init(re, &a) == 0);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_STALLED);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    CHECK(pthread_mutex_init(pe, &a) == 0);
    CHECK_EQ(fsafe_register_lock(re, FSAFE_MUTEX, 5, "robust errorcheck"), 0);
    CHECK_EQ(fsafe_register_lock(pe, FSAFE_MUTEX, 6, "pi errorcheck"), 0);
#ifdef __GLIBC__
    /* musl records no owner in a NORMAL mutex or a write-held rwlock: fsafe
     * cannot tell the forker's own hold there, and the fork would wait for
     * it (README, musl).  There these two are held but not registered. */
    CHECK_EQ(fsafe_register_lock(n, FSAFE_MUTEX, 1, "normal"), 0);
    CHECK_EQ(fsafe_register_lock(w, FSAFE_RWLOCK, 4, "rwlock"), 0);
#endif
    CHECK_EQ(fsafe_register_lock(e, FSAFE_MUTEX, 2, "errorcheck"), 0);
    CHECK_EQ(fsafe_register_lock(r, FSAFE_MUTEX, 3, "recursive"), 0);
    /* Another thread exists, so glibc takes its multithreaded fork path. */
    held_m = new_mutex(PTHREAD_MUTEX_NORMAL);
    CHECK_EQ(fsafe_register_lock(held_m, FSAFE_MUTEX, 0, "other"), 0);
    pthread_t holder = start_holder();

    CHECK(pthread_mutex_lock(n) == 0);
    CHECK(pthread_mutex_lock(e) == 0);
    CHECK(pthread_mutex_lock(r) == 0);
    CHECK(pthread_mutex_lock(r) == 0); /* depth 2 */
    CHECK(pthread_rwlock_wrlock(w) == 0);
    CHECK(pthread_mutex_lock(re) == 0);
    CHECK(pthread_mutex_lock(pe) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* The child's thread still holds them all, and its unlocks work. */
        if (pthread_mutex_trylock(n) != EBUSY || pthread_mutex_trylock(e) != EBUSY)
            _exit(10);
        if (pthread_mutex_unlock(e) != 0)
            _exit(11); /* EPERM here would mean a stale owner id */
        if (pthread_mutex_unlock(n) != 0)
            _exit(12);
        if (pthread_mutex_unlock(r) != 0 || pthread_mutex_unlock(r) != 0)
            _exit(13);
        if (!T_TSAN && pthread_mutex_unlock(r) != EPERM)
            _exit(14); /* depth was exactly 2 */
        if (pthread_rwlock_unlock(w) != 0 || pthread_rwlock_trywrlock(w) != 0)
            _exit(15);
        if (pthread_mutex_unlock(re) != 0)
            _exit(16);
        if (pthread_mutex_unlock(pe) != 0)
            _exit(17);
        pthread_mutex_t *all[6] = {n, e, r, held_m, re, pe};
        _exit(child_take_all(all, 6, 2000));
    }
    /* The parent still holds them too. */
    CHECK_EQ(pthread_mutex_unlock(e), 0);
    CHECK_EQ(pthread_mutex_unlock(n), 0);
    CHECK_EQ(pthread_mutex_unlock(r), 0);
    CHECK_EQ(pthread_mutex_unlock(r), 0);
    if (!T_TSAN)
        CHECK_EQ(pthread_mutex_unlock(r), EPERM);
    CHECK_EQ(pthread_rwlock_unlock(w), 0);
    CHECK_EQ(pthread_rwlock_trywrlock(w), 0);
    CHECK_EQ(pthread_mutex_unlock(re), 0);
    CHECK_EQ(pthread_mutex_unlock(pe), 0);
    pthread_join(holder, NULL);
    int st = t_wait(pid, 10000);
    if (st != 0)
        FAIL("child status %d", st);
    printf("ok: fork while holding 6 registered locks; holds kept in parent and child\n");
}

/* ---- unregister, munmap, fork ------------------------------------------------ */
static void case_unregister_munmap(void)
{
    pthread_mutex_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    pthread_mutex_init(m, NULL);
    CHECK_EQ(fsafe_register_lock(m, FSAFE_MUTEX, 1, "mapped"), 0);
    CHECK_EQ(fsafe_unregister_lock(m), 0);
    CHECK_EQ(munmap(m, 4096), 0);
    held_m = new_mutex(PTHREAD_MUTEX_NORMAL);
    CHECK_EQ(fsafe_register_lock(held_m, FSAFE_MUTEX, 2, "other"), 0);
    pthread_t th = start_holder();
    pid_t pid = fork(); /* would fault if fsafe touched the unmapped lock */
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(child_take_all(&held_m, 1, 2000));
    pthread_join(th, NULL);
    CHECK_EQ(t_wait(pid, 10000), 0);
    CHECK_EQ(fsafe_unregister_lock(m), ENOENT);
    printf("ok: unregistered and unmapped lock is never touched\n");
}

/* ---- registration churn against hundreds of forks --------------------------- */
static int churn_stop; /* __atomic: read by the workers */
static void *reg_churn(void *arg)
{
    unsigned long n = 0;
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!__atomic_load_n(&churn_stop, __ATOMIC_ACQUIRE)) {
        /* Fresh memory each round, unmapped right after unregister: any
         * touch by fsafe after unregister returned would fault. */
        pthread_mutex_t *m =
            mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            abort();
        pthread_mutex_init(m, NULL);
        int rank = (int)(rand_r(&seed) % 7);
        if (fsafe_register_lock(m, FSAFE_MUTEX, rank, "churn") != 0)
            abort();
        pthread_mutex_lock(m);
        pthread_mutex_unlock(m);
        if (fsafe_unregister_lock(m) != 0)
            abort();
        munmap(m, 4096);
        n++;
    }
    return (void *)n;
}

static void case_register_churn(void)
{
    struct fsafe_stats s;
    fsafe_get_stats(&s, sizeof s);
    uint64_t before = s.locks_registered; /* the constructor case's lock */
    pthread_mutex_t *fixed[4];
    for (int i = 0; i < 4; i++) {
        fixed[i] = new_mutex(PTHREAD_MUTEX_ERRORCHECK);
        CHECK_EQ(fsafe_register_lock(fixed[i], FSAFE_MUTEX, i * 2, "fixed"), 0);
    }
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, reg_churn, (void *)(uintptr_t)(i + 1));
    for (int f = 0; f < 400; f++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            int r = child_take_all(fixed, 4, 2000);
            if (r)
                _exit(r);
            /* Registration still works in the child. */
            pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
            if (fsafe_register_lock(&m, FSAFE_MUTEX, 1, "child") != 0 ||
                fsafe_unregister_lock(&m) != 0)
                _exit(20);
            _exit(0);
        }
        int st = t_wait(pid, 10000);
        if (st != 0)
            FAIL("fork %d: child status %d", f, st);
    }
    __atomic_store_n(&churn_stop, 1, __ATOMIC_RELEASE);
    unsigned long total = 0;
    for (int i = 0; i < 3; i++) {
        void *n;
        pthread_join(th[i], &n);
        total += (unsigned long)n;
    }
    fsafe_get_stats(&s, sizeof s);
    CHECK_EQ(s.locks_registered, before + 4);
    CHECK(total > 0);
    printf("ok: 400 forks while 3 threads did %lu register/unregister rounds\n", total);
}

/* ---- bad input ----------------------------------------------------------------- */
static int dummy_acq(void *k)
{
    (void)k;
    return 0;
}
static void dummy_rel(void *k)
{
    (void)k;
}

static void case_bad_input(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    CHECK_EQ(fsafe_register_lock(NULL, FSAFE_MUTEX, 0, "x"), EINVAL);
    CHECK_EQ(fsafe_register_lock(&m, 0, 0, "x"), EINVAL);
    CHECK_EQ(fsafe_register_lock(&m, 4, 0, "x"), EINVAL);
    CHECK_EQ(fsafe_register_lock(&m, -1, 0, "x"), EINVAL);
    CHECK_EQ(fsafe_register_lock(&m, FSAFE_MUTEX | 0x400, 0, "x"), EINVAL);
    CHECK_EQ(fsafe_register_lock(&m, FSAFE_MUTEX | FSAFE_SHARED | FSAFE_PRIVATE, 0, "x"), EINVAL);
    CHECK_EQ(fsafe_unregister_lock(NULL), EINVAL);
    CHECK_EQ(fsafe_unregister_lock(&m), ENOENT);
    CHECK_EQ(fsafe_register_lock(&m, FSAFE_MUTEX, 0, NULL), 0); /* NULL name is fine */
    CHECK_EQ(fsafe_register_lock(&m, FSAFE_MUTEX, 0, "again"), EEXIST);
    CHECK_EQ(fsafe_register_lock(&m, FSAFE_RWLOCK, 0, "other kind"), EEXIST);
    struct fsafe_lock_ops ops = {dummy_acq, NULL, dummy_rel, dummy_rel};
    CHECK_EQ(fsafe_register_ops(&m, &ops, 0, "ops on a registered lock"), EEXIST);
    CHECK_EQ(fsafe_register_ops(NULL, &ops, 0, "x"), EINVAL);
    CHECK_EQ(fsafe_register_ops(&rw, NULL, 0, "x"), EINVAL);
    ops.acquire = NULL;
    CHECK_EQ(fsafe_register_ops(&rw, &ops, 0, "x"), EINVAL);
    ops.acquire = dummy_acq;
    ops.release_child = NULL;
    CHECK_EQ(fsafe_register_ops(&rw, &ops, 0, "x"), EINVAL);
    /* A long name is truncated, not overflowed. */
    char longname[500];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_EQ(fsafe_register_lock(&rw, FSAFE_RWLOCK, 0, longname), 0);
    CHECK_EQ(fsafe_unregister_lock(&m), 0);
    CHECK_EQ(fsafe_unregister_lock(&m), ENOENT);
    CHECK_EQ(fsafe_unregister_lock(&rw), 0);
    CHECK_EQ(fsafe_set_churn(-2), EINVAL);
    CHECK_EQ(fsafe_set_churn(1025), EINVAL);
    CHECK_EQ(fsafe_get_stats(NULL, 0), EINVAL);
    CHECK_EQ(fsafe_version(), FSAFE_VERSION);
    CHECK(strcmp(fsafe_version_string(), FSAFE_VERSION_STRING) == 0);
    /* Fork still works after all that, with nothing registered. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    CHECK_EQ(t_wait(pid, 10000), 0);
    printf("ok: bad input gives errors, never a crash\n");
}

/* ---- the real fork fails ---------------------------------------------------------- */
static struct t_tas failtas;
static int tas_acquire_count(void *k)
{
    int r = t_tas_try(k);
    if (r == 0)
        ((struct t_tas *)k)->acquired++;
    return r;
}
static int tas_acquire_block(void *k)
{
    while (tas_acquire_count(k))
        sched_yield();
    return 0;
}

/* Makes clone/clone3 without CLONE_THREAD fail with EAGAIN (thread creation
 * keeps working). */
static void deny_process_creation(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef SYS_fork
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fork, 0, 1), /* musl's fork() */
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
#endif
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS), /* glibc falls back to clone */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof *f, f};
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0 && errno == EINVAL) {
        /* No seccomp filters: a kernel without CONFIG_SECCOMP_FILTER, or
         * qemu-user, which refuses them to keep the syscalls it needs
         * (test/platforms/arm64.sh).  No other way to make fork fail. */
        printf("SKIP: cannot install a seccomp filter here (%s)\n", strerror(errno));
        fflush(stdout);
        _exit(T_SKIP);
    }
}

static void case_fork_fails(void)
{
    pthread_mutex_t *m = new_mutex(PTHREAD_MUTEX_ERRORCHECK);
    CHECK_EQ(fsafe_register_lock(m, FSAFE_MUTEX, 1, "m"), 0);
    struct fsafe_lock_ops ops = {tas_acquire_block, tas_acquire_count, t_tas_release_parent,
                                 t_tas_release_child};
    CHECK_EQ(fsafe_register_ops(&failtas, &ops, 2, "ops"), 0);
    held_m = m;
    pthread_t th = start_holder(); /* also makes the process multithreaded */
    deny_process_creation();
    errno = 0;
    pid_t pid = fork();
    int e = errno;
    if (pid == 0)
        _exit(0);
    CHECK_EQ(pid, -1);
    CHECK_EQ(e, EAGAIN);
    pthread_join(th, NULL);
    /* Everything fork took was released exactly once. */
    CHECK_EQ(failtas.acquired, 1);
    CHECK_EQ(failtas.released_parent, 1);
    CHECK_EQ(failtas.word, 0);
    CHECK_EQ(pthread_mutex_trylock(m), 0);
    CHECK_EQ(pthread_mutex_unlock(m), 0);
    printf("ok: failed fork keeps errno (EAGAIN) and releases every lock once\n");
    /* LeakSanitizer's exit-time check would need clone(), which the filter
     * now refuses. */
    _exit(0);
}

/* ---- registration inside another library's atfork handler ------------------------ */
static struct t_tas late_tas, pend_tas;
static int late_registered, late_unregistered;
static void other_prepare(void)
{
    /* Register a new lock while fork is under way: it was not taken by this
     * fork, so it must not be released by it either. */
    static const struct fsafe_lock_ops ops = {tas_acquire_block, tas_acquire_count,
                                              t_tas_release_parent, t_tas_release_child};
    if (!late_registered)
        late_registered = fsafe_register_ops(&late_tas, &ops, 5, "late") == 0;
    /* Unregister a lock this very fork holds (we are the forking thread). */
    if (!late_unregistered)
        late_unregistered = fsafe_unregister_lock(&pend_tas) == 0 ? 1 : -1;
}

static void case_atfork_register(void)
{
    static const struct fsafe_lock_ops ops = {tas_acquire_block, tas_acquire_count,
                                              t_tas_release_parent, t_tas_release_child};
    CHECK_EQ(fsafe_register_ops(&pend_tas, &ops, 1, "pending"), 0);
    CHECK_EQ(pthread_atfork(other_prepare, NULL, NULL), 0);
    held_m = new_mutex(PTHREAD_MUTEX_NORMAL);
    pthread_t th = start_holder();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(late_tas.released_child == 0 && pend_tas.released_child == 0 ? 0 : 7);
    pthread_join(th, NULL);
    CHECK_EQ(t_wait(pid, 10000), 0);
    CHECK_EQ(late_registered, 1);
    CHECK_EQ(late_unregistered, 1);
    CHECK_EQ(late_tas.acquired, 0);
    CHECK_EQ(late_tas.released_parent, 0);
    CHECK_EQ(pend_tas.acquired, 1);
    CHECK_EQ(pend_tas.released_parent, 1); /* released by the unregister, once */
    CHECK_EQ(pend_tas.word, 0);
    /* The next fork takes the late lock and not the unregistered one. */
    pid = fork();
    if (pid == 0)
        _exit(late_tas.released_child == 1 ? 0 : 8);
    CHECK_EQ(t_wait(pid, 10000), 0);
    CHECK_EQ(late_tas.acquired, 1);
    CHECK_EQ(late_tas.released_parent, 1);
    CHECK_EQ(pend_tas.acquired, 1);
    printf("ok: register and unregister from inside another atfork handler\n");
}

/* ---- registration from a constructor, before main ------------------------------- */
static int ctor_result = -1;
__attribute__((constructor)) static void register_early(void)
{
#ifndef PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP
    t_mutex_init_type(&ctor_m, PTHREAD_MUTEX_ERRORCHECK);
#endif
    ctor_result = fsafe_register_lock(&ctor_m, FSAFE_MUTEX, 1, "ctor");
}

static void case_constructor(void)
{
    CHECK_EQ(ctor_result, 0);
    held_m = &ctor_m;
    pthread_t th = start_holder();
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_take_all(&held_m, 1, 2000));
    pthread_join(th, NULL);
    CHECK_EQ(t_wait(pid, 10000), 0);
    printf("ok: lock registered in a constructor is taken by fork\n");
}


/* ---- review regressions ------------------------------------------------------ */
static void on_alarm_deadlock(int sig)
{
    (void)sig;
    t_say("FAIL: deadlock (alarm fired)\n");
    _exit(1);
}

/* An unregister waiting for the forker must not hold the registry's writer
 * lock: the forker's own path (another library's prepare handler) may
 * register. */
static pthread_mutex_t ur_L = PTHREAD_MUTEX_INITIALIZER, ur_X = PTHREAD_MUTEX_INITIALIZER;
static sem_t ur_go;
static int ur_reg = -1, ur_unreg = -1;
static void ur_prepare(void)
{
    sem_post(&ur_go);
    t_sleep_ms(100); /* the other thread is now waiting in unregister */
    ur_reg = fsafe_register_lock(&ur_X, FSAFE_MUTEX, 9, "registered in atfork");
}
static void *ur_thread(void *arg)
{
    (void)arg;
    sem_wait(&ur_go);
    ur_unreg = fsafe_unregister_lock(&ur_L); /* L is held by the fork */
    return NULL;
}
static void case_unregister_vs_atfork_register(void)
{
    signal(SIGALRM, on_alarm_deadlock);
    sem_init(&ur_go, 0, 0);
    CHECK_EQ(fsafe_register_lock(&ur_L, FSAFE_MUTEX, 1, "L"), 0);
    CHECK_EQ(pthread_atfork(ur_prepare, NULL, NULL), 0);
    pthread_t t;
    pthread_create(&t, NULL, ur_thread, NULL);
    alarm(10);
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    CHECK_EQ(t_wait(pid, 10000), 0);
    pthread_join(t, NULL);
    alarm(0);
    CHECK_EQ(ur_reg, 0);
    CHECK_EQ(ur_unreg, 0);
    CHECK_EQ(pthread_mutex_trylock(&ur_L), 0); /* released exactly once, and unregistered */
    CHECK_EQ(fsafe_unregister_lock(&ur_L), ENOENT);
    printf("ok: unregister waiting on the fork lets the fork's atfork handler register\n");
}

/* Two threads fork at once; one holds a registered lock the other's fork
 * needs.  Without fsafe both forks complete; with it they must too. */
static pthread_mutex_t cf_L = PTHREAD_MUTEX_INITIALIZER;
static sem_t cf_holds;
static void *cf_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cf_L);
    sem_post(&cf_holds);
    t_sleep_ms(100); /* main is now inside fork, waiting for L */
    pid_t p = fork();
    if (p == 0) {
        /* The child keeps this thread's hold and can release it. */
        _exit(pthread_mutex_unlock(&cf_L) == 0 ? 0 : 5);
    }
    int st = t_wait(p, 10000);
    pthread_mutex_unlock(&cf_L);
    return (void *)(intptr_t)st;
}
static void case_concurrent_forks_holder(void)
{
    signal(SIGALRM, on_alarm_deadlock);
    sem_init(&cf_holds, 0, 0);
#ifndef __GLIBC__
    /* B forks holding L: fsafe sees that only where the mutex records its
     * owner, which musl's NORMAL mutexes do not (README, musl). */
    t_mutex_init_type(&cf_L, PTHREAD_MUTEX_ERRORCHECK);
#endif
    CHECK_EQ(fsafe_register_lock(&cf_L, FSAFE_MUTEX, 1, "L"), 0);
    pthread_t b;
    pthread_create(&b, NULL, cf_thread, NULL);
    sem_wait(&cf_holds);
    alarm(10);
    pid_t p = fork();
    if (p == 0)
        _exit(child_take_all((pthread_mutex_t *[]){&cf_L}, 1, 2000));
    CHECK_EQ(t_wait(p, 10000), 0);
    void *st;
    pthread_join(b, &st);
    alarm(0);
    CHECK_EQ((intptr_t)st, 0);
    printf("ok: concurrent forks, one from the holder of a registered lock\n");
}

/* A child of a fork that bypassed the gate (nothing registered) while another
 * thread was inside the protocol must not inherit that thread's gate. */
static int sg_key;
static int sg_acq_fail(void *k)
{
    (void)k;
    return EAGAIN; /* not taken */
}
static void sg_rel(void *k)
{
    (void)k;
}
static pthread_t sg_a;
static sem_t sg_a_in_fork, sg_c_done;
static void sg_prepare(void)
{
    if (pthread_equal(pthread_self(), sg_a)) {
        sem_post(&sg_a_in_fork);
        sem_wait(&sg_c_done); /* A stays inside its fork until C has forked */
    }
}
static void *sg_thread(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    return (void *)(intptr_t)t_wait(pid, 10000);
}
static void case_stale_gate(void)
{
    static const struct fsafe_lock_ops ops = {sg_acq_fail, NULL, sg_rel, sg_rel};
#if !defined(__GLIBC__) || __GLIBC__ == 2 && __GLIBC_MINOR__ < 36
    /* musl holds its atfork lock while the prepare handlers run, and so do
     * glibc 2.28 to at least 2.31 (the atfork list became a dynarray under
     * one lock; measured: a 120 s timeout on Debian 11's 2.31, a pass on
     * Debian 12's 2.36), so C's fork would wait for A's handler, which
     * waits for C's fork. */
    printf("SKIP: this libc serialises forks through its atfork handlers\n");
    exit(T_SKIP);
#endif
    CHECK_EQ(fsafe_unregister_lock(&ctor_m), 0); /* the constructor case's lock */
    sem_init(&sg_a_in_fork, 0, 0);
    sem_init(&sg_c_done, 0, 0);
    CHECK_EQ(fsafe_register_ops(&sg_key, &ops, 1, "k"), 0);
    CHECK_EQ(pthread_atfork(sg_prepare, NULL, NULL), 0);
    pthread_create(&sg_a, NULL, sg_thread, NULL);
    sem_wait(&sg_a_in_fork);                    /* A holds fsafe's gate */
    CHECK_EQ(fsafe_unregister_lock(&sg_key), 0); /* nothing registered now */
    pid_t c = fork();                           /* the fast path */
    if (c == 0) {
        static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
        if (fsafe_register_lock(&m, FSAFE_MUTEX, 1, "child-lock") != 0)
            _exit(6);
        pid_t g = fork(); /* would wait for A's gate forever */
        if (g == 0)
            _exit(0);
        _exit(t_wait(g, 3000));
    }
    sem_post(&sg_c_done);
    void *st;
    pthread_join(sg_a, &st);
    CHECK_EQ((intptr_t)st, 0);
    CHECK_EQ(t_wait(c, 10000), 0);
    printf("ok: the child of a fast-path fork does not inherit another thread's gate\n");
}

static const struct t_case cases[] = {
    {"rank_order", case_rank_order},
    {"rank_no_deadlock", case_rank_no_deadlock},
    {"forkpty", case_forkpty},
    {"daemon", case_daemon},
    {"thread_fork", case_thread_fork},
    {"self_held", case_self_held},
    {"unregister_munmap", case_unregister_munmap},
    {"register_churn", case_register_churn},
    {"bad_input", case_bad_input},
    {"fork_fails", case_fork_fails},
    {"atfork_register", case_atfork_register},
    {"constructor", case_constructor},
    {"unregister_vs_atfork_register", case_unregister_vs_atfork_register},
    {"concurrent_forks_holder", case_concurrent_forks_holder},
    {"stale_gate", case_stale_gate},
};

int main(int argc, char **argv)
{
    return T_RUN_CASES(cases, argc, argv);
}
