/* SPDX-License-Identifier: MIT */
/*
 * The stress run: for a bounded time, worker threads hammer registered locks of
 * every kind, malloc and free, write with stdio, and register and unregister
 * locks, while forks come from random threads.  Every child must take every
 * lock that was registered at the time of its fork, malloc, write to a pipe,
 * create and join a thread, and exit 0 within CHILD_S seconds; a child that
 * hangs names the lock it is stuck on (alarm handler, write(2) only).
 *   test_stress [seconds]      (default FSAFE_STRESS_SECONDS)
 *   test_stress 3 selftest     must fail, naming the unregistered lock that the
 *                              main thread holds and every child then tries
 */
#include "common.h"

#include <fcntl.h>
#include <sys/mman.h>

#include "fsafe.h"

#ifndef FSAFE_STRESS_SECONDS
#define FSAFE_STRESS_SECONDS 60
#endif
static unsigned child_s = 20; /* a child that has not finished by then is stuck */
#define CHILD_S child_s
#define NFIXED 14         /* registered for the whole run, hammered by everyone */
#define NSLOTS 16         /* registered and unregistered over and over */
#define NHAMMER 3         /* hammering threads */
#define NREG 2            /* registering threads; slot i belongs to i % NREG */
#define FORK_ODDS 4000    /* a worker forks once in about this many operations */

enum lk { LK_MUTEX, LK_RWLOCK, LK_SPIN, LK_OPS };

union anylock {
    pthread_mutex_t m;
    pthread_rwlock_t rw;
    pthread_spinlock_t sp;
    struct t_tas tas;
};

struct lock {
    union anylock u;
    enum lk lk;
    int type; /* mutex type / rwlock kind */
    int robust, pi;
    char name[32];
    /* Churn slots only: state and seq, read by the forker for its snapshot. */
    int state; /* S_OFF, S_REGISTERING, S_ON, S_UNREGISTERING */
    int seq;   /* bumped after each registration returns and before each unregister */
};
enum { S_OFF, S_REGISTERING, S_ON, S_UNREGISTERING };

static struct lock fixed[NFIXED];
static struct lock slots[NSLOTS];
static FILE *devnull;
static int stop;
static uint64_t deadline_ns;

typedef unsigned long counter;
static counter n_forks, n_forks_main, n_forks_hammer, n_forks_reg, n_ops, n_regs, n_mallocs;
static counter max_child_us;
#define ADD(c, n) __atomic_fetch_add(&(c), (n), __ATOMIC_SEQ_CST)
#define LOAD(c) __atomic_load_n(&(c), __ATOMIC_SEQ_CST)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- locks of every kind ------------------------------------------------------- */
static void lock_init(struct lock *l)
{
    switch (l->lk) {
    case LK_MUTEX: {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, l->type);
        if (l->robust)
            pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        if (l->pi)
            pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
        CHECK(pthread_mutex_init(&l->u.m, &a) == 0);
        pthread_mutexattr_destroy(&a);
        break;
    }
    case LK_RWLOCK: {
        pthread_rwlockattr_t a;
        pthread_rwlockattr_init(&a);
        pthread_rwlockattr_setkind_np(&a, l->type);
        CHECK(pthread_rwlock_init(&l->u.rw, &a) == 0);
        pthread_rwlockattr_destroy(&a);
        break;
    }
    case LK_SPIN:
        CHECK(pthread_spin_init(&l->u.sp, PTHREAD_PROCESS_PRIVATE) == 0);
        break;
    case LK_OPS:
        memset(&l->u.tas, 0, sizeof l->u.tas);
        break;
    }
}

static void lock_destroy(struct lock *l)
{
    switch (l->lk) {
    case LK_MUTEX:
        pthread_mutex_destroy(&l->u.m);
        break;
    case LK_RWLOCK:
        pthread_rwlock_destroy(&l->u.rw);
        break;
    case LK_SPIN:
        pthread_spin_destroy(&l->u.sp);
        break;
    case LK_OPS:
        break;
    }
}

static const struct fsafe_lock_ops tas_ops = {t_tas_acquire, t_tas_try, t_tas_release_parent,
                                              t_tas_release_child};

static int lock_register(struct lock *l, int rank)
{
    static const int kinds[] = {FSAFE_MUTEX, FSAFE_RWLOCK, FSAFE_SPINLOCK};
    if (l->lk == LK_OPS)
        return fsafe_register_ops(&l->u, &tas_ops, rank, l->name);
    return fsafe_register_lock(&l->u, kinds[l->lk], rank, l->name);
}

/* Blocking; async-signal-safe for the child's use (no stdio, no malloc). */
static void lock_take(struct lock *l, int reader)
{
    switch (l->lk) {
    case LK_MUTEX: {
        int r = pthread_mutex_lock(&l->u.m);
        if (r == EOWNERDEAD)
            pthread_mutex_consistent(&l->u.m);
        break;
    }
    case LK_RWLOCK:
        if (reader)
            pthread_rwlock_rdlock(&l->u.rw);
        else
            pthread_rwlock_wrlock(&l->u.rw);
        break;
    case LK_SPIN:
        pthread_spin_lock(&l->u.sp);
        break;
    case LK_OPS:
        while (t_tas_try(&l->u.tas))
            sched_yield();
        break;
    }
}

static void lock_drop(struct lock *l)
{
    switch (l->lk) {
    case LK_MUTEX:
        pthread_mutex_unlock(&l->u.m);
        break;
    case LK_RWLOCK:
        pthread_rwlock_unlock(&l->u.rw);
        break;
    case LK_SPIN:
        pthread_spin_unlock(&l->u.sp);
        break;
    case LK_OPS:
        t_tas_unlock(&l->u.tas);
        break;
    }
}

static void setup_fixed(void)
{
    static const struct {
        enum lk lk;
        int type, robust, pi;
        const char *name;
    } f[NFIXED] = {
        {LK_MUTEX, PTHREAD_MUTEX_NORMAL, 0, 0, "mutex-normal"},
        {LK_MUTEX, PTHREAD_MUTEX_ERRORCHECK, 0, 0, "mutex-errorcheck"},
        {LK_MUTEX, PTHREAD_MUTEX_RECURSIVE, 0, 0, "mutex-recursive"},
        {LK_MUTEX, PTHREAD_MUTEX_ADAPTIVE_NP, 0, 0, "mutex-adaptive"},
        {LK_MUTEX, PTHREAD_MUTEX_NORMAL, 1, 0, "mutex-robust"},
        {LK_MUTEX, PTHREAD_MUTEX_ERRORCHECK, 1, 0, "mutex-robust-errorcheck"},
        {LK_MUTEX, PTHREAD_MUTEX_NORMAL, 0, 1, "mutex-pi"},
        {LK_MUTEX, PTHREAD_MUTEX_RECURSIVE, 0, 1, "mutex-pi-recursive"},
        {LK_RWLOCK, PTHREAD_RWLOCK_PREFER_READER_NP, 0, 0, "rwlock-reader"},
        {LK_RWLOCK, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP, 0, 0, "rwlock-writer"},
        {LK_SPIN, 0, 0, 0, "spin-a"},
        {LK_SPIN, 0, 0, 0, "spin-b"},
        {LK_OPS, 0, 0, 0, "ops-a"},
        {LK_OPS, 0, 0, 0, "ops-b"},
    };
    for (int i = 0; i < NFIXED; i++) {
        struct lock *l = &fixed[i];
        l->lk = f[i].lk;
        l->type = f[i].type;
        l->robust = f[i].robust;
        l->pi = f[i].pi;
        snprintf(l->name, sizeof l->name, "%s", f[i].name);
        lock_init(l);
        /* Ranks shuffled against the array order; workers never nest locks. */
        CHECK_EQ(lock_register(l, (i * 5) % NFIXED), 0);
    }
}

/* ---- the child ------------------------------------------------------------------- */
static int selftest;
static pthread_mutex_t trap = PTHREAD_MUTEX_INITIALIZER; /* never registered */
static const char trap_name[] = "selftest-unregistered";
static const char *volatile child_cur = "(none: after the locks)";
static int child_fd = -1;

static void child_alarm(int sig)
{
    (void)sig;
    char msg[128] = "stuck on lock '";
    size_t n = strlen(msg);
    for (const char *p = child_cur; *p && n < sizeof msg - 3; p++)
        msg[n++] = *p;
    msg[n++] = '\'';
    msg[n++] = '\n';
    ssize_t r = write(child_fd, msg, n);
    (void)r;
    _exit(T_CHILD_HUNG);
}

static void *child_thread(void *arg)
{
    return arg;
}

struct snap {
    int seq[NSLOTS];
    int on[NSLOTS];
};

static __attribute__((noreturn)) void child_main(int fd, const struct snap *s)
{
    child_fd = fd;
    struct sigaction sa = {.sa_handler = child_alarm};
    sigaction(SIGALRM, &sa, NULL);
    alarm(CHILD_S);
    if (selftest) {
        child_cur = trap_name;
        pthread_mutex_lock(&trap);
    }
    for (int i = 0; i < NFIXED; i++) {
        child_cur = fixed[i].name;
        lock_take(&fixed[i], 0);
        lock_drop(&fixed[i]);
    }
    for (int i = 0; i < NSLOTS; i++) {
        struct lock *l = &slots[i];
        /* Registered before fork() was called, and its unregister had not
         * started when the child was made: fsafe must have taken it. */
        if (!s->on[i] || __atomic_load_n(&l->state, __ATOMIC_SEQ_CST) != S_ON ||
            __atomic_load_n(&l->seq, __ATOMIC_SEQ_CST) != s->seq[i])
            continue;
        child_cur = l->name;
        lock_take(l, 0);
        lock_drop(l);
    }
#ifndef FSAFE_STRESS_SANITIZED
    /* Not under the sanitizers: their runtimes' allocator and thread registry
     * are not fork-safe (gcc 12's ASan hangs here in the child of a
     * multithreaded fork; TSan refuses threads after one).  README, reliability. */
    child_cur = "(malloc)";
    void *p = malloc(1000);
    if (!p)
        _exit(5);
    memset(p, 1, 1000);
    free(p);
    child_cur = "(thread)";
    pthread_t t;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, NULL) != 0)
        _exit(6);
#else
    (void)child_thread;
#endif
    child_cur = "(write)";
    if (write(fd, "ok\n", 3) != 3)
        _exit(7);
    _exit(0);
}

static void do_fork(counter *origin, const char *who)
{
    struct snap s;
    for (int i = 0; i < NSLOTS; i++) {
        int q1 = __atomic_load_n(&slots[i].seq, __ATOMIC_SEQ_CST);
        int st = __atomic_load_n(&slots[i].state, __ATOMIC_SEQ_CST);
        int q2 = __atomic_load_n(&slots[i].seq, __ATOMIC_SEQ_CST);
        s.on[i] = st == S_ON && q1 == q2;
        s.seq[i] = q1;
    }
    int fds[2];
    CHECK(pipe2(fds, O_CLOEXEC) == 0);
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        child_main(fds[1], &s);
    close(fds[1]);
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        CHECK(r == 0 || errno == EINTR);
        if (now_ns() - t0 > (uint64_t)(CHILD_S + 10) * 1000000000u) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            FAIL("fork from %s: child %d did not finish (not even its alarm)", who, (int)pid);
        }
        t_sleep_ms(1);
    }
    char buf[128] = {0};
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    if (n < 0)
        n = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || strcmp(buf, "ok\n") != 0)
        FAIL("fork #%lu from %s: child status %d (%s): %s", LOAD(n_forks) + 1,
             who, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
             WIFEXITED(st) && WEXITSTATUS(st) == T_CHILD_HUNG ? "hung" : "failed", buf);
    counter us = (counter)((now_ns() - t0) / 1000);
    counter m = LOAD(max_child_us);
    while (us > m && !__atomic_compare_exchange_n(&max_child_us, &m, us, 0, __ATOMIC_SEQ_CST,
                                                  __ATOMIC_SEQ_CST)) {
    }
    ADD(n_forks, 1);
    __atomic_fetch_add(origin, 1, __ATOMIC_SEQ_CST);
}

static int time_up(void)
{
    if (!__atomic_load_n(&stop, __ATOMIC_RELAXED) && now_ns() >= deadline_ns)
        __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    return __atomic_load_n(&stop, __ATOMIC_RELAXED);
}

/* ---- workers ----------------------------------------------------------------------- */
static void *hammer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
    void *keep[8] = {0};
    unsigned long ops = 0;
    while (!time_up()) {
        struct lock *l = &fixed[rand_r(&seed) % NFIXED];
        lock_take(l, rand_r(&seed) & 1);
        for (volatile int i = rand_r(&seed) % 200; i > 0; i--) {
        }
        lock_drop(l);
        int k = rand_r(&seed) % 8;
        free(keep[k]);
        keep[k] = malloc(1 + (size_t)(rand_r(&seed) % 4096));
        ADD(n_mallocs, 1);
        if ((ops & 63) == 0)
            fprintf(devnull, "hammer %lu: %s\n", ops, l->name);
        ops++;
        if (rand_r(&seed) % FORK_ODDS == 0)
            do_fork(&n_forks_hammer, "a hammer thread");
    }
    for (int k = 0; k < 8; k++)
        free(keep[k]);
    ADD(n_ops, ops);
    return NULL;
}

/* Registers and unregisters its slots, with a new kind each time.  After an
 * unregister the lock memory is scribbled over: fsafe must never touch it again
 * (checked before the slot is reused). */
static void *registrar(void *arg)
{
    int me = (int)(uintptr_t)arg;
    unsigned seed = (unsigned)me * 104729u + 3;
    unsigned long cycles = 0;
    while (!time_up()) {
        int i = me + NREG * (rand_r(&seed) % (NSLOTS / NREG));
        struct lock *l = &slots[i];
        if (__atomic_load_n(&l->state, __ATOMIC_SEQ_CST) == S_OFF) {
            if (cycles > 0 && l->seq != 0) {
                for (size_t b = 0; b < sizeof l->u; b++)
                    if (((unsigned char *)&l->u)[b] != 0x5a)
                        FAIL("fsafe wrote to unregistered lock '%s' (byte %zu)", l->name, b);
            }
            static const int types[] = {PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_ERRORCHECK,
                                        PTHREAD_MUTEX_RECURSIVE, PTHREAD_MUTEX_ADAPTIVE_NP};
            l->lk = (enum lk)(rand_r(&seed) % 4);
            l->type = l->lk == LK_MUTEX    ? types[rand_r(&seed) % 4]
                      : l->lk == LK_RWLOCK ? PTHREAD_RWLOCK_PREFER_READER_NP
                                           : 0;
            l->robust = l->lk == LK_MUTEX && rand_r(&seed) % 3 == 0;
            l->pi = 0;
            snprintf(l->name, sizeof l->name, "slot%d-%s-%lu", i,
                     (const char *[]){"mutex", "rwlock", "spin", "ops"}[l->lk], cycles);
            lock_init(l);
            __atomic_store_n(&l->state, S_REGISTERING, __ATOMIC_SEQ_CST);
            CHECK_EQ(lock_register(l, rand_r(&seed) % 20 - 5), 0);
            __atomic_add_fetch(&l->seq, 1, __ATOMIC_SEQ_CST);
            __atomic_store_n(&l->state, S_ON, __ATOMIC_SEQ_CST);
        } else {
            for (int k = rand_r(&seed) % 4; k > 0; k--) {
                lock_take(l, 0);
                lock_drop(l);
            }
            __atomic_store_n(&l->state, S_UNREGISTERING, __ATOMIC_SEQ_CST);
            __atomic_add_fetch(&l->seq, 1, __ATOMIC_SEQ_CST);
            CHECK_EQ(fsafe_unregister_lock(&l->u), 0);
            lock_destroy(l);
            memset(&l->u, 0x5a, sizeof l->u);
            __atomic_store_n(&l->state, S_OFF, __ATOMIC_SEQ_CST);
        }
        cycles++;
        if (rand_r(&seed) % (FORK_ODDS / 8) == 0)
            do_fork(&n_forks_reg, "a registering thread");
    }
    ADD(n_regs, cycles);
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    long seconds = argc > 1 ? atol(argv[1]) : FSAFE_STRESS_SECONDS;
    if (seconds <= 0)
        seconds = FSAFE_STRESS_SECONDS;
    if (argc > 2 && strcmp(argv[2], "selftest") == 0) {
        selftest = 1;
        child_s = 2;
        pthread_mutex_lock(&trap);
    }
    devnull = fopen("/dev/null", "w");
    CHECK(devnull != NULL);
    setup_fixed();
    for (int i = 0; i < NSLOTS; i++)
        slots[i].state = S_OFF;
    uint64_t start = now_ns();
    deadline_ns = start + (uint64_t)seconds * 1000000000u;
    pthread_t th[NHAMMER + NREG];
    for (int i = 0; i < NHAMMER; i++)
        CHECK(pthread_create(&th[i], NULL, hammer, (void *)(uintptr_t)i) == 0);
    for (int i = 0; i < NREG; i++)
        CHECK(pthread_create(&th[NHAMMER + i], NULL, registrar, (void *)(uintptr_t)i) == 0);
    unsigned seed = 42;
    while (!time_up()) {
        t_sleep_ms(rand_r(&seed) % 20);
        void *p = malloc(100);
        free(p);
        if (!time_up())
            do_fork(&n_forks_main, "the main thread");
    }
    for (int i = 0; i < NHAMMER + NREG; i++)
        pthread_join(th[i], NULL);
    double el = (double)(now_ns() - start) / 1e9;
    struct fsafe_stats fs;
    fsafe_get_stats(&fs, sizeof fs);
    printf("stress: %.1f s, %lu forks (%lu from main, %lu from hammer threads, %lu from "
           "registering threads), %.1f forks/s; slowest child %.1f ms\n",
           el, (unsigned long)n_forks, (unsigned long)n_forks_main, (unsigned long)n_forks_hammer,
           (unsigned long)n_forks_reg, (double)n_forks / el, (double)max_child_us / 1000);
    printf("stress: %lu lock operations, %lu mallocs, %lu register/unregister steps; fsafe: "
           "%llu forks, %llu lock acquisitions, slowest acquisition phase %.1f ms\n",
           (unsigned long)n_ops, (unsigned long)n_mallocs, (unsigned long)n_regs,
           (unsigned long long)fs.forks, (unsigned long long)fs.locks_acquired,
           (double)fs.acquire_ns_max / 1e6);
    CHECK(n_forks_main > 0);
    CHECK(n_forks_hammer + n_forks_reg > 0);
    CHECK_EQ(fs.forks, n_forks);
    fclose(devnull);
    printf("ok\n");
    return 0;
}
