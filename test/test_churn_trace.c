/* SPDX-License-Identifier: MIT */
/*
 * Throwaway threads leave no trace: what a program can observe around a fork
 * is the same with churn as without it.  One aspect per mode (one CTest entry
 * each):
 *
 *   test_churn_trace stack|mask|errno|affinity|sched N
 *
 * Built a second time with BIG_TLS (test_churn_trace_tls): 256 KiB of static
 * TLS, more than a throwaway thread's default stack holds (glibc puts static
 * TLS on the thread's stack), so churn must grow its stacks to spawn at all.
 *
 * Three probe forks in a row: churn off, churn N, churn off again (the third
 * shows the parent's state after churn, e.g. its thread-stack cache).  Each
 * probe records the aspect in the parent right after fork() and in the child
 * (and, for stack/sched, in a thread the child creates); all three records
 * must be equal, and the first must be what the program set up.
 */
#include "test_churn.h"

#include <sched.h>
#include <sys/resource.h>

#include "fsafe.h"

#define CHILD_MS 10000

#ifdef BIG_TLS
static __thread volatile char big_tls[256 * 1024];
#endif
#define ERRNO_MARK 4242 /* not an errno value any call sets */

struct probe {
    /* stack: what a thread asking for the minimum stack and a one-page guard got */
    size_t stack, guard;
    /* mask: SIGUSR1, SIGUSR2, SIGTERM blocked?  (bit per signal) */
    unsigned mask;
    int err;
    unsigned long cpus; /* affinity: CPUs 0..63 as bits */
    int policy, prio, nice;
};

struct record {
    struct probe parent, child, thread;
};

static const char *aspect;

static void *thread_probe(void *arg)
{
    struct probe *p = arg;
    pthread_attr_t at;
    void *addr;
    if (pthread_getattr_np(pthread_self(), &at) == 0) {
        pthread_attr_getstack(&at, &addr, &p->stack);
        pthread_attr_getguardsize(&at, &p->guard);
        pthread_attr_destroy(&at);
    }
    struct sched_param sp;
    pthread_getschedparam(pthread_self(), &p->policy, &sp);
    p->prio = sp.sched_priority;
    errno = 0;
    p->nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)); /* per thread on Linux */
    return NULL;
}

/* The calling thread's view (after errno is read first). */
static void observe(struct probe *p, int err)
{
    p->err = err;
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, NULL, &m);
    p->mask = (unsigned)sigismember(&m, SIGUSR1) | (unsigned)sigismember(&m, SIGUSR2) << 1 |
              (unsigned)sigismember(&m, SIGTERM) << 2 | (unsigned)sigismember(&m, SIGINT) << 3;
    cpu_set_t cs;
    CPU_ZERO(&cs);
    p->cpus = 0;
    if (sched_getaffinity(0, sizeof cs, &cs) == 0)
        for (int i = 0; i < 64; i++)
            if (CPU_ISSET(i, &cs))
                p->cpus |= 1ul << i;
    struct sched_param sp;
    p->policy = sched_getscheduler(0);
    sched_getparam(0, &sp);
    p->prio = sp.sched_priority;
    errno = 0;
    p->nice = getpriority(PRIO_PROCESS, 0);
}

/* In the child: start a thread with the minimum stack and a one-page guard. */
static void thread_in_child(struct probe *p)
{
    pthread_attr_t at;
    pthread_t th;
    memset(p, 0, sizeof *p);
#ifdef BIG_TLS
    size_t size = (size_t)sysconf(_SC_THREAD_STACK_MIN) + sizeof big_tls;
    big_tls[0] = 1;
#else
    size_t size = (size_t)sysconf(_SC_THREAD_STACK_MIN);
#endif
    if (pthread_attr_init(&at) != 0 || pthread_attr_setstacksize(&at, size) != 0 ||
        pthread_attr_setguardsize(&at, (size_t)sysconf(_SC_PAGESIZE)) != 0 ||
        pthread_create(&th, &at, thread_probe, p) != 0 || pthread_join(th, NULL) != 0)
        _exit(90);
}

static struct record probe_fork(int churn)
{
    CHECK_EQ(fsafe_set_churn(churn), 0);
    int fds[2];
    CHECK(pipe(fds) == 0);
    struct record r;
    memset(&r, 0, sizeof r);
    errno = ERRNO_MARK;
    pid_t pid = fork();
    int err = errno;
    if (pid == 0) {
        struct record c;
        memset(&c, 0, sizeof c);
        observe(&c.child, err);
        thread_in_child(&c.thread);
        _exit(write(fds[1], &c, sizeof c) == (ssize_t)sizeof c ? 0 : 91);
    }
    CHECK(pid > 0);
    observe(&r.parent, err);
    close(fds[1]);
    struct record c;
    ssize_t got = read(fds[0], &c, sizeof c);
    close(fds[0]);
    int st = t_wait(pid, CHILD_MS);
    if (st != 0 || got != (ssize_t)sizeof c)
        FAIL("churn %d: child status %d (124: timeout), read %zd", churn, st, got);
    r.child = c.child;
    r.thread = c.thread;
    return r;
}

static void show(const char *what, int churn, const struct probe *p)
{
    if (strcmp(aspect, "stack") == 0)
        printf("  churn %-3d %-7s stack %zu guard %zu\n", churn, what, p->stack, p->guard);
    else if (strcmp(aspect, "mask") == 0)
        printf("  churn %-3d %-7s mask bits %#x\n", churn, what, p->mask);
    else if (strcmp(aspect, "errno") == 0)
        printf("  churn %-3d %-7s errno %d\n", churn, what, p->err);
    else if (strcmp(aspect, "affinity") == 0)
        printf("  churn %-3d %-7s cpus %#lx\n", churn, what, p->cpus);
    else
        printf("  churn %-3d %-7s policy %d prio %d nice %d\n", churn, what, p->policy, p->prio,
               p->nice);
}

static int same(const struct probe *a, const struct probe *b)
{
    if (strcmp(aspect, "stack") == 0)
        return a->stack == b->stack && a->guard == b->guard;
    if (strcmp(aspect, "mask") == 0)
        return a->mask == b->mask;
    if (strcmp(aspect, "errno") == 0)
        return a->err == b->err;
    if (strcmp(aspect, "affinity") == 0)
        return a->cpus == b->cpus;
    return a->policy == b->policy && a->prio == b->prio && a->nice == b->nice;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        FAIL("usage: %s stack|mask|errno|affinity|sched N", argv[0]);
    aspect = argv[1];
    int n = atoi(argv[2]);
    CHECK(n > 0 && n <= 1024);

    /* A program that set things up its own way. */
    struct probe want;
    memset(&want, 0, sizeof want);
    if (strcmp(aspect, "mask") == 0) {
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGUSR1);
        sigaddset(&m, SIGTERM);
        CHECK(pthread_sigmask(SIG_SETMASK, &m, NULL) == 0);
        want.mask = 1u | 4u;
    } else if (strcmp(aspect, "affinity") == 0) {
        cpu_set_t cs;
        CHECK(sched_getaffinity(0, sizeof cs, &cs) == 0);
        int last = -1;
        for (int i = 0; i < 64; i++)
            if (CPU_ISSET(i, &cs))
                last = i;
        CHECK(last >= 0);
        CPU_ZERO(&cs);
        CPU_SET(last, &cs); /* one CPU: the highest the test may use */
        CHECK(sched_setaffinity(0, sizeof cs, &cs) == 0);
        want.cpus = 1ul << last;
    } else if (strcmp(aspect, "sched") == 0) {
        struct sched_param sp = {0};
        if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0 && errno == ENOSYS) {
            /* musl's sched_setscheduler always fails: Linux's is per thread */
            printf("SKIP: this libc does not set a process's scheduling policy\n");
            return T_SKIP;
        }
        CHECK(sched_getscheduler(0) == SCHED_BATCH); /* needs no privilege */
        errno = 0;
        int nice0 = getpriority(PRIO_PROCESS, 0);
        CHECK(setpriority(PRIO_PROCESS, 0, nice0 + 3 > 19 ? 19 : nice0 + 3) == 0);
        want.policy = SCHED_BATCH;
        want.nice = nice0 + 3 > 19 ? 19 : nice0 + 3;
    } else if (strcmp(aspect, "stack") == 0) {
#ifdef BIG_TLS
        FAIL("the stack aspect is measured without BIG_TLS");
#endif
        want.stack = (size_t)sysconf(_SC_THREAD_STACK_MIN);
        want.guard = (size_t)sysconf(_SC_PAGESIZE);
    } else if (strcmp(aspect, "errno") == 0) {
        want.err = ERRNO_MARK;
    } else {
        FAIL("unknown aspect '%s'", aspect);
    }

    int churns[3] = {0, n, 0};
    struct record r[3];
    for (int i = 0; i < 3; i++)
        r[i] = probe_fork(churns[i]);
#ifndef __GLIBC__
    /* musl counts its thread structure in the stack a thread reports: the
     * size without churn is the one to keep. */
    if (strcmp(aspect, "stack") == 0)
        want.stack = r[0].thread.stack;
#endif
    struct fsafe_stats s;
    CHECK_EQ(fsafe_get_stats(&s, sizeof s), 0);
    if (s.churn_spawned != (uint64_t)n || s.churn_failed != 0)
        FAIL("churn %d spawned %llu throwaway threads, %llu failures", n,
             (unsigned long long)s.churn_spawned, (unsigned long long)s.churn_failed);

    int bad = 0;
    printf("%s, churn off / %d / off:\n", aspect, n);
    for (int i = 0; i < 3; i++) {
        const struct probe *p[3] = {&r[i].parent, &r[i].child, &r[i].thread};
        const char *names[3] = {"parent", "child", "thread"};
        for (int k = 0; k < 3; k++) {
            /* The child's thread answers for the stack and the scheduling it
             * inherited; the parent and the child for the rest. */
            int thread_aspect = strcmp(aspect, "stack") == 0 || strcmp(aspect, "sched") == 0;
            if (k == 2 && !thread_aspect)
                continue;
            if (k < 2 && strcmp(aspect, "stack") == 0)
                continue;
            show(names[k], churns[i], p[k]);
            const struct probe *first = k == 0 ? &r[0].parent : k == 1 ? &r[0].child : &r[0].thread;
            if (!same(p[k], first) || !same(p[k], &want)) {
                printf("    ^ differs (expected the value without churn and as set up)\n");
                bad = 1;
            }
        }
    }
    if (bad)
        FAIL("churn changed what the program observes (%s)", aspect);
    printf("ok: %s unchanged by %d throwaway threads\n", aspect, n);
    return 0;
}
