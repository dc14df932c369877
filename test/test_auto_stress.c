/* SPDX-License-Identifier: MIT */
/*
 * Auto mode under load: 8 threads take and release random subsets of 16
 * locks of every tracked kind (normal, recursive and errorcheck mutexes,
 * rwlocks read and write, spinlocks, condition waits with timeouts, trylocks,
 * timed locks, C11 mtx_t), always in one global order, while the main thread
 * and a second thread fork again and again, sometimes holding a prefix of the
 * order themselves.  Every child must take every lock (each with a deadline:
 * a hang is a failure) and exit 0; the parent must never stop making progress;
 * and fsafe must say nothing on stderr (FSAFE_AUTO_WAIT_MS is set high: a
 * bounded-wait message means the protocol lost track of a hold).
 *
 *   test_auto_stress <seconds>     run with libfsafe-auto.so preloaded
 */
#include "common.h"

#include <fcntl.h>
#include <stdint.h>
#include <threads.h>

#define WORKERS 8
#define NLOCKS 16
#define CHILD_MS 20000     /* a child killed after this counts as hung */
#define CHILD_LOCK_MS 5000 /* each lock the child takes, at most */
#define STALL_S 60         /* no fork completed for this long: the parent is stuck */

/* The global order is the index.  Kinds by index: */
enum kind { K_MUTEX, K_RECURSIVE, K_ERRCHECK, K_RWLOCK, K_SPIN, K_COND, K_TIMED, K_C11 };
static const enum kind kinds[NLOCKS] = {
    K_MUTEX,  K_MUTEX,  K_MUTEX, K_RECURSIVE, K_RECURSIVE, K_ERRCHECK, K_ERRCHECK, K_RWLOCK,
    K_RWLOCK, K_RWLOCK, K_SPIN,  K_SPIN,      K_COND,      K_COND,     K_TIMED,    K_C11,
};
/* Forkers hold a prefix [0, n) of the order, n <= FORKER_MAX: no worker can
 * then hold a lock below one it waits for from a forker. */
#define FORKER_MAX 10

static struct {
    pthread_mutex_t m;
    pthread_rwlock_t rw;
    pthread_spinlock_t s;
    pthread_cond_t cv;
    mtx_t c11;
    int inside;  /* exclusive holders right now (checked == 1) */
    int readers; /* rwlock readers right now */
} L[NLOCKS];

static int stop;
static uint64_t worker_rounds, waits, timeouts;
static uint64_t forks[2], children_ok;
static uint64_t last_progress;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static unsigned rnd(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void init_locks(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    for (int i = 0; i < NLOCKS; i++) {
        int type = kinds[i] == K_RECURSIVE  ? PTHREAD_MUTEX_RECURSIVE
                   : kinds[i] == K_ERRCHECK ? PTHREAD_MUTEX_ERRORCHECK
                                            : PTHREAD_MUTEX_NORMAL;
        pthread_mutexattr_settype(&a, type);
        CHECK(pthread_mutex_init(&L[i].m, &a) == 0);
        CHECK(pthread_rwlock_init(&L[i].rw, NULL) == 0);
        CHECK(pthread_spin_init(&L[i].s, PTHREAD_PROCESS_PRIVATE) == 0);
        CHECK(pthread_cond_init(&L[i].cv, NULL) == 0);
        CHECK(mtx_init(&L[i].c11, mtx_timed) == thrd_success);
    }
    pthread_mutexattr_destroy(&a);
}

static void enter_excl(int i)
{
    if (__atomic_add_fetch(&L[i].inside, 1, __ATOMIC_ACQ_REL) != 1 ||
        __atomic_load_n(&L[i].readers, __ATOMIC_ACQUIRE) != 0)
        FAIL("lock %d: two holders at once", i);
}

static void leave_excl(int i)
{
    __atomic_sub_fetch(&L[i].inside, 1, __ATOMIC_ACQ_REL);
}

/* ---- workers ------------------------------------------------------------------------- */
/* What a worker holds of lock i: 0 none, else the count (recursive), or -1
 * for a read hold of an rwlock. */
struct held {
    int n[NLOCKS];
};

static void deadline(struct timespec *ts, long us)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += us * 1000;
    while (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Takes lock i in one of its ways; 1 when held. */
static int take(int i, unsigned *seed, struct held *h)
{
    struct timespec ts;
    unsigned how = rnd(seed) % 3;
    int r;
    switch (kinds[i]) {
    case K_MUTEX:
    case K_COND:
        r = how == 0 ? pthread_mutex_trylock(&L[i].m) : pthread_mutex_lock(&L[i].m);
        if (r == EBUSY)
            return 0;
        CHECK_EQ(r, 0);
        enter_excl(i);
        h->n[i] = 1;
        return 1;
    case K_ERRCHECK:
        if (how == 0)
            r = pthread_mutex_trylock(&L[i].m);
        else if (how == 1) {
            deadline(&ts, 500);
            r = pthread_mutex_timedlock(&L[i].m, &ts);
        } else
            r = pthread_mutex_lock(&L[i].m);
        if (r == EBUSY || r == ETIMEDOUT)
            return 0;
        CHECK_EQ(r, 0);
        enter_excl(i);
        /* A second lock is an error the wrapper must give back untracked. */
        if ((rnd(seed) & 7) == 0)
            CHECK_EQ(pthread_mutex_lock(&L[i].m), EDEADLK);
        h->n[i] = 1;
        return 1;
    case K_RECURSIVE: {
        int depth = 1 + (int)(rnd(seed) % 3);
        for (int k = 0; k < depth; k++) {
            r = how == 0 && k == 0 ? pthread_mutex_trylock(&L[i].m) : pthread_mutex_lock(&L[i].m);
            if (r == EBUSY)
                return 0;
            CHECK_EQ(r, 0);
            if (k == 0)
                enter_excl(i);
        }
        h->n[i] = depth;
        return 1;
    }
    case K_RWLOCK: {
        int write = rnd(seed) & 1;
        if (how == 0)
            r = write ? pthread_rwlock_trywrlock(&L[i].rw) : pthread_rwlock_tryrdlock(&L[i].rw);
        else if (how == 1) {
            deadline(&ts, 500);
            r = write ? pthread_rwlock_timedwrlock(&L[i].rw, &ts)
                      : pthread_rwlock_timedrdlock(&L[i].rw, &ts);
        } else
            r = write ? pthread_rwlock_wrlock(&L[i].rw) : pthread_rwlock_rdlock(&L[i].rw);
        if (r == EBUSY || r == ETIMEDOUT)
            return 0;
        CHECK_EQ(r, 0);
        if (write) {
            enter_excl(i);
            h->n[i] = 1;
        } else {
            __atomic_add_fetch(&L[i].readers, 1, __ATOMIC_ACQ_REL);
            if (__atomic_load_n(&L[i].inside, __ATOMIC_ACQUIRE) != 0)
                FAIL("rwlock %d: a reader beside a writer", i);
            h->n[i] = -1;
        }
        return 1;
    }
    case K_SPIN:
        r = how == 0 ? pthread_spin_trylock(&L[i].s) : pthread_spin_lock(&L[i].s);
        if (r == EBUSY)
            return 0;
        CHECK_EQ(r, 0);
        enter_excl(i);
        h->n[i] = 1;
        return 1;
    case K_TIMED:
        deadline(&ts, 1000);
        r = pthread_mutex_timedlock(&L[i].m, &ts);
        if (r == ETIMEDOUT)
            return 0;
        CHECK_EQ(r, 0);
        enter_excl(i);
        h->n[i] = 1;
        return 1;
    case K_C11:
        if (how == 0)
            r = mtx_trylock(&L[i].c11);
        else if (how == 1) {
            deadline(&ts, 1000);
            r = mtx_timedlock(&L[i].c11, &ts);
        } else
            r = mtx_lock(&L[i].c11);
        if (r == thrd_busy || r == thrd_timedout)
            return 0;
        CHECK_EQ(r, thrd_success);
        enter_excl(i);
        h->n[i] = 1;
        return 1;
    }
    return 0;
}

static void give(int i, struct held *h)
{
    int n = h->n[i];
    h->n[i] = 0;
    switch (kinds[i]) {
    case K_RWLOCK:
        if (n < 0)
            __atomic_sub_fetch(&L[i].readers, 1, __ATOMIC_ACQ_REL);
        else
            leave_excl(i);
        CHECK_EQ(pthread_rwlock_unlock(&L[i].rw), 0);
        return;
    case K_SPIN:
        leave_excl(i);
        CHECK_EQ(pthread_spin_unlock(&L[i].s), 0);
        return;
    case K_C11:
        leave_excl(i);
        CHECK_EQ(mtx_unlock(&L[i].c11), thrd_success);
        return;
    default:
        leave_excl(i);
        for (int k = 0; k < n; k++)
            CHECK_EQ(pthread_mutex_unlock(&L[i].m), 0);
        return;
    }
}

/* Inside a condition lock: wait a little for a signal, or send one. */
static void cond_step(int i, unsigned *seed)
{
    if (rnd(seed) & 1) {
        pthread_cond_signal(&L[i].cv);
        return;
    }
    struct timespec ts;
    deadline(&ts, 200 + rnd(seed) % 2000);
    leave_excl(i);
    int r = pthread_cond_timedwait(&L[i].cv, &L[i].m, &ts);
    if (r != 0 && r != ETIMEDOUT)
        FAIL("pthread_cond_timedwait: %d", r);
    enter_excl(i);
    __atomic_add_fetch(r ? &timeouts : &waits, 1, __ATOMIC_RELAXED);
}

static void spin_a_little(unsigned n)
{
    for (volatile unsigned k = 0; k < n; k++) {
    }
}

static void *worker(void *arg)
{
    unsigned seed = 0x9e3779b9u * (unsigned)(uintptr_t)arg + 1;
    struct held h;
    memset(&h, 0, sizeof h);
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        unsigned set = rnd(&seed) & ((1u << NLOCKS) - 1);
        int got[NLOCKS], ngot = 0;
        for (int i = 0; i < NLOCKS; i++) {
            if (!(set & (1u << i)) || !take(i, &seed, &h))
                continue;
            got[ngot++] = i;
            if (kinds[i] == K_COND)
                cond_step(i, &seed);
            else if (kinds[i] != K_SPIN)
                spin_a_little(rnd(&seed) % 200);
        }
        while (ngot > 0)
            give(got[--ngot], &h);
        __atomic_add_fetch(&worker_rounds, 1, __ATOMIC_RELAXED);
        if ((rnd(&seed) & 15) == 0)
            sched_yield();
    }
    return NULL;
}

/* ---- children ------------------------------------------------------------------------------ */
static void child_deadline(struct timespec *ts)
{
    deadline(ts, CHILD_LOCK_MS * 1000L);
}

/* In the child: gives back the prefix the forker held (the child's thread
 * holds it now), then takes and releases every lock, each within a deadline.
 * Exit status: 0, 10+i when lock i could not be taken, 40+i when a hold of
 * the forker's could not be released. */
static int child_check(const struct held *mine)
{
    struct held h = *mine;
    for (int i = NLOCKS - 1; i >= 0; i--) {
        int n = h.n[i];
        if (!n)
            continue;
        int bad = 0;
        if (kinds[i] == K_RWLOCK)
            bad = pthread_rwlock_unlock(&L[i].rw) != 0;
        else
            for (int k = 0; k < n; k++)
                bad |= pthread_mutex_unlock(&L[i].m) != 0;
        if (bad)
            return 40 + i;
    }
    struct timespec ts;
    for (int i = 0; i < NLOCKS; i++) {
        child_deadline(&ts);
        switch (kinds[i]) {
        case K_RWLOCK:
            if (pthread_rwlock_timedwrlock(&L[i].rw, &ts) != 0)
                return 10 + i;
            if (pthread_rwlock_unlock(&L[i].rw) != 0)
                return 10 + i;
            break;
        case K_SPIN: {
            int ok = 0;
            for (long k = 0; k < CHILD_LOCK_MS && !ok; k++) {
                ok = pthread_spin_trylock(&L[i].s) == 0;
                if (!ok)
                    t_sleep_ms(1);
            }
            if (!ok || pthread_spin_unlock(&L[i].s) != 0)
                return 10 + i;
            break;
        }
        case K_C11:
            if (mtx_timedlock(&L[i].c11, &ts) != thrd_success || mtx_unlock(&L[i].c11) != thrd_success)
                return 10 + i;
            break;
        case K_COND: {
            if (pthread_mutex_timedlock(&L[i].m, &ts) != 0)
                return 10 + i;
            pthread_cond_signal(&L[i].cv);
            pthread_cond_broadcast(&L[i].cv);
            deadline(&ts, 1000);
            int r = pthread_cond_timedwait(&L[i].cv, &L[i].m, &ts);
            /* 0 too: POSIX allows a spurious wakeup (seen once in 4 TSan runs,
             * where TSan keeps its own state beside each condition variable). */
            if (pthread_mutex_unlock(&L[i].m) != 0)
                return 10 + i;
            if (r != ETIMEDOUT && r != 0)
                return 60 + i;
            break;
        }
        default:
            if (pthread_mutex_timedlock(&L[i].m, &ts) != 0)
                return 10 + i;
            if (kinds[i] == K_RECURSIVE && pthread_mutex_lock(&L[i].m) != 0)
                return 10 + i;
            if (kinds[i] == K_RECURSIVE && pthread_mutex_unlock(&L[i].m) != 0)
                return 10 + i;
            if (pthread_mutex_unlock(&L[i].m) != 0)
                return 10 + i;
            break;
        }
    }
    return 0;
}

/* What a child's status from child_check means. */
static const char *child_verdict(int st)
{
    if (st == T_TIMEOUT)
        return "hung";
    if (st >= 60 && st < 60 + NLOCKS)
        return "a condition wait failed";
    if (st >= 40 && st < 40 + NLOCKS)
        return "own hold not released";
    if (st >= 10 && st < 10 + NLOCKS)
        return "a lock stayed taken";
    return "died or failed otherwise";
}

/* Forks once, holding a random prefix of the order now and then; checks the
 * child. */
static void fork_once(int who, unsigned *seed)
{
    struct held h;
    memset(&h, 0, sizeof h);
    int n = (rnd(seed) & 3) == 0 ? (int)(rnd(seed) % (FORKER_MAX + 1)) : 0;
    int got[NLOCKS], ngot = 0;
    for (int i = 0; i < n; i++) {
        /* Blocking ways only: a prefix with gaps would break the order rule. */
        struct timespec ts;
        int r = 0;
        switch (kinds[i]) {
        case K_RWLOCK:
            /* A read hold only last: a worker sharing one inside the prefix
             * could block on the next lock with it held, and a fork cannot
             * end that wait (it reaches the bound, by design). */
            if (i < n - 1 || (rnd(seed) & 1)) {
                r = pthread_rwlock_wrlock(&L[i].rw);
                enter_excl(i);
                h.n[i] = 1;
            } else {
                r = pthread_rwlock_rdlock(&L[i].rw);
                __atomic_add_fetch(&L[i].readers, 1, __ATOMIC_ACQ_REL);
                h.n[i] = -1;
            }
            break;
        case K_RECURSIVE:
            h.n[i] = 1 + (int)(rnd(seed) % 2);
            for (int k = 0; k < h.n[i]; k++)
                r |= pthread_mutex_lock(&L[i].m);
            enter_excl(i);
            break;
        default:
            deadline(&ts, 60 * 1000000L);
            r = pthread_mutex_timedlock(&L[i].m, &ts);
            enter_excl(i);
            h.n[i] = 1;
            break;
        }
        CHECK_EQ(r, 0);
        got[ngot++] = i;
    }
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(child_check(&h));
    while (ngot > 0)
        give(got[--ngot], &h);
    int st = t_wait(pid, CHILD_MS);
    if (st != 0)
        FAIL("forker %d, fork %llu (holding %d locks): child status %d (%s)", who,
             (unsigned long long)forks[who], n, st,
             child_verdict(st));
    __atomic_add_fetch(&forks[who], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&children_ok, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&last_progress, now_ms(), __ATOMIC_RELEASE);
}

static void *second_forker(void *arg)
{
    (void)arg;
    unsigned seed = 77;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        t_sleep_ms(1 + rnd(&seed) % 20);
        fork_once(1, &seed);
    }
    return NULL;
}

static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        t_sleep_ms(1000);
        if (now_ms() - __atomic_load_n(&last_progress, __ATOMIC_ACQUIRE) > STALL_S * 1000u) {
            printf("FAIL: no fork completed for %d s: the parent is stuck\n", STALL_S);
            exit(1); /* shows what fsafe said */
        }
    }
    return NULL;
}

/* ---- stderr capture --------------------------------------------------------------------- */
static char err_path[] = "/tmp/fsafe-test-auto-stress-XXXXXX";

static int err_shown;

/* The captured text, on stdout (at exit too: a FAIL went to the file). */
static ssize_t show_stderr(void)
{
    static char buf[8192];
    if (err_shown++)
        return 0;
    int fd = open(err_path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    unlink(err_path);
    buf[n > 0 ? n : 0] = '\0';
    if (n > 0)
        printf("--- stderr:\n%s---\n", buf);
    return n;
}

static void show_at_exit(void)
{
    (void)show_stderr();
}

static void capture_stderr(void)
{
    int fd = mkstemp(err_path);
    CHECK(fd >= 0);
    CHECK(dup2(fd, 2) == 2);
    close(fd);
    atexit(show_at_exit);
}

static void check_quiet(void)
{
    if (show_stderr() > 0) {
        dup2(1, 2);
        FAIL("fsafe (or the test) wrote to stderr: see above");
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    long seconds = argc > 1 ? atol(argv[1]) : 20;
    if (seconds <= 0)
        seconds = 20;
    const char *wait = getenv("FSAFE_AUTO_WAIT_MS");
    if (!wait || atol(wait) < 1000)
        FAIL("run with FSAFE_AUTO_WAIT_MS >= 1000 (a bound message must mean a lost hold)");
    capture_stderr();
    init_locks();
    __atomic_store_n(&last_progress, now_ms(), __ATOMIC_RELEASE);
    pthread_t t[WORKERS + 2];
    for (long i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(i + 1)) == 0);
    CHECK(pthread_create(&t[WORKERS], NULL, second_forker, NULL) == 0);
    pthread_t wd;
    CHECK(pthread_create(&wd, NULL, watchdog, NULL) == 0);
    pthread_detach(wd);

    unsigned seed = 12345;
    uint64_t end = now_ms() + (uint64_t)seconds * 1000u;
    while (now_ms() < end) {
        fork_once(0, &seed);
        if ((rnd(&seed) & 3) == 0)
            t_sleep_ms(1);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i <= WORKERS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    /* Every lock is free again in the parent. */
    for (int i = 0; i < NLOCKS; i++) {
        CHECK(pthread_mutex_trylock(&L[i].m) == 0);
        pthread_mutex_unlock(&L[i].m);
        CHECK(pthread_rwlock_trywrlock(&L[i].rw) == 0);
        pthread_rwlock_unlock(&L[i].rw);
        CHECK(pthread_spin_trylock(&L[i].s) == 0);
        pthread_spin_unlock(&L[i].s);
    }
    printf("%lld s: %llu forks (main %llu, second %llu), %llu children ok, %llu worker rounds, "
           "%llu cond waits signalled, %llu timed out\n",
           (long long)seconds, (unsigned long long)(forks[0] + forks[1]),
           (unsigned long long)forks[0], (unsigned long long)forks[1],
           (unsigned long long)children_ok, (unsigned long long)worker_rounds,
           (unsigned long long)waits, (unsigned long long)timeouts);
    check_quiet();
    return 0;
}
