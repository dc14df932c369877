/* SPDX-License-Identifier: MIT */
/*
 * Misuse (README, "misuse"): each case gives fsafe bad input or a bad moment
 * and checks the defined outcome, an error code or one clear message, and
 * that the program goes on working.  CTest runs each case as its own process:
 *   test_misuse <case>
 * Every fork is waited for with a timeout; child code is async-signal-safe.
 */
#include "common.h"

#include <sys/mman.h>
#include <sys/uio.h>

#include "fsafe.h"

static uint64_t stat_forks(void)
{
    struct fsafe_stats s;
    CHECK_EQ(fsafe_get_stats(&s, sizeof s), 0);
    return s.forks;
}

/* A thread that exists, so that glibc takes its multithreaded fork path. */
static void *idle(void *arg)
{
    (void)arg;
    pause();
    return NULL;
}
static void start_idle(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, idle, NULL) == 0);
}

static void fork_ok(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(0);
    CHECK_EQ(t_wait(pid, 10000), 0);
}

/* ---- bogus pointers ------------------------------------------------------------ */
static const int kinds[] = {FSAFE_MUTEX, FSAFE_RWLOCK, FSAFE_SPINLOCK};

static void case_bogus_misaligned(void)
{
    static pthread_mutex_t m[2];
    for (int k = 0; k < 3; k++)
        for (int off = 1; off < 4; off++) {
            void *p = (char *)&m[0] + off;
            CHECK_EQ(fsafe_register_lock(p, kinds[k], 0, "misaligned"), EINVAL);
            CHECK_EQ(fsafe_register_lock(p, kinds[k] | FSAFE_PRIVATE, 0, "misaligned"), EINVAL);
        }
    start_idle();
    fork_ok();
    printf("ok: misaligned lock pointers are refused with EINVAL\n");
}

static void case_bogus_unmapped(void)
{
    /* fsafe reads the lock's memory with process_vm_readv on itself to tell
     * an unmapped pointer; where that call is refused (a seccomp profile
     * without ptrace rights, qemu-user: ENOSYS) it checks the alignment only
     * (src/registry.c), and this case has nothing to show. */
    char probe_src = 1, probe_dst = 0;
    struct iovec pl = {&probe_dst, 1}, pr = {&probe_src, 1};
    if (process_vm_readv(getpid(), &pl, 1, &pr, 1, 0) != 1) {
        printf("SKIP: process_vm_readv on this process is refused here (%s)\n", strerror(errno));
        exit(T_SKIP);
    }
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK(munmap(p, (size_t)pg) == 0);
    void *bogus[] = {p, p + 64, (void *)(uintptr_t)0x1000, (void *)(uintptr_t)0x7fffffffe000ull};
    for (size_t i = 0; i < sizeof bogus / sizeof *bogus; i++)
        for (int k = 0; k < 3; k++) {
            CHECK_EQ(fsafe_register_lock(bogus[i], kinds[k], 0, "unmapped"), EINVAL);
            CHECK_EQ(fsafe_register_lock(bogus[i], kinds[k] | FSAFE_SHARED, 0, "unmapped"),
                     EINVAL);
        }
    CHECK_EQ(fsafe_get_stats(&(struct fsafe_stats){0}, sizeof(struct fsafe_stats)), 0);
    start_idle();
    fork_ok();
    printf("ok: pointers to unmapped memory are refused with EINVAL\n");
}

/* An ops key is never dereferenced by fsafe: any unique non-NULL value works. */
static int opaque_acq, opaque_rel_parent;
static int key_acquire(void *k)
{
    opaque_acq += k == (void *)(uintptr_t)0x10;
    return 0;
}
static void key_release_parent(void *k)
{
    opaque_rel_parent += k == (void *)(uintptr_t)0x10;
}
static void key_release_child(void *k)
{
    if (k != (void *)(uintptr_t)0x10)
        _exit(9);
}
static void case_ops_opaque_key(void)
{
    struct fsafe_lock_ops ops = {key_acquire, NULL, key_release_parent, key_release_child};
    CHECK_EQ(fsafe_register_ops((void *)(uintptr_t)0x10, &ops, 0, "opaque"), 0);
    start_idle();
    fork_ok();
    CHECK_EQ(opaque_acq, 1);
    CHECK_EQ(opaque_rel_parent, 1);
    CHECK_EQ(fsafe_unregister_lock((void *)(uintptr_t)0x10), 0);
    printf("ok: an ops key is opaque to fsafe\n");
}

/* ---- a destroyed lock --------------------------------------------------------- */
/* glibc marks a destroyed mutex invalid (trylock: EINVAL): fsafe registers it,
 * every fork skips it (not taken, not reset), and nothing else changes. */
static void case_destroyed(void)
{
#ifndef __GLIBC__
    /* glibc marks a destroyed mutex (trylock says EINVAL); musl's destroy
     * leaves a plain mutex as it was, so fork takes it like a live one. */
    printf("SKIP: this libc leaves no mark on a destroyed mutex\n");
    exit(T_SKIP);
#endif
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER, ok = PTHREAD_MUTEX_INITIALIZER;
    CHECK(pthread_mutex_destroy(&m) == 0);
    pthread_mutex_t before = m;
    CHECK_EQ(fsafe_register_lock(&m, FSAFE_MUTEX, 0, "destroyed"), 0);
    CHECK_EQ(fsafe_register_lock(&ok, FSAFE_MUTEX, 1, "ok"), 0);
    start_idle();
    struct fsafe_stats s0, s1;
    fsafe_get_stats(&s0, sizeof s0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(memcmp(&m, &before, sizeof m) == 0 && pthread_mutex_trylock(&ok) == 0 ? 0 : 5);
    CHECK_EQ(t_wait(pid, 10000), 0);
    fsafe_get_stats(&s1, sizeof s1);
    CHECK_EQ(s1.locks_acquired - s0.locks_acquired, 1); /* only "ok" */
    CHECK(memcmp(&m, &before, sizeof m) == 0);          /* untouched in the parent */
    CHECK_EQ(fsafe_unregister_lock(&m), 0);
    printf("ok: a destroyed mutex is skipped by fork and left as it was\n");
}

/* ---- one lock under two kinds ----------------------------------------------------- */
static pthread_mutex_t twice = PTHREAD_MUTEX_INITIALIZER;
static void *hold_twice(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&twice);
    t_sleep_ms(300);
    pthread_mutex_unlock(&twice);
    return NULL;
}
static int noop_acq(void *k)
{
    (void)k;
    return 0;
}
static void noop_rel(void *k)
{
    (void)k;
}
static void case_two_kinds(void)
{
    CHECK_EQ(fsafe_register_lock(&twice, FSAFE_MUTEX, 0, "mutex"), 0);
    CHECK_EQ(fsafe_register_lock(&twice, FSAFE_RWLOCK, 0, "as rwlock"), EEXIST);
    CHECK_EQ(fsafe_register_lock(&twice, FSAFE_SPINLOCK, 0, "as spin"), EEXIST);
    CHECK_EQ(fsafe_register_lock(&twice, FSAFE_MUTEX | FSAFE_SHARED, 0, "shared"), EEXIST);
    struct fsafe_lock_ops ops = {noop_acq, NULL, noop_rel, noop_rel};
    CHECK_EQ(fsafe_register_ops(&twice, &ops, 0, "as ops"), EEXIST);
    /* It is still handled as the mutex it was first registered as. */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, hold_twice, NULL) == 0);
    t_sleep_ms(50);
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec ts;
        t_deadline(&ts, 2000);
        _exit(pthread_mutex_timedlock(&twice, &ts) == 0 ? 0 : T_CHILD_HUNG);
    }
    CHECK_EQ(t_wait(pid, 10000), 0);
    pthread_join(t, NULL);
    CHECK_EQ(fsafe_unregister_lock(&twice), 0);
    CHECK_EQ(fsafe_unregister_lock(&twice), ENOENT);
    printf("ok: a second registration under another kind is EEXIST; the first stands\n");
}

/* ---- unregister racing with fork ---------------------------------------------------- */
/* Thread U registers and unregisters an ops lock in a loop while the main thread
 * forks.  The callbacks check fsafe's promises: nothing is called once
 * unregister has returned, a release follows each acquire exactly once, and the
 * child sees the lock released exactly when this fork took it. */
enum { R_OFF, R_ON, R_GOING };
static int r_state = R_OFF;
#define RSTATE() __atomic_load_n(&r_state, __ATOMIC_SEQ_CST)
#define RSET(v) __atomic_store_n(&r_state, (v), __ATOMIC_SEQ_CST)
static volatile int r_held, r_violation;
static volatile long r_acquired, r_released;
static int r_try(void *k)
{
    (void)k;
    if (RSTATE() == R_OFF)
        r_violation = 1;
    if (r_held)
        r_violation = 2;
    r_held = 1;
    r_acquired++;
    return 0;
}
static int r_acq(void *k)
{
    return r_try(k);
}
static void r_rel_parent(void *k)
{
    (void)k;
    if (RSTATE() == R_OFF)
        r_violation = 3;
    if (!r_held)
        r_violation = 4;
    r_held = 0;
    r_released++;
}
static void r_rel_child(void *k)
{
    (void)k;
    if (!r_held)
        _exit(20);
    r_held = 0;
}
static char r_key;
static int r_stop;
static long r_cycles;
static void *r_loop(void *arg)
{
    (void)arg;
    struct fsafe_lock_ops ops = {r_acq, r_try, r_rel_parent, r_rel_child};
    while (!__atomic_load_n(&r_stop, __ATOMIC_SEQ_CST)) {
        RSET(R_ON);
        CHECK_EQ(fsafe_register_ops(&r_key, &ops, 0, "racing"), 0);
        for (volatile int i = 0; i < 1000; i++) {
        }
        RSET(R_GOING);
        CHECK_EQ(fsafe_unregister_lock(&r_key), 0);
        RSET(R_OFF);
        r_cycles++;
    }
    return NULL;
}
static void case_unregister_race(void)
{
    pthread_t u;
    CHECK(pthread_create(&u, NULL, r_loop, NULL) == 0);
    int forks = 0;
    uint64_t end = (uint64_t)time(NULL) + 3;
    while (forks < 300 || (uint64_t)time(NULL) < end) {
        if (forks >= 2000)
            break;
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(r_held ? 21 : r_violation ? 22 : 0);
        int st = t_wait(pid, 10000);
        if (st != 0)
            FAIL("fork %d: child status %d", forks, st);
        CHECK_EQ(r_violation, 0);
        forks++;
    }
    __atomic_store_n(&r_stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(u, NULL);
    CHECK_EQ(r_violation, 0);
    CHECK_EQ(r_acquired, r_released);
    printf("%d forks, %ld register/unregister cycles, lock taken by %ld forks\n", forks,
           r_cycles, r_acquired);
    CHECK(r_acquired > 0);
    /* Forks that found nothing registered went straight to libc. */
    CHECK(stat_forks() >= (uint64_t)r_acquired && stat_forks() <= (uint64_t)forks);
    printf("ok: unregister racing with fork\n");
}

/* ---- fork while holding a registered lock fsafe cannot see as ours ------------------ */
/* A spinlock, an rwlock's read side or an ops lock records no owner.  Forking
 * while holding one is a self-deadlock, as locking it twice would be; fsafe's
 * defined outcome is one clear message naming the lock (FSAFE_WARN_MS).  With
 * musl a NORMAL mutex and an rwlock's write side record none either
 * ("normal", "wrlock": configured for musl only, test/reliability.cmake). */
static pthread_spinlock_t sp;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t nm = PTHREAD_MUTEX_INITIALIZER;
static struct t_tas tas;

static void self_held_scenario(const char *what)
{
    start_idle();
    if (strcmp(what, "spin") == 0) {
        pthread_spin_init(&sp, PTHREAD_PROCESS_PRIVATE);
        CHECK_EQ(fsafe_register_lock((void *)&sp, FSAFE_SPINLOCK, 0, "held-spin"), 0);
        pthread_spin_lock(&sp);
    } else if (strcmp(what, "rdlock") == 0) {
        CHECK_EQ(fsafe_register_lock(&rw, FSAFE_RWLOCK, 0, "held-rdlock"), 0);
        pthread_rwlock_rdlock(&rw);
    } else if (strcmp(what, "wrlock") == 0) {
        CHECK_EQ(fsafe_register_lock(&rw, FSAFE_RWLOCK, 0, "held-wrlock"), 0);
        pthread_rwlock_wrlock(&rw);
    } else if (strcmp(what, "normal") == 0) {
        CHECK_EQ(fsafe_register_lock(&nm, FSAFE_MUTEX, 0, "held-normal"), 0);
        pthread_mutex_lock(&nm);
    } else {
        struct fsafe_lock_ops ops = {t_tas_acquire, t_tas_try, t_tas_release_parent,
                                     t_tas_release_child};
        CHECK_EQ(fsafe_register_ops(&tas, &ops, 0, "held-ops"), 0);
        t_tas_acquire(&tas);
    }
    pid_t pid = fork(); /* waits for ever: this thread holds the lock */
    if (pid == 0)
        _exit(0);
    exit(t_wait(pid, 1000) == 0 ? 0 : 1);
}

static void self_held(const char *what, const char *name)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        setenv("FSAFE_WARN_MS", "100", 1);
        /* FSAFE_* are read at fsafe's initialisation: re-exec to apply. */
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n < 0)
            _exit(100);
        self[n] = '\0';
        char arg[64];
        snprintf(arg, sizeof arg, "self_held_run_%s", what);
        execl(self, self, arg, (char *)NULL);
        _exit(101);
    }
    close(fds[1]);
    int st = t_wait(pid, 1500);
    char buf[2048] = {0};
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    (void)n;
    CHECK_EQ(st, T_TIMEOUT); /* the self-deadlock itself */
    char want[128];
    snprintf(want, sizeof want, "fork has waited 1");
    if (!strstr(buf, "fsafe[") || !strstr(buf, want) || !strstr(buf, name))
        FAIL("expected one message naming '%s', got: %s", name, buf);
    printf("message: %s", buf);
    printf("ok: fork while holding '%s' names it\n", name);
}

static void case_self_held_spin(void)
{
    self_held("spin", "held-spin");
}
static void case_self_held_rdlock(void)
{
    self_held("rdlock", "held-rdlock");
}
static void case_self_held_ops(void)
{
    self_held("ops", "held-ops");
}
static void case_self_held_normal(void)
{
    self_held("normal", "held-normal");
}
static void case_self_held_wrlock(void)
{
    self_held("wrlock", "held-wrlock");
}

static const struct t_case cases[] = {
    {"bogus_misaligned", case_bogus_misaligned},
    {"bogus_unmapped", case_bogus_unmapped},
    {"ops_opaque_key", case_ops_opaque_key},
    {"destroyed", case_destroyed},
    {"two_kinds", case_two_kinds},
    {"unregister_race", case_unregister_race},
    {"self_held_spin", case_self_held_spin},
    {"self_held_rdlock", case_self_held_rdlock},
    {"self_held_normal", case_self_held_normal},
    {"self_held_wrlock", case_self_held_wrlock},
    {"self_held_ops", case_self_held_ops},
};

int main(int argc, char **argv)
{
    if (argc == 2 && strncmp(argv[1], "self_held_run_", 14) == 0) {
        setvbuf(stdout, NULL, _IONBF, 0);
        self_held_scenario(argv[1] + 14);
        return 0;
    }
    return T_RUN_CASES(cases, argc, argv);
}
