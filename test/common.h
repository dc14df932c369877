/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by fsafe's tests.  Each test is one process; every fork is
 * waited for with a timeout, and the child's exit status says what it saw.
 * Child-side helpers are async-signal-safe: write(2), no stdio, no malloc.
 */
#ifndef FSAFE_TEST_COMMON_H
#define FSAFE_TEST_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ThreadSanitizer reports deliberate misuse (unlocking an unlocked mutex),
 * so tests leave those checks out under it. */
#if defined(__SANITIZE_THREAD__)
#define T_TSAN 1
#else
#define T_TSAN 0
#endif

#ifndef __GLIBC__
/* glibc's lock kinds, on another libc (musl, test/platforms/musl.sh): an
 * adaptive mutex becomes the normal mutex it is apart from spinning, and
 * rwlocks have no kind to choose.  Tests about the kinds themselves
 * (test_kinds) skip them instead.  The typed static initializers are
 * glibc's too: tests initialise such mutexes at run time there. */
#define PTHREAD_MUTEX_ADAPTIVE_NP PTHREAD_MUTEX_NORMAL
#define PTHREAD_RWLOCK_PREFER_READER_NP 0
#define PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP 0
#define pthread_rwlockattr_setkind_np(a, k) ((void)(a), (void)(k))
#endif

#define T_SKIP 77      /* CTest SKIP_RETURN_CODE: the platform cannot run this */
#define T_TIMEOUT 124  /* the child did not finish in time (we killed it) */
#define T_CHILD_HUNG 3 /* the child timed out on a lock by itself */

static inline void t_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}
#define FAIL(...) t_fail(__FILE__, __LINE__, __VA_ARGS__)
#define CHECK(cond) ((cond) ? (void)0 : FAIL("%s", #cond))
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            FAIL("%s == %lld, expected %s == %lld", #a, a_, #b, b_);                               \
    } while (0)

/* m made a mutex of that type (glibc's typed static initializers, elsewhere). */
static inline void t_mutex_init_type(pthread_mutex_t *m, int type)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    CHECK_EQ(pthread_mutex_init(m, &a), 0);
    pthread_mutexattr_destroy(&a);
}

/* Async-signal-safe message from a child. */
static inline void t_say(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static inline void t_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static inline void t_deadline(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/*
 * Waits for pid for at most timeout_ms.  Returns its exit status, 128+signal
 * if a signal killed it, or T_TIMEOUT after killing it with SIGKILL.
 */
static inline int t_wait(pid_t pid, long timeout_ms)
{
    int st;
    for (long waited = 0;; waited += 5) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            FAIL("waitpid(%d): %s", (int)pid, strerror(errno));
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return T_TIMEOUT;
        }
        t_sleep_ms(5);
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

/* One runner for a file of cases: "prog <case>" runs it in this process,
 * "prog --list" names them all.  Returns main's exit status. */
struct t_case {
    const char *name;
    void (*fn)(void);
};
static inline int t_run_case(const struct t_case *cases, size_t n, int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    for (size_t i = 0; argc == 2 && i < n; i++)
        if (strcmp(argv[1], cases[i].name) == 0) {
            cases[i].fn();
            return 0;
        }
    fprintf(stderr, "usage: %s <case>|--list\n", argv[0]);
    return 2;
}
#define T_RUN_CASES(cases, argc, argv) t_run_case(cases, sizeof cases / sizeof *cases, argc, argv)

/* A bare test-and-set lock for fsafe_register_ops() tests. */
struct t_tas {
    volatile int word;
    volatile int acquired, released_parent, released_child;
};
static inline int t_tas_try(void *k)
{
    struct t_tas *l = k;
    return __sync_lock_test_and_set(&l->word, 1) ? EBUSY : 0;
}
static inline int t_tas_acquire(void *k)
{
    while (t_tas_try(k))
        sched_yield();
    ((struct t_tas *)k)->acquired++;
    return 0;
}
static inline void t_tas_unlock(void *k)
{
    __sync_lock_release(&((struct t_tas *)k)->word);
}
static inline void t_tas_release_parent(void *k)
{
    ((struct t_tas *)k)->released_parent++;
    t_tas_unlock(k);
}
static inline void t_tas_release_child(void *k)
{
    ((struct t_tas *)k)->released_child++;
    ((struct t_tas *)k)->word = 0;
}

#endif
