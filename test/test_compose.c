/* SPDX-License-Identifier: MIT */
/*
 * fsafe composes with a program's own fork protocol (issue 22): other
 * libraries' pthread_atfork handlers that take locks fsafe took for the same
 * fork, locks built from a flag, a mutex and a condition variable, and a
 * report that tells holders from waiters.  Every case runs plain too, where
 * the program is healthy (or, for flag_release, where the child hangs), so
 * that a difference under fsafe is fsafe's.
 *
 *   test_compose <case> ok|hang
 */
#include "common.h" /* first: it defines _GNU_SOURCE (RTLD_DEFAULT before glibc 2.34) */

#include <dlfcn.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "fsafe.h"

static volatile unsigned sink;

static void sink_work(void)
{
    for (int i = 0; i < 200; i++)
        sink = sink * 31 + (unsigned)i;
}

static int expect_ok;

/* A fork that deadlocks the forking process itself shows up as a message and
 * status 1 after `seconds`, not as a test killed by CTest. */
static const char *watched;

static void on_watchdog(int sig)
{
    (void)sig;
    t_say("FAIL ");
    t_say(watched);
    t_say(": the forking process hung\n");
    _exit(1);
}

static void watchdog(const char *what, unsigned seconds)
{
    watched = what;
    signal(SIGALRM, on_watchdog);
    alarm(seconds);
}

/* ---- a library with its own atfork handlers (jemalloc's shape) ------------------ */
/*
 * A background thread sleeps in a timed condition wait on bg_lock, as
 * jemalloc's background thread does; the library's prepare handler takes
 * bg_lock, its parent handler unlocks it, and its child handler re-initialises
 * it (reinit) or unlocks it.  Auto mode takes the mutex of a thread parked in
 * a condition wait before the fork; before issue 22 the prepare handler then
 * asked for it on the same thread and the fork never returned.
 */
static pthread_mutex_t bg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bg_cv = PTHREAD_COND_INITIALIZER;
static int bg_wakeups, bg_child_reinit;
static atomic_int bg_prepared, bg_parent_done, bg_waiting;

static void bg_prepare(void)
{
    pthread_mutex_lock(&bg_lock);
    atomic_fetch_add(&bg_prepared, 1);
}

static void bg_parent(void)
{
    int r = pthread_mutex_unlock(&bg_lock);
    if (r != 0)
        t_say("bg_parent: unlock failed\n");
    atomic_fetch_add(&bg_parent_done, 1);
}

static void bg_child(void)
{
    if (bg_child_reinit) {
        pthread_mutex_init(&bg_lock, NULL);
        pthread_cond_init(&bg_cv, NULL);
    } else if (pthread_mutex_unlock(&bg_lock) != 0) {
        t_say("bg_child: unlock failed\n");
        _exit(5);
    }
}

static void *bg_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&bg_lock);
    for (;;) {
        struct timespec ts;
        t_deadline(&ts, 50);
        atomic_store(&bg_waiting, 1);
        pthread_cond_timedwait(&bg_cv, &bg_lock, &ts);
        bg_wakeups++;
    }
    return NULL;
}

static void *bg_allocator(void *arg)
{
    (void)arg;
    for (unsigned i = 0;; i++) {
        void *p = malloc(64 + (i % 64) * 16);
        free(p);
        if (i % 64 == 0) {
            pthread_mutex_lock(&bg_lock);
            pthread_cond_signal(&bg_cv);
            pthread_mutex_unlock(&bg_lock);
        }
    }
    return NULL;
}

#define BG_FORKS 10

static void atfork_body(void)
{
    pthread_atfork(bg_prepare, bg_parent, bg_child);
    pthread_t t, a;
    pthread_create(&t, NULL, bg_thread, NULL);
    pthread_create(&a, NULL, bg_allocator, NULL);
    while (!atomic_load(&bg_waiting))
        t_sleep_ms(1);
    int done = 0;
    for (int i = 0; i < BG_FORKS; i++) {
        t_sleep_ms(2);
        pid_t pid = fork();
        if (pid < 0)
            FAIL("fork: %s", strerror(errno));
        if (pid == 0) {
            /* The library is usable in the child: its lock is free. */
            if (pthread_mutex_trylock(&bg_lock) != 0)
                _exit(T_CHILD_HUNG);
            pthread_cond_signal(&bg_cv);
            pthread_mutex_unlock(&bg_lock);
            void *p = malloc(100);
            free(p);
            _exit(0);
        }
        int st = t_wait(pid, 5000);
        if (st != 0)
            FAIL("child %d of %d: status %d", i + 1, BG_FORKS, st);
        done++;
    }
    if (atomic_load(&bg_prepared) != BG_FORKS || atomic_load(&bg_parent_done) != BG_FORKS)
        FAIL("handlers: prepare ran %d times, parent %d, for %d forks",
             atomic_load(&bg_prepared), atomic_load(&bg_parent_done), BG_FORKS);
    printf("%d of %d forks done, the library's handlers ran for each\n", done, BG_FORKS);
}

static void atfork_cond_reinit(void)
{
    bg_child_reinit = 1;
    watchdog("atfork_cond_reinit", 20);
    atfork_body();
}

static void atfork_cond_unlock(void)
{
    bg_child_reinit = 0;
    watchdog("atfork_cond_unlock", 20);
    atfork_body();
}

/* ---- a registered lock that a prepare handler takes too ---------------------------- */
/*
 * reg_lock is registered with fsafe (the walk takes it before the real fork)
 * and the library's own prepare handler locks it as well, then unlocks it in
 * the parent and re-initialises it in the child.  Auto mode's interposer
 * hands the walk's hold to the handler; with --no-auto there is no
 * interposer, and this deadlocks (src/README.md: "Handler order").
 */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int reg_prepared;

static void reg_prepare(void)
{
    pthread_mutex_lock(&reg_lock);
    atomic_fetch_add(&reg_prepared, 1);
}

static void reg_parent(void)
{
    if (pthread_mutex_unlock(&reg_lock) != 0)
        t_say("reg_parent: unlock failed\n");
}

static void reg_child(void)
{
    pthread_mutex_init(&reg_lock, NULL);
}

static void *reg_user(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&reg_lock);
        sink_work();
        pthread_mutex_unlock(&reg_lock);
    }
    return NULL;
}

static void atfork_registered(void)
{
    watchdog("atfork_registered", 20);
    int r = fsafe_opt_register_lock(&reg_lock, FSAFE_MUTEX, 10, "reg_lock");
    if (r != 0)
        FAIL("fsafe_register_lock: %d (run it under fsafe-run)", r);
    pthread_atfork(reg_prepare, reg_parent, reg_child);
    pthread_t t;
    pthread_create(&t, NULL, reg_user, NULL);
    for (int i = 0; i < BG_FORKS; i++) {
        pid_t pid = fork();
        if (pid < 0)
            FAIL("fork: %s", strerror(errno));
        if (pid == 0) {
            if (pthread_mutex_trylock(&reg_lock) != 0)
                _exit(T_CHILD_HUNG);
            _exit(0);
        }
        int st = t_wait(pid, 5000);
        if (st != 0)
            FAIL("child %d of %d: status %d", i + 1, BG_FORKS, st);
        t_sleep_ms(2);
    }
    CHECK_EQ(atomic_load(&reg_prepared), BG_FORKS);
    printf("%d forks: the walk's hold of reg_lock went to the prepare handler each time\n", BG_FORKS);
}

/* ---- jemalloc with its background thread (Debian's libjemalloc2, preloaded) --------- */
/*
 * jemalloc's prepare handler takes its background thread's mutex, which that
 * thread waits with in pthread_cond_timedwait: the real-library form of the
 * case above.  The test checks that jemalloc is the allocator and that its
 * background thread runs, so that it cannot pass without them.
 */
static void *malloc_churn_thread(void *arg)
{
    (void)arg;
    for (unsigned i = 0;; i++) {
        void *p = malloc(64 + (i % 512) * 64);
        free(p);
    }
    return NULL;
}

static void jemalloc_body(void)
{
    int (*mallctl)(const char *, void *, size_t *, void *, size_t) =
        (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(RTLD_DEFAULT, "mallctl");
    if (!mallctl)
        FAIL("jemalloc is not the allocator (no mallctl): preload Debian's libjemalloc.so.2");
    pthread_t t;
    pthread_create(&t, NULL, malloc_churn_thread, NULL);
    t_sleep_ms(50);
    _Bool bg = 0;
    size_t len = sizeof bg;
    if (mallctl("background_thread", &bg, &len, NULL, 0) != 0 || !bg)
        FAIL("jemalloc's background thread is off: set MALLOC_CONF=background_thread:true");
    int done = 0;
    for (int i = 0; i < BG_FORKS; i++) {
        pid_t pid = fork();
        if (pid < 0)
            FAIL("fork: %s", strerror(errno));
        if (pid == 0) {
            void *p = malloc(10);
            free(p);
            _exit(0);
        }
        int st = t_wait(pid, 5000);
        if (st != 0)
            FAIL("child %d of %d: status %d", i + 1, BG_FORKS, st);
        done++;
        t_sleep_ms(5);
    }
    printf("%d of %d forks done with jemalloc's background thread on\n", done, BG_FORKS);
}

/* jemalloc turns its background threads off in a forked child: this runs in
 * the test's own process. */
static void jemalloc_bg(void)
{
    watchdog("jemalloc_bg", 30);
    jemalloc_body();
}

/* ---- a lock built from a flag (libxml2's xmlRMutex shape) ------------------------- */
/*
 * acquire: lock m; wait while held; held = 1; unlock m.
 * release: lock m; held = 0; signal; unlock m.
 * A thread inside the logical critical section holds no pthread lock.  Thread
 * H is in it when the fork starts and releases it 1 ms later; meanwhile thread
 * B holds an unrelated mutex, so the fork has to wait, and B lets go only once
 * H has released the flag (or after 3 s).  Parked at m's lock call (fsafe
 * before issue 22), H never gets out and the child inherits held == 1; plain,
 * the fork lands at once, inside the section, and the child hangs too.  Now
 * m is a monitor's mutex (a thread has waited on it): H passes, and the child
 * finds the flag free.
 */
struct flag_lock {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int held;
};
static struct flag_lock fl = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void flag_acquire(struct flag_lock *l)
{
    pthread_mutex_lock(&l->m);
    while (l->held)
        pthread_cond_wait(&l->cv, &l->m);
    l->held = 1;
    pthread_mutex_unlock(&l->m);
}

static void flag_release(struct flag_lock *l)
{
    pthread_mutex_lock(&l->m);
    l->held = 0;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->m);
}

static pthread_mutex_t other_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int h_inside, b_holding, forking, h_released, warm_waiting;

static void *warm_waiter(void *arg)
{
    (void)arg;
    atomic_store(&warm_waiting, 1);
    flag_acquire(&fl); /* waits on fl.cv: fl.m is a monitor's mutex from now on */
    flag_release(&fl);
    return NULL;
}

static void *holder_h(void *arg)
{
    (void)arg;
    flag_acquire(&fl);
    atomic_store(&h_inside, 1);
    while (!atomic_load(&forking))
        t_sleep_ms(1);
    t_sleep_ms(50); /* plain, the fork has landed by now */
    flag_release(&fl);
    atomic_store(&h_released, 1);
    return NULL;
}

static void *busy_b(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&other_lock);
    atomic_store(&b_holding, 1);
    /* (The flag itself: under fsafe, H parks inside flag_release, after its
     * signal, and sets h_released only once the fork is over.) */
    for (int i = 0; i < 3000 && __atomic_load_n(&fl.held, __ATOMIC_ACQUIRE); i++)
        t_sleep_ms(1);
    pthread_mutex_unlock(&other_lock);
    return NULL;
}

/* Starts body, then waits until *flag says it is under way. */
static pthread_t start_until(void *(*body)(void *), atomic_int *flag)
{
    pthread_t t;
    pthread_create(&t, NULL, body, NULL);
    while (!atomic_load(flag))
        t_sleep_ms(1);
    return t;
}

/* Forks (announced through `forking`); the child takes the flag lock or is
 * killed by SIGALRM after 2 s.  Joins the threads, then judges the child's
 * status: under fsafe (ok) it must have taken the lock; plain, the fork
 * lands inside the logical critical section and the child must hang. */
static void fork_into_flag(pthread_t *threads, int n, const char *why)
{
    atomic_store(&forking, 1);
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        alarm(2);
        flag_acquire(&fl);
        _exit(0);
    }
    int st = t_wait(pid, 10000);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    if (expect_ok && st != 0)
        FAIL("the child could not take the flag lock (status %d): %s", st, why);
    if (!expect_ok && st == 0)
        FAIL("plain: the child took the flag lock, but the fork was meant to land inside "
             "the logical critical section");
    printf("child status %d (%s)\n", st, st == 0 ? "took the flag lock" : "hung on it");
}

static void flag_release_case(void)
{
    /* Warm up: a thread waits for the flag once. */
    flag_acquire(&fl);
    pthread_t w = start_until(warm_waiter, &warm_waiting);
    t_sleep_ms(20); /* it is in its condition wait */
    flag_release(&fl);
    pthread_join(w, NULL);

    pthread_t t[2];
    t[0] = start_until(holder_h, &h_inside);
    t[1] = start_until(busy_b, &b_holding);
    fork_into_flag(t, 2, "the fork landed inside the logical critical section");
}

/*
 * flag_signal: thread R holds the flag lock and thread W waits for it when
 * the fork starts (thread B holds an unrelated mutex for 100 ms, so the fork
 * has to wait).  1 ms later R releases the flag, signalling W, and at once
 * takes it again and keeps it for 2 s: without the rule that a thread which
 * signalled parks once it holds nothing, R wins the race back into the
 * flag, and the fork lands with it held (as plain, where it lands at once).
 * With it, R parks after its release, W takes the flag, releases it and
 * parks too, and the child finds the flag free.
 */
static atomic_int r_inside, w_waiting_flag, r_released;

static void *releaser_r(void *arg)
{
    (void)arg;
    flag_acquire(&fl);
    atomic_store(&r_inside, 1);
    while (!atomic_load(&forking))
        t_sleep_ms(1);
    t_sleep_ms(50); /* plain, the fork has landed by now */
    flag_release(&fl);
    flag_acquire(&fl);
    atomic_store(&r_released, 1);
    t_sleep_ms(2000);
    flag_release(&fl);
    return NULL;
}

static atomic_int w_got;

static void *waiter_w(void *arg)
{
    (void)arg;
    atomic_store(&w_waiting_flag, 1);
    flag_acquire(&fl);
    atomic_store(&w_got, 1);
    flag_release(&fl);
    return NULL;
}

/* Holds other_lock until W or R has taken the flag after R's release (and
 * 20 ms more, for W to let it go again), or 3 s: the race is over. */
static void *busy_b_until_w(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&other_lock);
    atomic_store(&b_holding, 1);
    for (int i = 0; i < 3000 && !(atomic_load(&w_got) || atomic_load(&r_released)); i++)
        t_sleep_ms(1);
    t_sleep_ms(20);
    pthread_mutex_unlock(&other_lock);
    return NULL;
}

static void flag_signal_case(void)
{
    pthread_t t[3];
    t[0] = start_until(releaser_r, &r_inside);
    t[1] = start_until(waiter_w, &w_waiting_flag);
    t_sleep_ms(20); /* W is in its condition wait: fl.m is a monitor's mutex */
    t[2] = start_until(busy_b_until_w, &b_holding);
    fork_into_flag(t, 3, "the releasing thread went back into the logical critical section "
                         "before the fork");
}

/*
 * signal_then_pipe: a thread that signals while the fork is open parks, but
 * not for the whole fork.  Thread A holds mutex X and reads a pipe; thread P
 * signals a condition (holding its mutex) and only then writes the pipe.
 * Parked after its signal until the fork ends, P would never write, A never
 * let go of X, and the fork would run into FSAFE_AUTO_WAIT_MS and report
 * X as stuck.  P goes on once the fork turns LATE (a quarter of the wait),
 * so the fork completes without a timeout.  stderr must not carry fsafe's
 * timeout report.
 */
static pthread_mutex_t sp_m = PTHREAD_MUTEX_INITIALIZER, sp_x = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sp_cv = PTHREAD_COND_INITIALIZER;
static int sp_pipe[2];
static atomic_int sp_a_holding;

static void *sp_a(void *arg)
{
    (void)arg;
    char c;
    pthread_mutex_lock(&sp_x);
    atomic_store(&sp_a_holding, 1);
    if (read(sp_pipe[0], &c, 1) != 1)
        t_say("sp_a: read failed\n");
    pthread_mutex_unlock(&sp_x);
    return NULL;
}

static void *sp_p(void *arg)
{
    (void)arg;
    while (!atomic_load(&forking))
        t_sleep_ms(1);
    t_sleep_ms(5);
    pthread_mutex_lock(&sp_m);
    pthread_cond_signal(&sp_cv);
    pthread_mutex_unlock(&sp_m);
    if (write(sp_pipe[1], "x", 1) != 1)
        t_say("sp_p: write failed\n");
    return NULL;
}

static void signal_then_pipe(void)
{
    char path[] = "/tmp/fsafe-test-compose-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || pipe(sp_pipe) != 0)
        FAIL("mkstemp/pipe: %s", strerror(errno));
    unlink(path);
    /* sp_m is a monitor's mutex: it has been used in a condition wait. */
    struct timespec ts;
    t_deadline(&ts, 1);
    pthread_mutex_lock(&sp_m);
    pthread_cond_timedwait(&sp_cv, &sp_m, &ts);
    pthread_mutex_unlock(&sp_m);
    pthread_t a, p;
    pthread_create(&a, NULL, sp_a, NULL);
    while (!atomic_load(&sp_a_holding))
        t_sleep_ms(1);
    pthread_create(&p, NULL, sp_p, NULL);
    int saved = dup(2);
    dup2(fd, 2);
    atomic_store(&forking, 1);
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    dup2(saved, 2);
    int st = t_wait(pid, 10000);
    pthread_join(a, NULL);
    pthread_join(p, NULL);
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    fputs(buf, stdout);
    if (st != 0)
        FAIL("child status %d", st);
    if (strstr(buf, "FSAFE_AUTO_WAIT_MS"))
        FAIL("the fork ran out its wait: the thread that signalled stayed parked");
    printf("the fork completed without running out its wait\n");
}

/* ---- the report: holders and waiters -------------------------------------------------- */
/*
 * Thread A holds mutex X; threads B and C are blocked in pthread_mutex_lock(X)
 * when the fork starts.  The verbose report must name A as the holder, once,
 * and B and C as waiting for it, not as holders.
 */
static pthread_mutex_t x_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int a_tid, waiters_in, a_let_go;

static void *x_holder(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&x_lock);
    atomic_store(&a_tid, (int)syscall(SYS_gettid));
    while (!atomic_load(&a_let_go))
        t_sleep_ms(1);
    t_sleep_ms(30);
    pthread_mutex_unlock(&x_lock);
    return NULL;
}

static void *x_waiter(void *arg)
{
    (void)arg;
    atomic_fetch_add(&waiters_in, 1);
    pthread_mutex_lock(&x_lock);
    t_sleep_ms(1);
    pthread_mutex_unlock(&x_lock);
    return NULL;
}

static void report_waiters(void)
{
    char path[] = "/tmp/fsafe-test-compose-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        FAIL("mkstemp: %s", strerror(errno));
    unlink(path);
    int saved = dup(2);
    dup2(fd, 2);
    pthread_t a, b, c;
    pthread_create(&a, NULL, x_holder, NULL);
    while (!atomic_load(&a_tid))
        t_sleep_ms(1);
    pthread_create(&b, NULL, x_waiter, NULL);
    pthread_create(&c, NULL, x_waiter, NULL);
    while (atomic_load(&waiters_in) < 2)
        t_sleep_ms(1);
    t_sleep_ms(20); /* both are blocked in the lock call */
    atomic_store(&a_let_go, 1);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(&x_lock);
        _exit(0);
    }
    int st = t_wait(pid, 5000);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    pthread_join(c, NULL);
    dup2(saved, 2);
    if (st != 0)
        FAIL("child status %d", st);
    char buf[8192];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    fputs(buf, stdout);
    char held[64];
    snprintf(held, sizeof held, "held by thread %d,", atomic_load(&a_tid));
    int holder_lines = 0, held_lines = 0, wanted_lines = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, "x_lock"))
            continue;
        if (strstr(line, " held by thread "))
            held_lines++;
        if (strstr(line, held))
            holder_lines++;
        if (strstr(line, " wanted by thread "))
            wanted_lines++;
    }
    if (expect_ok) {
        CHECK_EQ(holder_lines, 1);
        CHECK_EQ(held_lines, 1);
        CHECK(wanted_lines >= 1 && wanted_lines <= 2);
    }
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"atfork_cond_reinit", atfork_cond_reinit},
        {"atfork_cond_unlock", atfork_cond_unlock},
        {"jemalloc_bg", jemalloc_bg},
        {"atfork_registered", atfork_registered},
        {"flag_release", flag_release_case},
        {"flag_signal", flag_signal_case},
        {"signal_then_pipe", signal_then_pipe},
        {"report_waiters", report_waiters},
    };
    if (argc == 3) {
        expect_ok = strcmp(argv[2], "ok") == 0;
        argc = 2;
    }
    return T_RUN_CASES(cases, argc, argv);
}
