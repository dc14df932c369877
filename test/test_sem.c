/* SPDX-License-Identifier: MIT */
/*
 * Semaphores at fork under auto mode (src/auto/sem.c): a semaphore used as a
 * lock that another thread holds is posted in the child; a signalling one
 * (counting above 1, or posted by a thread that did not take it), a
 * process-shared one and the forker's own holds are left as they are.
 * Built without fsafe; the CTest entries run it under fsafe-run (and, for
 * "held_other_without", plainly, to show the child stuck without fsafe).
 */
#include "common.h"

#include <limits.h>
#include <semaphore.h>
#include <sys/mman.h>

#define CHILD_MS 5000

enum { TAKE_ONCE, TAKE_AS_LOCK, TAKE_TWICE, TAKE_AFTER_FOREIGN_POST, TAKE_AND_POST };

static sem_t *sem;
static int how;
static volatile int ready, done;

static void *holder(void *arg)
{
    (void)arg;
    switch (how) {
    case TAKE_ONCE:
        CHECK(sem_wait(sem) == 0);
        break;
    case TAKE_AS_LOCK:
        /* Used as a lock once (taken and given back), then held. */
        CHECK(sem_wait(sem) == 0);
        CHECK(sem_post(sem) == 0);
        CHECK(sem_wait(sem) == 0);
        break;
    case TAKE_TWICE:
        CHECK(sem_wait(sem) == 0);
        CHECK(sem_trywait(sem) == 0);
        break;
    case TAKE_AFTER_FOREIGN_POST:
        /* A signal: the main thread posts, this thread consumes. */
        CHECK(sem_wait(sem) == 0);
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
        while (__atomic_load_n(&ready, __ATOMIC_ACQUIRE) != 2)
            t_sleep_ms(1);
        CHECK(sem_wait(sem) == 0);
        break;
    case TAKE_AND_POST:
        CHECK(sem_wait(sem) == 0);
        CHECK(sem_post(sem) == 0);
        break;
    }
    __atomic_store_n(&ready, 3, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE))
        t_sleep_ms(1);
    return NULL;
}

static pthread_t start_holder(int h)
{
    pthread_t t;
    how = h;
    CHECK(pthread_create(&t, NULL, holder, NULL) == 0);
    if (h == TAKE_AFTER_FOREIGN_POST) {
        while (__atomic_load_n(&ready, __ATOMIC_ACQUIRE) != 1)
            t_sleep_ms(1);
        CHECK(sem_post(sem) == 0); /* not the taker: signalling from here on */
        __atomic_store_n(&ready, 2, __ATOMIC_RELEASE);
    }
    while (__atomic_load_n(&ready, __ATOMIC_ACQUIRE) != 3)
        t_sleep_ms(1);
    return t;
}

static void stop_holder(pthread_t t)
{
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    CHECK(pthread_join(t, NULL) == 0);
}

static int value(void)
{
    int v = -1;
    CHECK(sem_getvalue(sem, &v) == 0);
    return v;
}

/* Forks; the child exits 0 if the semaphore's value is want_value and then
 * (want_take) a timed wait takes it, or (!want_take) a trywait fails. */
static int fork_and_check(int want_value, int want_take)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int v = -1;
        sem_getvalue(sem, &v);
        if (v != want_value)
            _exit(10 + (v < 0 ? 9 : v > 8 ? 8 : v));
        if (want_take) {
            struct timespec ts;
            t_deadline(&ts, 1000);
            _exit(sem_timedwait(sem, &ts) == 0 ? 0 : T_CHILD_HUNG);
        }
        _exit(sem_trywait(sem) == -1 && errno == EAGAIN ? 0 : 4);
    }
    return t_wait(pid, CHILD_MS);
}

static sem_t private_sem;

/* A lock held by another thread: posted in the child, which can take it. */
static void held_other(void)
{
    sem = &private_sem;
    CHECK(sem_init(sem, 0, 1) == 0);
    pthread_t t = start_holder(TAKE_AS_LOCK);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(fork_and_check(1, 1), 0);
    CHECK_EQ(value(), 0); /* the parent's holder still holds it */
    stop_holder(t);
}

/* The same without fsafe: the child finds it taken (and cannot take it). */
static void held_other_without(void)
{
    sem = &private_sem;
    CHECK(sem_init(sem, 0, 1) == 0);
    pthread_t t = start_holder(TAKE_AS_LOCK);
    CHECK_EQ(fork_and_check(0, 0), 0);
    stop_holder(t);
}

/* A one-shot token (issue 25): value 1, taken once by a worker that keeps
 * it, posted by nobody.  Nothing shows it is a lock, so the child sees value
 * 0, as without fsafe (0.1 posted it: the child could take a token the
 * program never gave it). */
static void one_shot(void)
{
    sem = &private_sem;
    CHECK(sem_init(sem, 0, 1) == 0);
    pthread_t t = start_holder(TAKE_ONCE);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(fork_and_check(0, 0), 0);
    stop_holder(t);
}

/* Counting: initial value 2, both units taken by one thread: untouched. */
static void count_two(void)
{
    sem = &private_sem;
    CHECK(sem_init(sem, 0, 2) == 0);
    pthread_t t = start_holder(TAKE_TWICE);
    CHECK_EQ(fork_and_check(0, 0), 0);
    stop_holder(t);
}

/* Taken by one thread and posted by another (a signal), then taken again
 * by the first: untouched. */
static void posted_by_other(void)
{
    sem = &private_sem;
    CHECK(sem_init(sem, 0, 1) == 0);
    pthread_t t = start_holder(TAKE_AFTER_FOREIGN_POST);
    CHECK_EQ(fork_and_check(0, 0), 0);
    stop_holder(t);
}

/* What was learnt about a semaphore goes with sem_destroy + sem_init: the
 * same address, signalling before, is a lock again. */
static void reinit(void)
{
    sem = &private_sem;
    CHECK(sem_init(sem, 0, 0) == 0);
    CHECK(sem_post(sem) == 0); /* posted by a thread that did not take it */
    CHECK(sem_wait(sem) == 0);
    CHECK(sem_destroy(sem) == 0);
    CHECK(sem_init(sem, 0, 1) == 0);
    pthread_t t = start_holder(TAKE_AS_LOCK);
    CHECK_EQ(fork_and_check(1, 1), 0);
    stop_holder(t);
}

/* Taken and posted again before the fork: free, and not posted twice. */
static void released(void)
{
    sem = &private_sem;
    CHECK(sem_init(sem, 0, 1) == 0);
    pthread_t t = start_holder(TAKE_AND_POST);
    CHECK_EQ(fork_and_check(1, 1), 0);
    stop_holder(t);
}

/* Process-shared, held by another thread of the parent: the parent's hold
 * is real in the child too (the same memory), so it is never posted. */
static void pshared(void)
{
    sem = mmap(NULL, sizeof *sem, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sem != MAP_FAILED);
    CHECK(sem_init(sem, 1, 1) == 0);
    pthread_t t = start_holder(TAKE_ONCE);
    CHECK_EQ(fork_and_check(0, 0), 0);
    CHECK_EQ(value(), 0);
    stop_holder(t);
}

/* The forker's own hold stays its own in the child. */
static void own_hold(void)
{
    sem = &private_sem;
    CHECK(sem_init(sem, 0, 1) == 0);
    CHECK(sem_wait(sem) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int v = -1;
        sem_getvalue(sem, &v);
        if (v != 0)
            _exit(10);
        if (sem_post(sem) != 0 || sem_getvalue(sem, &v) != 0 || v != 1)
            _exit(11);
        _exit(0);
    }
    CHECK_EQ(t_wait(pid, CHILD_MS), 0);
    CHECK(sem_post(sem) == 0);
}

/* Return values and errno pass through the interposers unchanged. */
static void returns(void)
{
    sem = &private_sem;
    struct timespec ts;
    CHECK(sem_init(sem, 0, 0) == 0);
    errno = 0;
    CHECK(sem_trywait(sem) == -1 && errno == EAGAIN);
    t_deadline(&ts, 10);
    errno = 0;
    CHECK(sem_timedwait(sem, &ts) == -1 && errno == ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 10 * 1000000L;
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    errno = 0;
    CHECK(sem_clockwait(sem, CLOCK_MONOTONIC, &ts) == -1 && errno == ETIMEDOUT);
    ts.tv_nsec = -1;
    errno = 0;
    CHECK(sem_timedwait(sem, &ts) == -1 && errno == EINVAL);
    errno = 1234;
    CHECK(sem_post(sem) == 0);
    CHECK_EQ(errno, 1234);
    CHECK(sem_wait(sem) == 0);
    CHECK_EQ(errno, 1234);
    CHECK(sem_init(sem, 0, SEM_VALUE_MAX) == 0);
    errno = 0;
    CHECK(sem_post(sem) == -1 && errno == EOVERFLOW);
    CHECK(sem_destroy(sem) == 0);
}

static const struct t_case cases[] = {
    {"held_other", held_other}, {"held_other_without", held_other_without},
    {"count_two", count_two},   {"posted_by_other", posted_by_other},
    {"reinit", reinit},         {"released", released},
    {"pshared", pshared},       {"own_hold", own_hold},
    {"returns", returns},       {"one_shot", one_shot},
};

int main(int argc, char **argv)
{
    return T_RUN_CASES(cases, argc, argv);
}
