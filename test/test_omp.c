/* SPDX-License-Identifier: MIT */
/*
 * OpenMP (GNU libgomp) in the child of a fork (issue 24; src/auto/omp.c).
 *
 *   test_omp pool  ok|hang   the main thread runs parallel regions of every
 *                            kind GCC 12 emits (4 threads each), then forks 3
 *                            children; each runs them all again and forks a
 *                            grandchild that does too.  "ok" (under auto
 *                            mode): every child finishes, with the parent's
 *                            results and teams of 1 thread, and the parent's
 *                            later regions still have 4; "hang" (without
 *                            fsafe): some child hangs (libgomp's pool threads
 *                            are gone in it).
 *   test_omp fresh ok        regions run only in another thread; the main
 *                            thread forks: the child's regions get their 3
 *                            threads (a fresh pool), as without fsafe.
 * Each child has 5 s; one that takes longer is killed and counts as hung.
 */
#include "common.h"

#include <omp.h>
#include <pthread.h>

/* libgomp's entry points of binaries built by GCC < 4.9 (libgomp_g.h). */
void GOMP_parallel_start(void (*fn)(void *), void *data, unsigned num_threads);
void GOMP_parallel_end(void);

#define N 1000
#define CHILD_MS 5000

static long v[N];
static int team_max; /* the largest team seen by a region */

static void saw_team(void)
{
    int t = omp_get_num_threads();
#pragma omp critical(team)
    if (t > team_max)
        team_max = t;
}

static long sum_v(void)
{
    long s = 0;
    for (int i = 0; i < N; i++)
        s += v[i];
    return s;
}

static void fill(int i, int k)
{
    v[i] = (long)i * k;
    if (i % 97 == 0)
        saw_team();
}

static void old_abi_body(void *arg)
{
    long *s = arg;
    saw_team();
#pragma omp atomic
    *s += 1;
}

/* Runs every kind of region; returns a checksum, and the largest team seen in
 * *team.  Each region asks for 4 threads. */
static long regions(int *team)
{
    long total = 0;
    team_max = 0;
#pragma omp parallel num_threads(4) /* GOMP_parallel */
    saw_team();
#pragma omp parallel for num_threads(4) schedule(dynamic) /* ..._loop_nonmonotonic_dynamic */
    for (int i = 0; i < N; i++)
        fill(i, 1);
    total += sum_v();
#pragma omp parallel for num_threads(4) schedule(guided) /* ..._loop_nonmonotonic_guided */
    for (int i = 0; i < N; i++)
        fill(i, 2);
    total += sum_v();
#pragma omp parallel for num_threads(4) schedule(runtime) /* ..._loop_maybe_nonmonotonic_runtime */
    for (int i = 0; i < N; i++)
        fill(i, 3);
    total += sum_v();
#pragma omp parallel for num_threads(4) schedule(monotonic : dynamic, 3) /* ..._loop_dynamic */
    for (int i = 0; i < N; i++)
        fill(i, 4);
    total += sum_v();
#pragma omp parallel for num_threads(4) schedule(monotonic : guided) /* ..._loop_guided */
    for (int i = 0; i < N; i++)
        fill(i, 5);
    total += sum_v();
#pragma omp parallel for num_threads(4) schedule(monotonic : runtime) /* ..._loop_runtime */
    for (int i = 0; i < N; i++)
        fill(i, 6);
    total += sum_v();
#pragma omp parallel for num_threads(4) schedule(nonmonotonic : runtime) /* ..._loop_nonmonotonic_runtime */
    for (int i = 0; i < N; i++)
        fill(i, 7);
    total += sum_v();
#pragma omp parallel for num_threads(4) schedule(static, 7) /* GOMP_parallel, static chunks */
    for (int i = 0; i < N; i++)
        fill(i, 8);
    total += sum_v();
    long a = 0, b = 0;
#pragma omp parallel sections num_threads(4) /* GOMP_parallel_sections */
    {
#pragma omp section
        {
            a = 11;
            saw_team();
        }
#pragma omp section
        b = 13;
    }
    total += a + b;
    long r = 0;
#pragma omp parallel num_threads(4) reduction(task, + : r) /* GOMP_parallel_reductions */
    {
#pragma omp single
        for (int k = 0; k < 10; k++) {
#pragma omp task in_reduction(+ : r)
            r += k;
        }
        saw_team();
    }
    total += r;
    long s = 0;
    GOMP_parallel_start(old_abi_body, &s, 4);
    old_abi_body(&s);
    GOMP_parallel_end();
    total += s > 0;
    *team = team_max;
    return total;
}

/* In a child: the parent's checksum and teams of `want_team`; exits 1 if
 * not. */
static void check_regions(long want_sum, int want_team)
{
    int team;
    long got = regions(&team);
    if (got != want_sum || team != want_team) {
        char msg[128];
        int n = snprintf(msg, sizeof msg, "child: checksum %ld (want %ld), team %d (want %d)\n", got,
                         want_sum, team, want_team);
        (void)!write(1, msg, (size_t)n);
        _exit(1);
    }
}

/* A child: checks, and with `grandchild` forks one that checks too; exits. */
static void child_regions(long want_sum, int want_team, int grandchild)
{
    check_regions(want_sum, want_team);
    if (grandchild) {
        pid_t g = fork();
        if (g < 0)
            _exit(4);
        if (g == 0) {
            check_regions(want_sum, want_team);
            _exit(0);
        }
        int st = t_wait(g, CHILD_MS);
        if (st != 0) {
            char msg[64];
            int n = snprintf(msg, sizeof msg, "grandchild: status %d%s\n", st,
                             st == T_TIMEOUT ? " (hung)" : "");
            (void)!write(1, msg, (size_t)n);
            _exit(st == T_TIMEOUT ? T_TIMEOUT : 2);
        }
    }
    _exit(0);
}

static int expect_hang;

static void pool(void)
{
    int team;
    long want = regions(&team);
    CHECK_EQ(team, 4);
    int hung = 0;
    for (int k = 0; k < 3; k++) {
        pid_t c = fork();
        if (c < 0)
            FAIL("fork: %s", strerror(errno));
        if (c == 0)
            child_regions(want, 1, 1);
        int st = t_wait(c, 2 * CHILD_MS);
        printf("child %d: status %d%s\n", k, st, st == T_TIMEOUT ? " (hung)" : "");
        if (st == T_TIMEOUT) {
            hung++;
            if (expect_hang)
                break;
        } else if (st != 0 && !expect_hang) {
            FAIL("child %d failed (status %d)", k, st);
        }
    }
    if (expect_hang) {
        if (hung == 0)
            FAIL("no child hung without fsafe: the test shows nothing");
        printf("%d child(ren) hung without fsafe, as expected\n", hung);
        return;
    }
    CHECK_EQ(hung, 0);
    CHECK_EQ(regions(&team), want);
    CHECK_EQ(team, 4); /* the parent keeps its pool */
    printf("3 children and their children ran every region with 1 thread; the parent still has 4\n");
}

static long fresh_sum;
static void *fresh_thread(void *arg)
{
    int *team = arg;
    fresh_sum = regions(team);
    return NULL;
}

static void fresh(void)
{
    int team = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, fresh_thread, &team), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(team, 4);
    pid_t c = fork();
    if (c < 0)
        FAIL("fork: %s", strerror(errno));
    if (c == 0)
        child_regions(fresh_sum, 4, 0);
    int st = t_wait(c, CHILD_MS);
    if (st != 0)
        FAIL("child: status %d%s", st, st == T_TIMEOUT ? " (hung)" : "");
    printf("the child of a thread with no pool ran its regions with 4 threads\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 3 || (strcmp(argv[2], "ok") != 0 && strcmp(argv[2], "hang") != 0)) {
        fprintf(stderr, "usage: %s pool|fresh ok|hang\n", argv[0]);
        return 2;
    }
    expect_hang = strcmp(argv[2], "hang") == 0;
    if (strcmp(argv[1], "pool") == 0)
        pool();
    else if (strcmp(argv[1], "fresh") == 0 && !expect_hang)
        fresh();
    else {
        fprintf(stderr, "%s: unknown case or expectation: %s %s\n", argv[0], argv[1], argv[2]);
        return 2;
    }
    return 0;
}
