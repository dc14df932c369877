/* SPDX-License-Identifier: MIT */
/*
 * Forks of a process that has never had a second thread (glibc's
 * __libc_single_threaded): fsafe's walk takes only what the forker holds
 * itself and ops locks, leaves free mutexes untouched, and never waits for a
 * lock that no other thread can let go of; when every registered lock is a
 * free mutex, the fork skips the protocol.  No case creates a thread before
 * its fork, except thread_from_ops, which is about exactly that.
 */
#include "common.h"

#include <dlfcn.h>
#if defined(__has_include) && __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h> /* glibc 2.32 */
#define HAVE_SINGLE_THREADED 1
#endif

#include "fsafe.h"

static void need_one_thread(void)
{
#ifdef HAVE_SINGLE_THREADED
    if (!__libc_single_threaded)
        FAIL("the process is not single-threaded at the start of the case");
#endif
}

static struct fsafe_stats stats_now(void)
{
    struct fsafe_stats s;
    CHECK_EQ(fsafe_get_stats(&s, sizeof s), 0);
    return s;
}

/* libc's own fork(), which bypasses fsafe's wrapper: fsafe sees it only
 * through its pthread_atfork handlers, as it sees daemon() and forkpty(). */
static pid_t libc_fork(void)
{
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    pid_t (*f)(void) = libc ? (pid_t(*)(void))dlsym(libc, "fork") : NULL;
    if (!f)
        FAIL("libc's fork not found: %s", dlerror());
    return f();
}

/* ---- free mutexes are left alone, and usable in both processes -------------- */
#define NFREE 64
static void case_free_untouched(void)
{
    need_one_thread();
    static pthread_mutex_t m[NFREE];
    static const int types[] = {PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_ERRORCHECK,
                                PTHREAD_MUTEX_RECURSIVE, PTHREAD_MUTEX_ADAPTIVE_NP};
    for (int i = 0; i < NFREE; i++) {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, types[i % 4]);
        CHECK_EQ(pthread_mutex_init(&m[i], &a), 0);
        pthread_mutexattr_destroy(&a);
        CHECK_EQ(fsafe_register_lock(&m[i], FSAFE_MUTEX, i % 3, "free"), 0);
    }
    struct fsafe_stats before = stats_now();
    for (int round = 0; round < 4; round++) {
        pid_t pid = round < 3 ? fork() : libc_fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            for (int i = 0; i < NFREE; i++)
                if (pthread_mutex_trylock(&m[i]) != 0 || pthread_mutex_unlock(&m[i]) != 0)
                    _exit(10);
            _exit(0);
        }
        CHECK_EQ(t_wait(pid, 10000), 0);
    }
    /* A full walk would have taken all 64, four times.  (From the second
     * fork on, no walk runs at all: nothing to take, nothing to reset; each
     * fork is counted once, the last one as one through the handler.) */
    struct fsafe_stats after = stats_now();
    CHECK_EQ(after.locks_acquired - before.locks_acquired, 0);
    CHECK_EQ(after.forks - before.forks, 4);
    CHECK_EQ(after.forks_via_handler - before.forks_via_handler, 1);
    for (int i = 0; i < NFREE; i++) {
        CHECK_EQ(pthread_mutex_trylock(&m[i]), 0);
        CHECK_EQ(pthread_mutex_unlock(&m[i]), 0);
    }
    printf("ok: one thread: 4 forks took none of %d free mutexes; all usable on both sides\n",
           NFREE);
}

/* ---- the forker's own holds ------------------------------------------------ */
/*
 * Before one-thread walks, a read hold or a spinlock of the forker itself
 * made the fork wait forever (nothing else can let go of them).  Each hold
 * is the forker's in the child too: an errorcheck mutex and a write-locked
 * rwlock are owned by the child's thread, a recursive mutex keeps its depth.
 */
static void case_self_held(void)
{
    need_one_thread();
    static pthread_mutex_t normal = PTHREAD_MUTEX_INITIALIZER;
#ifdef PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP
    static pthread_mutex_t check = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    static pthread_mutex_t rec = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
#else
    static pthread_mutex_t check, rec;
    t_mutex_init_type(&check, PTHREAD_MUTEX_ERRORCHECK);
    t_mutex_init_type(&rec, PTHREAD_MUTEX_RECURSIVE);
#endif
    static pthread_rwlock_t wr = PTHREAD_RWLOCK_INITIALIZER, rd = PTHREAD_RWLOCK_INITIALIZER;
    static pthread_spinlock_t spin;
    CHECK_EQ(pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE), 0);
    CHECK_EQ(fsafe_register_lock(&normal, FSAFE_MUTEX, 1, "normal"), 0);
    CHECK_EQ(fsafe_register_lock(&check, FSAFE_MUTEX, 2, "check"), 0);
    CHECK_EQ(fsafe_register_lock(&rec, FSAFE_MUTEX, 3, "rec"), 0);
    CHECK_EQ(fsafe_register_lock(&wr, FSAFE_RWLOCK, 4, "wr"), 0);
    CHECK_EQ(fsafe_register_lock(&rd, FSAFE_RWLOCK, 5, "rd"), 0);
    CHECK_EQ(fsafe_register_lock((void *)&spin, FSAFE_SPINLOCK, 6, "spin"), 0);
    CHECK_EQ(pthread_mutex_lock(&normal), 0);
    CHECK_EQ(pthread_mutex_lock(&check), 0);
    CHECK_EQ(pthread_mutex_lock(&rec), 0);
    CHECK_EQ(pthread_mutex_lock(&rec), 0);
    CHECK_EQ(pthread_rwlock_wrlock(&wr), 0);
    CHECK_EQ(pthread_rwlock_rdlock(&rd), 0);
    CHECK_EQ(pthread_spin_lock(&spin), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (pthread_mutex_trylock(&normal) == 0)
            _exit(10); /* should still be held */
        if (pthread_mutex_unlock(&check) != 0)
            _exit(11); /* EPERM: not owned by this thread */
        if (pthread_mutex_unlock(&rec) != 0 || pthread_mutex_unlock(&rec) != 0)
            _exit(12);
        if (!T_TSAN && pthread_mutex_unlock(&rec) != EPERM)
            _exit(13); /* the depth was not 2 (TSan reports the probe itself) */
        if (pthread_rwlock_unlock(&wr) != 0 || pthread_rwlock_trywrlock(&wr) != 0)
            _exit(14);
        if (pthread_rwlock_trywrlock(&rd) == 0)
            _exit(15); /* the read hold is gone */
        if (pthread_rwlock_unlock(&rd) != 0 || pthread_rwlock_trywrlock(&rd) != 0)
            _exit(16);
        if (pthread_spin_trylock(&spin) == 0)
            _exit(17);
        if (pthread_mutex_unlock(&normal) != 0 || pthread_mutex_trylock(&normal) != 0)
            _exit(18);
        _exit(0);
    }
    CHECK_EQ(t_wait(pid, 10000), 0);
    /* The parent's holds are its own, as before the fork. */
    CHECK_EQ(pthread_mutex_unlock(&check), 0);
    CHECK_EQ(pthread_mutex_unlock(&rec), 0);
    CHECK_EQ(pthread_mutex_unlock(&rec), 0);
    if (!T_TSAN)
        CHECK_EQ(pthread_mutex_unlock(&rec), EPERM);
    CHECK_EQ(pthread_rwlock_unlock(&wr), 0);
    CHECK_EQ(pthread_rwlock_unlock(&rd), 0);
    CHECK_EQ(pthread_spin_unlock(&spin), 0);
    CHECK_EQ(pthread_mutex_unlock(&normal), 0);
    printf("ok: one thread: the forker's own holds, read and spin included, carry into the "
           "child without a wait\n");
}

/* ---- ops locks are still called -------------------------------------------------- */
static void case_ops_called(void)
{
    need_one_thread();
    static struct t_tas tas;
    static const struct fsafe_lock_ops ops = {t_tas_acquire, NULL, t_tas_release_parent,
                                              t_tas_release_child};
    CHECK_EQ(fsafe_register_ops(&tas, &ops, 0, "tas"), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(tas.released_child == 1 && tas.word == 0 ? 0 : 10);
    CHECK_EQ(t_wait(pid, 10000), 0);
    CHECK_EQ(tas.acquired, 1);
    CHECK_EQ(tas.released_parent, 1);
    CHECK_EQ(tas.word, 0);
    printf("ok: one thread: an ops lock is acquired and released once per fork\n");
}

/* ---- a thread started during the walk ----------------------------------------- */
/*
 * An ops callback (rank 0) starts a thread that takes a registered mutex
 * (rank 1) and holds it for 200 ms.  The walk began single-threaded; it must
 * notice and walk again in full, waiting for the mutex, so that the child
 * gets it unlocked.  A walk that trusted its first look would leave it held
 * by a thread the child does not have.
 */
static pthread_mutex_t late = PTHREAD_MUTEX_INITIALIZER;
static pthread_t late_thread;
static int late_started; /* the forking thread's only */
static int late_held;    /* __atomic: set by late_holder */

static void *late_holder(void *arg)
{
    pthread_mutex_lock(&late);
    __atomic_store_n(&late_held, 1, __ATOMIC_RELEASE);
    t_sleep_ms(200);
    pthread_mutex_unlock(&late);
    return arg;
}

static int starter_acquire(void *k)
{
    (void)k;
    if (!late_started) {
        late_started = 1;
        if (pthread_create(&late_thread, NULL, late_holder, NULL) != 0)
            return EAGAIN;
        while (!__atomic_load_n(&late_held, __ATOMIC_ACQUIRE))
            sched_yield();
    }
    return 0;
}
static void starter_release(void *k)
{
    (void)k;
}

static void case_thread_from_ops(void)
{
    need_one_thread();
    static const struct fsafe_lock_ops ops = {starter_acquire, NULL, starter_release,
                                              starter_release};
    static int key;
    CHECK_EQ(fsafe_register_ops(&key, &ops, 0, "starter"), 0);
    CHECK_EQ(fsafe_register_lock(&late, FSAFE_MUTEX, 1, "late"), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(pthread_mutex_trylock(&late) == 0 ? 0 : T_CHILD_HUNG);
    CHECK_EQ(t_wait(pid, 10000), 0);
    CHECK(late_started);
    CHECK_EQ(pthread_join(late_thread, NULL), 0);
    printf("ok: a thread started by an ops callback during a one-thread walk: the walk starts "
           "again in full and the child gets the mutex unlocked\n");
}

static const struct t_case cases[] = {
    {"free_untouched", case_free_untouched},
    {"self_held", case_self_held},
    {"ops_called", case_ops_called},
    {"thread_from_ops", case_thread_from_ops},
};

int main(int argc, char **argv)
{
#ifdef HAVE_SINGLE_THREADED
    return T_RUN_CASES(cases, argc, argv);
#else
    (void)cases;
    (void)argc;
    (void)argv;
    printf("SKIP: this libc has no __libc_single_threaded (glibc 2.32): fsafe has no one-thread fast path here\n");
    return T_SKIP;
#endif
}
