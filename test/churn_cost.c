/* SPDX-License-Identifier: MIT */
/*
 * What one throwaway thread per fork costs, next to a plain pthread_create +
 * pthread_join measured in the same run.  A program that prints numbers, not a
 * test.  Samples are interleaved (A B C D A B C D ...) and the median is shown.
 *
 *   churn_cost [rounds] [ops per sample]
 *
 *   A  fork + _exit + waitpid, churn 0   (fsafe_set_churn(0))
 *   B  fork + _exit + waitpid, churn 1   (fsafe_set_churn(1))
 *   C  pthread_create + pthread_join, default attributes
 *   D  pthread_create + pthread_join, 64 KiB stack (as fsafe's throwaway)
 *
 * One uncontended mutex is registered so that A and B both run fsafe's fork
 * protocol; B - A is then the cost of the churn alone.
 */
#include "common.h"

#include <stdint.h>

#include "fsafe.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *nothing(void *arg)
{
    return arg;
}

static double forks(int churn, int ops)
{
    if (fsafe_set_churn(churn) != 0)
        FAIL("fsafe_set_churn(%d)", churn);
    uint64_t t0 = now_ns();
    for (int i = 0; i < ops; i++) {
        pid_t pid = fork();
        if (pid < 0)
            FAIL("fork: %s", strerror(errno));
        if (pid == 0)
            _exit(0);
        int st; /* blocking waitpid: t_wait's 5 ms polling would swamp the figure */
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            FAIL("child status %#x", st);
    }
    return (double)(now_ns() - t0) / ops;
}

static double threads(const pthread_attr_t *attr, int ops)
{
    uint64_t t0 = now_ns();
    for (int i = 0; i < ops; i++) {
        pthread_t t;
        int r = pthread_create(&t, attr, nothing, NULL);
        if (r != 0)
            FAIL("pthread_create: %s", strerror(r));
        pthread_join(t, NULL);
    }
    return (double)(now_ns() - t0) / ops;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 15;
    int ops = argc > 2 ? atoi(argv[2]) : 200;
    if (rounds < 1 || rounds > 1000 || ops < 1)
        FAIL("usage: churn_cost [rounds 1..1000] [ops per sample]");
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    CHECK_EQ(fsafe_register_lock(&m, FSAFE_MUTEX, 1, "churn_cost"), 0);
    pthread_attr_t small;
    pthread_attr_init(&small);
    pthread_attr_setstacksize(&small, 64 * 1024);

    double *a = calloc((size_t)rounds * 4, sizeof *a), *b = a + rounds, *c = b + rounds,
           *d = c + rounds;
    CHECK(a != NULL);
    forks(1, ops / 4 + 1); /* warm up: stack cache, page tables */
    threads(NULL, ops / 4 + 1);
    for (int r = 0; r < rounds; r++) {
        a[r] = forks(0, ops);
        b[r] = forks(1, ops);
        c[r] = threads(NULL, ops);
        d[r] = threads(&small, ops);
    }
    double ma = median(a, rounds), mb = median(b, rounds), mc = median(c, rounds),
           md = median(d, rounds);
    struct fsafe_stats s;
    fsafe_get_stats(&s, sizeof s);
    printf("churn_cost: %d rounds x %d ops, medians (ns per op)\n", rounds, ops);
    printf("  fork+exit+wait, churn 0          %10.0f\n", ma);
    printf("  fork+exit+wait, churn 1          %10.0f\n", mb);
    printf("  one throwaway thread per fork    %10.0f  (B - A)\n", mb - ma);
    printf("  pthread_create+join, default     %10.0f\n", mc);
    printf("  pthread_create+join, 64 KiB      %10.0f\n", md);
    printf("  churn: spawned %llu reaped %llu failed %llu\n", (unsigned long long)s.churn_spawned,
           (unsigned long long)s.churn_reaped, (unsigned long long)s.churn_failed);
    free(a);
    return 0;
}
