/* SPDX-License-Identifier: MIT */
/*
 * Every way to fork (README, "every way to fork"): one case per row that the
 * core tests do not already cover.  CTest runs each case as its own process:
 *   test_forkways <case>
 * Every fork is waited for with a timeout and its exit status checked; child
 * code is async-signal-safe (write(2), no stdio, no malloc).
 */
#include "common.h"

#include <semaphore.h>
#include <spawn.h>
#include <sys/syscall.h>

#include "fsafe.h"

extern char **environ;

/* ---- shared fixture: one registered mutex held by another thread ------------ */
static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
static sem_t holder_go, holder_has;
static long holder_ms;

/* Takes lk when told to, keeps it holder_ms, lets go. */
static void *holder(void *arg)
{
    (void)arg;
    for (;;) {
        sem_wait(&holder_go);
        long ms = __atomic_load_n(&holder_ms, __ATOMIC_SEQ_CST);
        if (ms < 0)
            return NULL;
        pthread_mutex_lock(&lk);
        sem_post(&holder_has);
        t_sleep_ms(ms);
        pthread_mutex_unlock(&lk);
    }
}

static pthread_t holder_th;
static void holder_start(void)
{
    sem_init(&holder_go, 0, 0);
    sem_init(&holder_has, 0, 0);
    CHECK(pthread_create(&holder_th, NULL, holder, NULL) == 0);
}
/* Makes the holder take lk for ms; returns once it has it. */
static void holder_hold(long ms)
{
    __atomic_store_n(&holder_ms, ms, __ATOMIC_SEQ_CST);
    sem_post(&holder_go);
    sem_wait(&holder_has);
}
static void holder_stop(void)
{
    __atomic_store_n(&holder_ms, -1, __ATOMIC_SEQ_CST);
    sem_post(&holder_go);
    pthread_join(holder_th, NULL);
}

/* Child: lk can be taken and released within ms.  Async-signal-safe. */
static int child_take(long ms)
{
    struct timespec ts;
    t_deadline(&ts, ms);
    if (pthread_mutex_timedlock(&lk, &ts) != 0)
        return T_CHILD_HUNG;
    return pthread_mutex_unlock(&lk) == 0 ? 0 : 4;
}

static uint64_t forks_done(void)
{
    struct fsafe_stats s;
    CHECK_EQ(fsafe_get_stats(&s, sizeof s), 0);
    return s.forks;
}

/* ---- fork() from a signal handler, no fork in progress ---------------------- */
static volatile pid_t sig_pid = -1;
static void on_sig_fork(int sig)
{
    (void)sig;
    pid_t p = fork();
    if (p == 0)
        _exit(child_take(2000));
    sig_pid = p;
}

static void case_signal_fork(void)
{
    CHECK_EQ(fsafe_register_lock(&lk, FSAFE_MUTEX, 1, "lk"), 0);
    holder_start();
    signal(SIGUSR1, on_sig_fork);
    holder_hold(300); /* held at the moment of fork; fsafe waits for it */
    raise(SIGUSR1);
    CHECK(sig_pid > 0);
    CHECK_EQ(t_wait(sig_pid, 10000), 0);
    CHECK_EQ(forks_done(), 1);
    holder_stop();
    printf("ok: fork from a signal handler ran fsafe's protocol; the child took the lock\n");
}

/* ---- a signal handler that interrupted fsafe's own fork ---------------------- */
/* The forker waits in fsafe's walk for lk (held by the holder); a signal on the
 * forker's thread forks from the handler.  That nested fork passes straight to
 * libc: its child is a copy of the half-done walk and simply exits; fsafe's
 * handlers must not treat it as the outer fork. */
static volatile int nested_status = -1;
static void on_sig_nested(int sig)
{
    (void)sig;
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    nested_status = p > 0 ? t_wait(p, 5000) : 200;
}

static pthread_t forker_th;
static void *kick_forker(void *arg)
{
    (void)arg;
    t_sleep_ms(150); /* the forker is now in the walk, waiting for lk */
    pthread_kill(forker_th, SIGUSR1);
    return NULL;
}

static void case_signal_in_fork(void)
{
    CHECK_EQ(fsafe_register_lock(&lk, FSAFE_MUTEX, 1, "lk"), 0);
    holder_start();
    struct sigaction sa = {.sa_handler = on_sig_nested};
    sigaction(SIGUSR1, &sa, NULL);
    forker_th = pthread_self();
    pthread_t k;
    holder_hold(500);
    CHECK(pthread_create(&k, NULL, kick_forker, NULL) == 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_take(2000));
    pthread_join(k, NULL);
    CHECK_EQ(nested_status, 0);
    CHECK_EQ(t_wait(pid, 10000), 0);
    CHECK_EQ(forks_done(), 1); /* the nested fork was libc's, not fsafe's */
    /* The registry is intact: the next fork takes lk again. */
    holder_hold(200);
    pid = fork();
    if (pid == 0)
        _exit(child_take(2000));
    CHECK_EQ(t_wait(pid, 10000), 0);
    holder_stop();
    printf("ok: a fork from a handler that interrupted fsafe's fork went to libc\n");
}

/* ---- a signal handler that interrupted a registration --------------------------- */
static volatile int in_reg, hits, sig_bad; /* this thread and its handler */
static int sig_forks;
static void on_sig_reg(int sig)
{
    (void)sig;
    int inside = in_reg;
    pid_t p = fork();
    if (p == 0)
        _exit(child_take(2000));
    int st = p > 0 ? t_wait(p, 10000) : 200;
    if (st != 0)
        sig_bad = st;
    __atomic_fetch_add(&sig_forks, 1, __ATOMIC_SEQ_CST);
    hits += inside;
}

static int stop_kicking, start_kicking;
static void *kick_loop(void *arg)
{
    (void)arg;
    /* Not before the forker is back from pthread_create: musl's holds a lock
     * there with signals unblocked that its fork takes, so a fork from a
     * handler that interrupted it waits for itself, fsafe or not. */
    while (!__atomic_load_n(&start_kicking, __ATOMIC_SEQ_CST))
        t_sleep_ms(1);
    while (!__atomic_load_n(&stop_kicking, __ATOMIC_SEQ_CST)) {
        /* One signal at a time: the next only once the handler has forked. */
        int seen = __atomic_load_n(&sig_forks, __ATOMIC_SEQ_CST);
        pthread_kill(forker_th, SIGUSR1);
        while (__atomic_load_n(&sig_forks, __ATOMIC_SEQ_CST) == seen &&
               !__atomic_load_n(&stop_kicking, __ATOMIC_SEQ_CST))
            t_sleep_ms(1);
        t_sleep_ms(2);
    }
    return NULL;
}

static void case_signal_in_register(void)
{
    CHECK_EQ(fsafe_register_lock(&lk, FSAFE_MUTEX, 1, "lk"), 0);
    struct sigaction sa = {.sa_handler = on_sig_reg};
    sigaction(SIGUSR1, &sa, NULL);
    forker_th = pthread_self();
    pthread_t k;
    CHECK(pthread_create(&k, NULL, kick_loop, NULL) == 0);
    __atomic_store_n(&start_kicking, 1, __ATOMIC_SEQ_CST);
    static pthread_mutex_t other[16];
    uint64_t t0 = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (uint64_t)ts.tv_sec;
    long rounds = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((uint64_t)ts.tv_sec - t0 >= 3 && hits >= 3)
            break;
        if ((uint64_t)ts.tv_sec - t0 >= 20)
            break;
        for (int i = 0; i < 16; i++) {
            pthread_mutex_init(&other[i], NULL);
            in_reg = 1;
            int r = fsafe_register_lock(&other[i], FSAFE_MUTEX | FSAFE_PRIVATE, i, "other");
            in_reg = 0;
            CHECK_EQ(r, 0);
        }
        for (int i = 0; i < 16; i++) {
            in_reg = 1;
            int r = fsafe_unregister_lock(&other[i]);
            in_reg = 0;
            CHECK_EQ(r, 0);
        }
        rounds++;
    }
    __atomic_store_n(&stop_kicking, 1, __ATOMIC_SEQ_CST);
    pthread_join(k, NULL);
    CHECK_EQ(sig_bad, 0);
    printf("%d forks from a handler, %d of them interrupting register/unregister (%ld rounds)\n",
           sig_forks, hits, rounds);
    CHECK(hits > 0);
    struct fsafe_stats s;
    fsafe_get_stats(&s, sizeof s);
    CHECK_EQ(s.locks_registered, 1);
    printf("ok: forks from handlers that interrupted a registration\n");
}

/* ---- fork from inside another library's atfork prepare handler -------------- */
/* glibc 2.36 runs prepare handlers without its atfork lock, so a handler may
 * fork (see the "without" run).  With fsafe, that nested fork passes straight to
 * libc, and the outer fork must still hold lk across the real fork: the holder,
 * waiting for lk meanwhile, must not get it before the outer fork is done. */
static int without; /* 1: FSAFE_OPTIONAL build run without fsafe */
static volatile int atfork_nested_status = -1, atfork_once;
static void other_prepare(void)
{
    if (atfork_once++)
        return;
    if (!without) {
        /* The walk is done and lk is fsafe's; the holder now queues for it. */
        __atomic_store_n(&holder_ms, 3000, __ATOMIC_SEQ_CST);
        sem_post(&holder_go);
        t_sleep_ms(50);
    }
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    atfork_nested_status = p > 0 ? t_wait(p, 5000) : 200;
    if (!without)
        t_sleep_ms(100); /* if the nested fork let go of lk, the holder has it now */
}

static void case_atfork_fork(void)
{
#if defined(__GLIBC__)
#if !__GLIBC_PREREQ(2, 34)
    /* glibc < 2.34 holds its atfork list lock while the handlers run: a
     * fork from a handler deadlocks there, with or without fsafe (Debian 11). */
    printf("skip: a fork from an atfork handler deadlocks in glibc < 2.34 itself\n");
    exit(T_SKIP);
#endif
#else
    /* musl too holds its handler list lock while the handlers run
     * (forkways.without.atfork_fork timed out there as well). */
    printf("skip: a fork from an atfork handler deadlocks in musl's fork itself\n");
    exit(T_SKIP);
#endif
    if (!without) {
        CHECK_EQ(fsafe_register_lock(&lk, FSAFE_MUTEX, 1, "lk"), 0);
        holder_start();
    } else {
        pthread_t t;
        holder_start();
        (void)t;
    }
    CHECK_EQ(pthread_atfork(other_prepare, NULL, NULL), 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(without ? 0 : child_take(1000));
    int st = t_wait(pid, 10000);
    CHECK_EQ(atfork_nested_status, 0);
    if (!without)
        sem_wait(&holder_has);
    CHECK_EQ(st, 0);
    holder_stop();
    printf("ok: fork from inside an atfork handler%s\n", without ? " (without fsafe)" : "");
}

/* ---- register from an atfork handler while an unregister waits on this fork ---- */
/* Thread U unregisters lk while the fork holds it: U holds fsafe's writer lock
 * and waits for the forker to let go.  The forker, inside glibc's fork, runs
 * another library's prepare handler, which registers a lock.  The forker must
 * not block on the writer lock that U holds while U waits for it. */
static pthread_mutex_t late = PTHREAD_MUTEX_INITIALIZER;
static sem_t u_go;
static int u_started;
static volatile int late_result = -1;
static void *unregisterer(void *arg)
{
    (void)arg;
    sem_wait(&u_go);
    __atomic_store_n(&u_started, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(fsafe_unregister_lock(&lk), 0);
    return NULL;
}
static void registering_prepare(void)
{
    if (late_result != -1)
        return;
    sem_post(&u_go);
    while (!__atomic_load_n(&u_started, __ATOMIC_SEQ_CST))
        t_sleep_ms(1);
    t_sleep_ms(100); /* U now holds the writer lock and waits for this fork */
    late_result = fsafe_register_lock(&late, FSAFE_MUTEX, 2, "late");
}

static void scenario_atfork_register(void)
{
    CHECK_EQ(fsafe_register_lock(&lk, FSAFE_MUTEX, 1, "lk"), 0);
    sem_init(&u_go, 0, 0);
    pthread_t u;
    CHECK(pthread_create(&u, NULL, unregisterer, NULL) == 0);
    CHECK_EQ(pthread_atfork(registering_prepare, NULL, NULL), 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    CHECK_EQ(t_wait(pid, 5000), 0);
    pthread_join(u, NULL);
    CHECK_EQ(late_result, 0);
    exit(0);
}

static void case_atfork_register_unregister(void)
{
    /* In a child process of its own, so that a deadlock is reported, not hung. */
    pid_t pid = fork();
    if (pid == 0)
        scenario_atfork_register();
    int st = t_wait(pid, 10000);
    if (st == T_TIMEOUT)
        FAIL("deadlock: the forker blocked on fsafe's writer lock held by an unregister "
             "that waits for the forker");
    CHECK_EQ(st, 0);
    printf("ok: registration from an atfork handler while an unregister waits on the fork\n");
}

/* ---- fork in a child, nested ---------------------------------------------------- */
static void case_nested_child(void)
{
    CHECK_EQ(fsafe_register_lock(&lk, FSAFE_MUTEX, 1, "lk"), 0);
    holder_start();
    holder_hold(300);
    pid_t pid = fork();
    if (pid == 0) {
        /* A child: it makes threads again and forks again. */
        if (child_take(2000) != 0)
            _exit(10);
        holder_start();
        holder_hold(300);
        pid_t g = fork();
        if (g == 0)
            _exit(child_take(2000));
        int st = t_wait(g, 10000);
        holder_stop();
        _exit(st == 0 ? 0 : 20 + (st & 63));
    }
    CHECK_EQ(t_wait(pid, 20000), 0);
    holder_stop();
    printf("ok: a child forks again, and the grandchild takes the lock\n");
}

/* ---- the ways that bypass fsafe: nothing taken, nothing hangs ----------------- */
static int prepare_runs;
static void count_prepare(void)
{
    prepare_runs++;
}

/* lk is held by another thread for longer than the whole case; a way to fork
 * that went through fsafe would wait for it. */
static void bypass_setup(void)
{
    CHECK_EQ(fsafe_register_lock(&lk, FSAFE_MUTEX, 1, "lk"), 0);
    CHECK_EQ(pthread_atfork(count_prepare, NULL, NULL), 0);
    holder_start();
    holder_hold(60000);
}

static void bypass_check(const char *what)
{
    CHECK_EQ(forks_done(), 0);
    CHECK_EQ(prepare_runs, 0);
    printf("ok: %s bypasses fsafe and did not wait for a held registered lock\n", what);
    exit(0); /* the holder still holds lk */
}

static void case_vfork(void)
{
    bypass_setup();
    pid_t pid = vfork();
    if (pid == 0)
        _exit(0);
    CHECK_EQ(t_wait(pid, 5000), 0);
    bypass_check("vfork()");
}

static void case_posix_spawn(void)
{
    bypass_setup();
    pid_t pid;
    char *argv[] = {"true", NULL};
    CHECK_EQ(posix_spawnp(&pid, "true", NULL, NULL, argv, environ), 0);
    CHECK_EQ(t_wait(pid, 5000), 0);
    bypass_check("posix_spawn()");
}

static void case_system(void)
{
    bypass_setup();
    int st = system("exit 7");
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 7);
    bypass_check("system()");
}

static void case_popen(void)
{
    bypass_setup();
    FILE *f = popen("echo hello", "r");
    CHECK(f != NULL);
    char buf[32] = {0};
    CHECK(fgets(buf, sizeof buf, f) != NULL);
    CHECK(strcmp(buf, "hello\n") == 0);
    CHECK_EQ(pclose(f), 0);
    bypass_check("popen()");
}

/* _Fork: glibc 2.34; musl 1.2.2, the other libc fsafe builds with. */
#if defined(__GLIBC__)
#define HAVE_UNDERSCORE_FORK __GLIBC_PREREQ(2, 34)
#else
#define HAVE_UNDERSCORE_FORK 1
#endif
static void case_underscore_fork(void)
{
#if HAVE_UNDERSCORE_FORK
    bypass_setup();
    pid_t pid = _Fork();
    if (pid == 0)
        _exit(pthread_mutex_trylock(&lk) == EBUSY ? 0 : 5); /* untouched: still held */
    CHECK_EQ(t_wait(pid, 5000), 0);
    bypass_check("_Fork()");
#else
    printf("SKIP: _Fork() is glibc 2.34's\n");
    exit(T_SKIP);
#endif
}

static void case_clone(void)
{
    bypass_setup();
    long pid = syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
    if (pid == 0)
        syscall(SYS_exit_group, 0);
    CHECK(pid > 0);
    CHECK_EQ(t_wait((pid_t)pid, 5000), 0);
    bypass_check("a raw clone syscall");
}

static const struct t_case cases[] = {
    {"signal_fork", case_signal_fork},
    {"signal_in_fork", case_signal_in_fork},
    {"signal_in_register", case_signal_in_register},
    {"atfork_fork", case_atfork_fork},
    {"atfork_register_unregister", case_atfork_register_unregister},
    {"nested_child", case_nested_child},
    {"vfork", case_vfork},
    {"posix_spawn", case_posix_spawn},
    {"system", case_system},
    {"popen", case_popen},
    {"_Fork", case_underscore_fork},
    {"clone", case_clone},
};

int main(int argc, char **argv)
{
#ifdef FSAFE_OPTIONAL
    without = !fsafe_present();
#endif
    return T_RUN_CASES(cases, argc, argv);
}
