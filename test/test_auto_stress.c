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
 * --soak (issue 25) adds, beside the workers: two threads using semaphores
 * as locks (wait/post by one thread) and as a counter (one posts, the other
 * waits); two threads calling every gated libc family (time zone, the
 * environment, syslog, iconv, locale, NSS, the resolver, the loader:
 * dl_iterate_phdr, dladdr, dlopen and dlclose of a bare name); a thread that
 * starts short-lived threads that lock and exit; a thread that sends SIGUSR1
 * to the workers, whose handler takes a spinlock and posts the counter.
 * Each child also takes the semaphore locks, calls every family once, and
 * one child in eight forks a grandchild that checks the same.  It counts
 * instead of stopping at the first bad child, and reports forks, hung and
 * failed children, a stuck parent (no fork completed for STALL_S), and the
 * longest fork (the parent's fork() call).  --register also registers every
 * other mutex with fsafe (rank = its index), for the registered walk.
 *
 *   test_auto_stress SECONDS [--soak] [--register] [--forks N] [--expect-bad]
 *                    [--tolerate-per-10k N]
 *     run with libfsafe-auto.so preloaded; --forks N: stop after N forks
 *     (SECONDS then only bounds the run); --expect-bad: the run without
 *     fsafe, which passes once a child hangs or fails; --tolerate-per-10k N:
 *     pass with up to N bad (hung or failed) children per 10,000 forks, and
 *     at least 1 (default 0: none; the soak in CI: test/README.md, "Soak")
 */
#ifndef FSAFE_OPTIONAL
#define FSAFE_OPTIONAL
#endif
#include "common.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <iconv.h>
#include <link.h>
#include <locale.h>
#include <netdb.h>
#include <pwd.h>
#include <semaphore.h>
#include <stdint.h>
#include <syslog.h>
#include <threads.h>

#include "fsafe.h"

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
static int soak, registered, expect_bad;
static uint64_t hung, failed, longest_fork_us;
static char first_bad[256];
static uint64_t sem_rounds, libc_rounds, threads_churned, signals_sent, signals_handled;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t now_ms(void)
{
    return now_us() / 1000u;
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

/* Who the parent's threads are, for a bad child's line (kernel thread ids). */
static pid_t worker_tid[WORKERS];
#define NSHORT 64
static pid_t short_tid[NSHORT];
static pid_t forker_tid[2]; /* the two forking threads (say_owner) */
static unsigned short_next;

static void *worker(void *arg)
{
    unsigned seed = 0x9e3779b9u * (unsigned)(uintptr_t)arg + 1;
    __atomic_store_n(&worker_tid[(uintptr_t)arg - 1], gettid(), __ATOMIC_RELEASE);
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

/* In a bad child: which of the parent's threads a mutex names as its owner,
 * on stdout (write(2) only: the child of a multithreaded fork). */
static void say_owner(int i)
{
    char b[128];
    int n = 0;
    const char *head = "bad child: lock ";
    while (*head)
        b[n++] = *head++;
    b[n++] = (char)('0' + i / 10), b[n++] = (char)('0' + i % 10);
    pid_t o = L[i].m.__data.__owner;
    if (kinds[i] == K_RWLOCK) { /* glibc: the writer's id; readers counted from bit 3 */
        unsigned r = L[i].rw.__data.__readers;
        o = (r & 2u) ? L[i].rw.__data.__cur_writer : 0;
        const char *rd = (r >> 3) ? " (read-held)" : (r & 2u) ? " (write-held)" : " (free?)";
        while (*rd)
            b[n++] = *rd++;
    }
    const char *who = " owned by an unknown thread\n";
    for (int k = 0; k < 2; k++)
        if (o && forker_tid[k] == o)
            who = k ? " owned by forker 1\n" : " owned by forker 0\n";
    for (int k = 0; k < WORKERS; k++)
        if (o && worker_tid[k] == o)
            who = " owned by a worker\n";
    for (int k = 0; k < NSHORT; k++)
        if (o && short_tid[k] == o)
            who = " owned by a short-lived thread\n";
    if (o == 0)
        who = " names no owner\n";
    while (*who)
        b[n++] = *who++;
    (void)!write(1, b, (size_t)n);
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
            if (pthread_rwlock_timedwrlock(&L[i].rw, &ts) != 0) {
                say_owner(i);
                return 10 + i;
            }
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
            if (pthread_mutex_timedlock(&L[i].m, &ts) != 0) {
                say_owner(i);
                return 10 + i;
            }
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

/* ---- the soak's other activities (--soak) --------------------------------------------- */
static int count_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info, (void)size;
    ++*(int *)data;
    return 0;
}

#define NSEM 2
static sem_t sem_lock[NSEM]; /* value 1: used as locks, wait and post by one thread */
static int sem_inside[NSEM];
static sem_t sem_count;      /* a counter: posted by one thread (and handlers), waited by another */
static pthread_spinlock_t sig_spin; /* taken only by signal handlers */

static void sem_enter(int k)
{
    if (__atomic_add_fetch(&sem_inside[k], 1, __ATOMIC_ACQ_REL) != 1)
        FAIL("semaphore %d: two holders at once", k);
}

static void *sem_worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    unsigned seed = 0x51ed27u + (unsigned)me;
    struct timespec ts;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        int k = (int)(rnd(&seed) % NSEM), r;
        unsigned how = rnd(&seed) % 3;
        if (how == 0)
            r = sem_trywait(&sem_lock[k]);
        else if (how == 1) {
            deadline(&ts, 1000);
            r = sem_timedwait(&sem_lock[k], &ts);
        } else
            r = sem_wait(&sem_lock[k]);
        if (r == 0) {
            sem_enter(k);
            spin_a_little(rnd(&seed) % 300);
            __atomic_sub_fetch(&sem_inside[k], 1, __ATOMIC_ACQ_REL);
            CHECK_EQ(sem_post(&sem_lock[k]), 0);
        } else if (errno != EAGAIN && errno != ETIMEDOUT && errno != EINTR) {
            FAIL("sem wait: %s", strerror(errno));
        }
        if (me == 0) {
            int v = 0;
            sem_getvalue(&sem_count, &v);
            if (v < 1000)
                CHECK_EQ(sem_post(&sem_count), 0);
        } else {
            deadline(&ts, 200);
            (void)sem_timedwait(&sem_count, &ts);
        }
        __atomic_add_fetch(&sem_rounds, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* One call of each gated libc family; 0, or the family's number + 1 when a
 * call failed.  Also what each child calls. */
static int libc_round(unsigned which)
{
    time_t now = time(NULL);
    struct tm tm;
    switch (which % 10) {
    case 0:
        return localtime_r(&now, &tm) && gmtime_r(&now, &tm) ? 0 : 1;
    case 1:
        /* An existing variable: glibc replaces the pointer, never the array. */
        return setenv("FSAFE_SOAK_VAR", which & 16 ? "a" : "b", 1) == 0 &&
                       getenv("FSAFE_SOAK_VAR")
                   ? 0
                   : 2;
    case 2:
        syslog(LOG_DEBUG, "fsafe soak %u", which); /* masked in main */
        return 0;
    case 3: {
        iconv_t cd = iconv_open("UTF-16", "UTF-8");
        if (cd == (iconv_t)-1)
            return 4;
        char in[] = "soak", out[32], *ip = in, *op = out;
        size_t il = 4, ol = sizeof out;
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        iconv_close(cd);
        return r == (size_t)-1 ? 4 : 0;
    }
    case 4: {
        locale_t l = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        if (!l)
            return 5;
        freelocale(l);
        return 0;
    }
    case 5: {
        struct passwd pw, *res = NULL;
        char buf[1024];
        return getpwnam_r("root", &pw, buf, sizeof buf, &res) == 0 && res ? 0 : 6;
    }
    case 6: {
        struct addrinfo hints, *ai = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        int r = getaddrinfo("localhost", "80", &hints, &ai);
        if (ai)
            freeaddrinfo(ai);
        return r == 0 ? 0 : 7;
    }
    case 7: {
        int n = 0;
        dl_iterate_phdr(count_object, &n);
        return n > 1 ? 0 : 8;
    }
    case 8: {
        Dl_info di;
        return dladdr((void *)libc_round, &di) ? 0 : 9;
    }
    default: {
#ifdef FSAFE_SOAK_NO_DLOPEN
        return 0;
#endif
        void *h = dlopen("libm.so.6", RTLD_NOW);
        if (!h || !dlsym(h, "cos"))
            return 10;
        return dlclose(h) == 0 ? 0 : 10;
    }
    }
}

static void *libc_worker(void *arg)
{
    unsigned seed = 0xc0ffeeu + (unsigned)(uintptr_t)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        int r = libc_round(rnd(&seed));
        if (r)
            FAIL("libc family %d failed in the parent", r - 1);
        __atomic_add_fetch(&libc_rounds, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* Short-lived threads: each takes two locks in the order, then exits. */
static void *short_lived(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    struct held h;
    memset(&h, 0, sizeof h);
    __atomic_store_n(&short_tid[__atomic_fetch_add(&short_next, 1, __ATOMIC_RELAXED) % NSHORT],
                     gettid(), __ATOMIC_RELAXED);
    int a = (int)(rnd(&seed) % NLOCKS), b = (int)(rnd(&seed) % NLOCKS);
    int lo = a < b ? a : b, hi = a < b ? b : a, got[2], n = 0;
    if (take(lo, &seed, &h))
        got[n++] = lo;
    if (hi != lo && take(hi, &seed, &h))
        got[n++] = hi;
    while (n > 0)
        give(got[--n], &h);
    return NULL;
}

static void *churner(void *arg)
{
    (void)arg;
    unsigned seed = 4242;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        pthread_t t;
        if (pthread_create(&t, NULL, short_lived, (void *)(uintptr_t)(rnd(&seed) | 1)) == 0) {
            pthread_join(t, NULL);
            __atomic_add_fetch(&threads_churned, 1, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

static void on_usr1(int sig)
{
    (void)sig;
    int saved = errno;
    pthread_spin_lock(&sig_spin);
    __atomic_add_fetch(&signals_handled, 1, __ATOMIC_RELAXED);
    pthread_spin_unlock(&sig_spin);
    sem_post(&sem_count);
    errno = saved;
}

static pthread_t *signal_targets;
static int nsignal_targets;

static void *signaller(void *arg)
{
    (void)arg;
    unsigned seed = 99;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        pthread_kill(signal_targets[rnd(&seed) % (unsigned)nsignal_targets], SIGUSR1);
        __atomic_add_fetch(&signals_sent, 1, __ATOMIC_RELAXED);
        struct timespec ts = {0, 200 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void soak_init(void)
{
    for (int k = 0; k < NSEM; k++)
        CHECK(sem_init(&sem_lock[k], 0, 1) == 0);
    CHECK(sem_init(&sem_count, 0, 0) == 0);
    CHECK(pthread_spin_init(&sig_spin, PTHREAD_PROCESS_PRIVATE) == 0);
    CHECK(setenv("FSAFE_SOAK_VAR", "b", 1) == 0);
    setlogmask(LOG_MASK(LOG_EMERG));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    for (int k = 0; k < 10; k++) /* warm up: modules and files loaded once */
        CHECK_EQ(libc_round((unsigned)k), 0);
}

/* In a child of the soak: the semaphore locks (posted by fsafe if another
 * thread held them), the handlers' spinlock, and one call of each family.
 * 0, 70+k for semaphore k, 80 for the spinlock, 90+f for family f. */
static int soak_child(void)
{
    struct timespec ts;
    for (int k = 0; k < NSEM; k++) {
        deadline(&ts, CHILD_LOCK_MS * 1000L);
        if (sem_timedwait(&sem_lock[k], &ts) != 0)
            return 70 + k;
        sem_post(&sem_lock[k]);
    }
    int ok = 0;
    for (long k = 0; k < CHILD_LOCK_MS && !ok; k++) {
        ok = pthread_spin_trylock(&sig_spin) == 0;
        if (!ok)
            t_sleep_ms(1);
    }
    if (!ok)
        return 80;
    pthread_spin_unlock(&sig_spin);
    for (unsigned f = 0; f < 10; f++) {
        int r = libc_round(f);
        if (r)
            return 90 + r - 1;
    }
    return 0;
}

/* What a child's status from child_check means. */
static const char *child_verdict(int st)
{
    if (st == T_TIMEOUT)
        return "hung";
    if (st >= 70 && st < 70 + NSEM)
        return "a semaphore lock stayed taken";
    if (st == 80)
        return "the signal handlers' spinlock stayed taken";
    if (st >= 90 && st < 100)
        return "a libc family failed";
    if (st == 100)
        return "a grandchild hung or failed";
    if (st >= 60 && st < 60 + NLOCKS)
        return "a condition wait failed";
    if (st >= 40 && st < 40 + NLOCKS)
        return "own hold not released";
    if (st >= 10 && st < 10 + NLOCKS)
        return "a lock stayed taken";
    return "died or failed otherwise";
}

/* The child: every lock, the soak's activities, and now and then a
 * grandchild that checks the same (this process has one thread: a light
 * fork). */
static int child_main(const struct held *mine)
{
    int st = child_check(mine);
    if (st || !soak)
        return st;
    if ((st = soak_child()) != 0)
        return st;
    if ((getpid() & 7) == 0) {
        struct held none;
        memset(&none, 0, sizeof none);
        pid_t pid = fork();
        if (pid < 0)
            return 100;
        if (pid == 0)
            _exit(child_check(&none) || soak_child() ? 1 : 0);
        if (t_wait(pid, CHILD_MS / 2) != 0)
            return 100;
    }
    return 0;
}

/* Forks once, holding a random prefix of the order now and then; checks the
 * child. */
static void fork_once(int who, unsigned *seed)
{
    struct held h;
    memset(&h, 0, sizeof h);
    __atomic_store_n(&forker_tid[who], gettid(), __ATOMIC_RELAXED);
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
    uint64_t t0 = now_us();
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(child_main(&h));
    uint64_t dt = now_us() - t0;
    for (uint64_t m = __atomic_load_n(&longest_fork_us, __ATOMIC_RELAXED);
         dt > m && !__atomic_compare_exchange_n(&longest_fork_us, &m, dt, 0, __ATOMIC_RELAXED,
                                                __ATOMIC_RELAXED);) {
    }
    while (ngot > 0)
        give(got[--ngot], &h);
    int st = t_wait(pid, expect_bad ? 3000 : CHILD_MS);
    if (st != 0) {
        if (!soak)
            FAIL("forker %d, fork %llu (holding %d locks): child status %d (%s)", who,
                 (unsigned long long)forks[who], n, st, child_verdict(st));
        uint64_t nbad = __atomic_add_fetch(st == T_TIMEOUT ? &hung : &failed, 1, __ATOMIC_RELAXED);
        if (nbad <= 20 && !expect_bad) /* each, as it happens (a long run's log) */
            printf("bad child: forker %d, fork %llu (holding %d locks): status %d (%s)\n", who,
                   (unsigned long long)__atomic_load_n(&forks[who], __ATOMIC_RELAXED), n, st,
                   child_verdict(st));
        static int described; /* the first bad child is described by its forker alone */
        if (!__atomic_exchange_n(&described, 1, __ATOMIC_ACQ_REL))
            snprintf(first_bad, sizeof first_bad,
                     "forker %d, fork %llu (holding %d locks): child status %d (%s)", who,
                     (unsigned long long)__atomic_load_n(&forks[who], __ATOMIC_RELAXED), n, st,
                     child_verdict(st));
    } else {
        __atomic_add_fetch(&children_ok, 1, __ATOMIC_RELAXED);
    }
    __atomic_add_fetch(&forks[who], 1, __ATOMIC_RELAXED);
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

static void report(const char *verdict, long seconds, int stuck);

static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        t_sleep_ms(1000);
        if (now_ms() - __atomic_load_n(&last_progress, __ATOMIC_ACQUIRE) > STALL_S * 1000u) {
            printf("FAIL: no fork completed for %d s: the parent is stuck\n", STALL_S);
            report("FAIL:", 0, 1);
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

static void report(const char *verdict, long seconds, int stuck)
{
    printf("%s %lld s: %llu forks (main %llu, second %llu), %llu hung, %llu failed, %s, longest "
           "fork %.1f ms; %llu worker rounds, %llu cond waits signalled, %llu timed out",
           verdict, (long long)seconds, (unsigned long long)(forks[0] + forks[1]),
           (unsigned long long)forks[0], (unsigned long long)forks[1], (unsigned long long)hung,
           (unsigned long long)failed, stuck ? "1 stuck" : "0 stuck",
           (double)longest_fork_us / 1000.0, (unsigned long long)worker_rounds,
           (unsigned long long)waits, (unsigned long long)timeouts);
    if (soak)
        printf("; %llu semaphore rounds, %llu libc rounds, %llu threads came and went, %llu "
               "signals sent, %llu handled%s",
               (unsigned long long)sem_rounds, (unsigned long long)libc_rounds,
               (unsigned long long)threads_churned, (unsigned long long)signals_sent,
               (unsigned long long)signals_handled, registered ? ", every other mutex registered" : "");
    printf("\n");
    if (first_bad[0])
        printf("first bad child: %s\n", first_bad);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    long seconds = argc > 1 ? atol(argv[1]) : 20;
    if (seconds <= 0)
        seconds = 20;
    uint64_t want_forks = 0, tolerate = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--soak") == 0)
            soak = 1;
        else if (strcmp(argv[i], "--register") == 0)
            registered = 1;
        else if (strcmp(argv[i], "--expect-bad") == 0)
            expect_bad = 1;
        else if (strcmp(argv[i], "--tolerate-per-10k") == 0 && i + 1 < argc)
            tolerate = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--forks") == 0 && i + 1 < argc)
            want_forks = strtoull(argv[++i], NULL, 10);
        else
            FAIL("usage: %s SECONDS [--soak] [--register] [--forks N] [--expect-bad] "
                 "[--tolerate-per-10k N]",
                 argv[0]);
    }
    const char *wait = getenv("FSAFE_AUTO_WAIT_MS");
    if (!expect_bad && (!wait || atol(wait) < 1000))
        FAIL("run with FSAFE_AUTO_WAIT_MS >= 1000 (a bound message must mean a lost hold)");
    if (expect_bad && fsafe_present())
        FAIL("--expect-bad is the run without fsafe, and libfsafe is in the process");
    if (!expect_bad)
        capture_stderr();
    init_locks();
    if (registered) {
        if (!fsafe_present())
            FAIL("--register: libfsafe is not in the process");
        for (int i = 0; i < NLOCKS; i += 2)
            if (kinds[i] != K_RWLOCK && kinds[i] != K_SPIN && kinds[i] != K_C11)
                CHECK_EQ(fsafe_opt_register_lock(&L[i].m, FSAFE_MUTEX, i, "soak"), 0);
    }
    if (soak)
        soak_init();
    __atomic_store_n(&last_progress, now_ms(), __ATOMIC_RELEASE);
    pthread_t t[WORKERS + 8];
    int nt = 0;
    for (long i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&t[nt++], NULL, worker, (void *)(i + 1)) == 0);
    if (soak) {
        signal_targets = t;
        nsignal_targets = WORKERS;
        for (long i = 0; i < 2; i++)
            CHECK(pthread_create(&t[nt++], NULL, sem_worker, (void *)i) == 0);
        for (long i = 0; i < 2; i++)
            CHECK(pthread_create(&t[nt++], NULL, libc_worker, (void *)i) == 0);
        CHECK(pthread_create(&t[nt++], NULL, churner, NULL) == 0);
        CHECK(pthread_create(&t[nt++], NULL, signaller, NULL) == 0);
    }
    CHECK(pthread_create(&t[nt++], NULL, second_forker, NULL) == 0);
    pthread_t wd;
    CHECK(pthread_create(&wd, NULL, watchdog, NULL) == 0);
    pthread_detach(wd);

    unsigned seed = 12345;
    uint64_t began = now_ms(), end = began + (uint64_t)seconds * 1000u;
    while (now_ms() < end &&
           (!want_forks || __atomic_load_n(&forks[0], __ATOMIC_RELAXED) +
                                   __atomic_load_n(&forks[1], __ATOMIC_RELAXED) <
                               want_forks) &&
           !(expect_bad && (__atomic_load_n(&hung, __ATOMIC_RELAXED) ||
                            __atomic_load_n(&failed, __ATOMIC_RELAXED)))) {
        fork_once(0, &seed);
        if ((rnd(&seed) & 3) == 0)
            t_sleep_ms(1);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    /* The signaller first: its targets must outlive its last pthread_kill. */
    for (int i = nt; i-- > 0;)
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
    if (expect_bad) {
        report(hung || failed ? "ok (expected, without fsafe):" : "FAIL (nothing went wrong without fsafe: this run shows nothing):", (long)((now_ms() - began) / 1000u), 0);
        return hung || failed ? 0 : 1;
    }
    uint64_t total = forks[0] + forks[1];
    uint64_t allowed = tolerate ? tolerate * total / 10000u : 0;
    if (tolerate && allowed < 1)
        allowed = 1;
    int bad = hung + failed > allowed || (want_forks && total < want_forks);
    report(bad ? "FAIL:" : "ok:", (long)((now_ms() - began) / 1000u), 0); /* seconds it ran */
    if (!bad && (hung || failed))
        printf("(within --tolerate-per-10k %llu: %llu bad of %llu forks)\n",
               (unsigned long long)tolerate, (unsigned long long)(hung + failed),
               (unsigned long long)total);
    if (want_forks && forks[0] + forks[1] < want_forks)
        printf("FAIL: %llu forks of the %llu asked for in %ld s\n",
               (unsigned long long)(forks[0] + forks[1]), (unsigned long long)want_forks, seconds);
    check_quiet();
    return bad ? 1 : 0;
}
