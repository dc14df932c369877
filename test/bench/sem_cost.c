/* SPDX-License-Identifier: MIT */
/*
 * The cost of a semaphore used as a lock, with libfsafe-auto.so preloaded
 * (auto mode tracks it: src/auto/sem.c) against no preload.  Prints ns per
 * uncontended sem_wait+sem_post pair and sem_trywait+sem_post pair (the
 * second is what an uncontended CPython 3.11 lock acquire/release does), the
 * median of interleaved rounds in fresh processes (thread CPU time), and the
 * ratio.  A program
 * that prints numbers: it judges nothing.
 *   sem_cost [--lib PATH] [--rounds N] [--pairs N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"

#ifndef SEM_COST_AUTO_LIB
#define SEM_COST_AUTO_LIB "libfsafe-auto.so"
#endif

static double now_ns(void)
{
    struct timespec ts;
    /* CPU time of this thread: other processes on a shared machine do not
     * count (they still disturb caches). */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Worker: prints "<wait+post ns> <trywait+post ns>" for this process. */
static int worker(long pairs)
{
    sem_t s;
    if (sem_init(&s, 0, 1) != 0)
        return 1;
    for (long i = 0; i < pairs / 10; i++) { /* warm up */
        sem_wait(&s);
        sem_post(&s);
    }
    double t0 = now_ns();
    for (long i = 0; i < pairs; i++) {
        sem_wait(&s);
        sem_post(&s);
    }
    double t1 = now_ns();
    for (long i = 0; i < pairs; i++) {
        if (sem_trywait(&s) != 0)
            return 1;
        sem_post(&s);
    }
    double t2 = now_ns();
    printf("%.3f %.3f\n", (t1 - t0) / pairs, (t2 - t1) / pairs);
    return 0;
}

static int run(const char *preload, long pairs, double out[2])
{
    char n[32];
    snprintf(n, sizeof n, "%ld", pairs);
    char *argv[] = {"sem_cost", "--worker", n, NULL};
    return bench_run_worker(preload, argv, out, 2);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *lib = SEM_COST_AUTO_LIB;
    long rounds = 7, pairs = 5000000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--worker") && i + 1 < argc)
            return worker(atol(argv[i + 1]));
        else if (!strcmp(argv[i], "--lib") && i + 1 < argc)
            lib = argv[++i];
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atol(argv[++i]);
        else if (!strcmp(argv[i], "--pairs") && i + 1 < argc)
            pairs = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--lib PATH] [--rounds N] [--pairs N]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > 101 || pairs < 1)
        return 2;
    double plain[2][101], with[2][101];
    for (long r = 0; r < rounds; r++) {
        double a[2], b[2];
        if (run(NULL, pairs, a) != 0 || run(lib, pairs, b) != 0) {
            fprintf(stderr, "sem_cost: a worker failed (library %s)\n", lib);
            return 1;
        }
        for (int k = 0; k < 2; k++)
            plain[k][r] = a[k], with[k][r] = b[k];
    }
    static const char *what[2] = {"sem_wait+sem_post", "sem_trywait+sem_post"};
    printf("%-22s %12s %12s %7s   (median of %ld rounds of %ld pairs)\n", "pair", "plain ns",
           "auto ns", "ratio", rounds, pairs);
    for (int k = 0; k < 2; k++) {
        qsort(plain[k], (size_t)rounds, sizeof(double), cmp);
        qsort(with[k], (size_t)rounds, sizeof(double), cmp);
        double p = plain[k][rounds / 2], w = with[k][rounds / 2];
        printf("%-22s %12.2f %12.2f %6.2fx\n", what[k], p, w, w / p);
    }
    return 0;
}
