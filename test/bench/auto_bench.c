/* SPDX-License-Identifier: MIT */
/*
 * fsafe_auto_bench: what auto mode (libfsafe-auto.so) costs.  Prints numbers
 * and ratios; judges nothing.
 *
 *   A. one uncontended pthread_mutex_lock + unlock pair (and rwlock read
 *      pair), with libfsafe-auto.so preloaded against no preload;
 *   B. fork latency, p50 and p99, while 8 threads take and release 64 locks
 *      in a tight loop: auto mode against registered mode (the 64 locks
 *      registered with libfsafe.so, no tracking).
 *
 * Each variant runs in its own process (this program re-executed with
 * --worker), so "no preload" never loaded fsafe; rounds alternate the order
 * of the variants, and the tables give medians over rounds.
 */
#define _GNU_SOURCE
#define FSAFE_OPTIONAL
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsafe.h"
#include "worker.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

/* ---- workers (one process each) ---------------------------------------------------- */
static pthread_mutex_t pair_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t pair_rwlock = PTHREAD_RWLOCK_INITIALIZER;

static void *idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

/* Figure A: prints "mutex_ns rwlock_ns" for one batch. */
static void worker_pairs(long iters)
{
    pthread_t t;
    pthread_create(&t, NULL, idle, NULL); /* a multithreaded process, as in real use */
    for (long i = 0; i < iters / 10; i++) { /* warm up */
        pthread_mutex_lock(&pair_mutex);
        pthread_mutex_unlock(&pair_mutex);
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        pthread_mutex_lock(&pair_mutex);
        pthread_mutex_unlock(&pair_mutex);
    }
    uint64_t t1 = now_ns();
    for (long i = 0; i < iters; i++) {
        pthread_rwlock_rdlock(&pair_rwlock);
        pthread_rwlock_unlock(&pair_rwlock);
    }
    uint64_t t2 = now_ns();
    printf("%.3f %.3f\n", (double)(t1 - t0) / (double)iters, (double)(t2 - t1) / (double)iters);
}

/* `forks` forks of a child that exits at once: the parent's fork() latency
 * of each, in microseconds (malloc'd). */
static double *time_forks(int forks)
{
    double *lat = malloc(sizeof *lat * (size_t)forks);
    for (int i = 0; i < forks; i++) {
        uint64_t t0 = now_ns();
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        uint64_t t1 = now_ns();
        lat[i] = (double)(t1 - t0) / 1000.0;
        waitpid(pid, NULL, 0);
    }
    return lat;
}

#define NLOCKS 64
#define NTHREADS 8
static pthread_mutex_t locks[NLOCKS];
static volatile int stop;

static void *hammer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!stop) {
        int i = (int)(rand_r(&seed) % NLOCKS);
        pthread_mutex_lock(&locks[i]);
        for (volatile int k = 0; k < 50; k++) {
        }
        pthread_mutex_unlock(&locks[i]);
    }
    return NULL;
}

/* Figure B: prints "p50_us p99_us" over `forks` forks. */
static void worker_forks(int forks, int registered)
{
    for (int i = 0; i < NLOCKS; i++) {
        pthread_mutex_init(&locks[i], NULL);
        if (registered && fsafe_opt_register_lock(&locks[i], FSAFE_MUTEX, i, "bench") != 0) {
            fprintf(stderr, "fsafe_auto_bench: registration failed (libfsafe.so not loaded?)\n");
            exit(1);
        }
    }
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)(i + 1));
    double *lat = time_forks(forks);
    stop = 1;
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    double p50 = pct(lat, forks, 0.50), p99 = pct(lat, forks, 0.99);
    printf("%.1f %.1f\n", p50, p99);
}

/* Figure C: a thread pool's queue, a monitor (a mutex and a condition
 * variable): 2 producers and 4 consumers keep it busy; prints "p50 p99" of
 * fork latency.  Auto mode opens such forks (src/README.md, "Monitors"). */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER;
static long q_count;

static void spin(int n)
{
    for (volatile int k = 0; k < n; k++) {
    }
}

static void *q_producer(void *arg)
{
    (void)arg;
    while (!stop) {
        pthread_mutex_lock(&q_lock);
        q_count++;
        pthread_cond_signal(&q_cv);
        pthread_mutex_unlock(&q_lock);
        spin(2000);
    }
    return NULL;
}

static void *q_consumer(void *arg)
{
    (void)arg;
    while (!stop) {
        pthread_mutex_lock(&q_lock);
        while (q_count == 0 && !stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000L)
                ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&q_cv, &q_lock, &ts);
        }
        if (q_count > 0)
            q_count--;
        pthread_mutex_unlock(&q_lock);
        spin(5000);
    }
    return NULL;
}

static void worker_queue(int forks)
{
    pthread_t t[6];
    for (int i = 0; i < 6; i++)
        pthread_create(&t[i], NULL, i < 2 ? q_producer : q_consumer, NULL);
    double *lat = time_forks(forks);
    stop = 1;
    pthread_mutex_lock(&q_lock);
    pthread_cond_broadcast(&q_cv);
    pthread_mutex_unlock(&q_lock);
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    printf("%.1f %.1f\n", pct(lat, forks, 0.50), pct(lat, forks, 0.99));
}

/* ---- the driver ---------------------------------------------------------------------- */
static const char *self;

/* Runs this program as a worker with LD_PRELOAD=preload (NULL: none); parses
 * two numbers from its output. */
static void run_worker(const char *preload, const char *fig, const char *arg, const char *mode,
                       double out[2])
{
    char *argv[] = {(char *)self, "--worker", (char *)fig, (char *)arg, (char *)mode, NULL};
    if (bench_run_worker(preload, argv, out, 2) != 0) {
        fprintf(stderr, "fsafe_auto_bench: worker %s %s failed\n", fig, mode);
        exit(1);
    }
}

/* Rounds of fork-latency workers of figure fig, variant a (lib_a, mode_a)
 * and b taking turns at going first; each round's p50 and p99. */
static void latency_rounds(const char *fig, const char *forks, const char *lib_a, const char *mode_a,
                           const char *lib_b, const char *mode_b, int rounds, double *a50,
                           double *a99, double *b50, double *b99)
{
    for (int r = 0; r < rounds; r++) {
        double a[2], b[2];
        if (r & 1) {
            run_worker(lib_a, fig, forks, mode_a, a);
            run_worker(lib_b, fig, forks, mode_b, b);
        } else {
            run_worker(lib_b, fig, forks, mode_b, b);
            run_worker(lib_a, fig, forks, mode_a, a);
        }
        a50[r] = a[0], a99[r] = a[1], b50[r] = b[0], b99[r] = b[1];
    }
}

static double median(double *v, int n)
{
    return pct(v, n, 0.5);
}

int main(int argc, char **argv)
{
    self = argv[0];
    /* Every worker's bound on auto mode's wait (the bare ones ignore it). */
    setenv("FSAFE_AUTO_WAIT_MS", "5000", 1);
    if (argc == 5 && strcmp(argv[1], "--worker") == 0) {
        if (strcmp(argv[2], "pairs") == 0)
            worker_pairs(atol(argv[3]));
        else if (strcmp(argv[2], "queue") == 0)
            worker_queue(atoi(argv[3]));
        else
            worker_forks(atoi(argv[3]), strcmp(argv[4], "registered") == 0);
        return 0;
    }
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
        return 2;
    }
    int rounds = quick ? 2 : 7;
    const char *iters = quick ? "200000" : "5000000";
    const char *forks = quick ? "20" : "300";

    double bare_m[16], auto_m[16], bare_r[16], auto_r[16], ratio_m[16], ratio_r[16];
    for (int r = 0; r < rounds; r++) {
        double a[2], b[2];
        if (r & 1) {
            run_worker(FSAFE_AUTO_LIB, "pairs", iters, "auto", b);
            run_worker(NULL, "pairs", iters, "bare", a);
        } else {
            run_worker(NULL, "pairs", iters, "bare", a);
            run_worker(FSAFE_AUTO_LIB, "pairs", iters, "auto", b);
        }
        bare_m[r] = a[0], bare_r[r] = a[1], auto_m[r] = b[0], auto_r[r] = b[1];
        ratio_m[r] = b[0] / a[0], ratio_r[r] = b[1] / a[1];
    }
    printf("A. uncontended lock+unlock pair, %s iterations, median of %d rounds\n", iters, rounds);
    printf("   %-22s %10s %10s %8s\n", "", "no preload", "auto", "ratio");
    printf("   %-22s %8.2f ns %8.2f ns %8.3f\n", "pthread_mutex", median(bare_m, rounds),
           median(auto_m, rounds), median(ratio_m, rounds));
    printf("   %-22s %8.2f ns %8.2f ns %8.3f\n", "pthread_rwlock (read)", median(bare_r, rounds),
           median(auto_r, rounds), median(ratio_r, rounds));

    double a50[16], a99[16], r50[16], r99[16];
    latency_rounds("forks", forks, FSAFE_AUTO_LIB, "auto", FSAFE_LIB, "registered", rounds, a50, a99,
                   r50, r99);
    printf("B. fork() latency, %d threads taking and releasing %d locks, %s forks per round,\n"
           "   median over %d rounds of each round's percentile\n",
           NTHREADS, NLOCKS, forks, rounds);
    printf("   %-22s %10s %10s\n", "", "p50", "p99");
    printf("   %-22s %7.1f us %7.1f us\n", "registered (libfsafe)", median(r50, rounds),
           median(r99, rounds));
    printf("   %-22s %7.1f us %7.1f us\n", "auto (libfsafe-auto)", median(a50, rounds),
           median(a99, rounds));
    printf("   auto/registered        %10.2f %10.2f\n", median(a50, rounds) / median(r50, rounds),
           median(a99, rounds) / median(r99, rounds));

    double q50[16], q99[16], b50[16], b99[16];
    latency_rounds("queue", forks, FSAFE_AUTO_LIB, "auto", NULL, "bare", rounds, q50, q99, b50, b99);
    printf("C. fork() latency, a thread pool's queue (a monitor: 2 producers, 4 consumers),\n"
           "   %s forks per round, median over %d rounds of each round's percentile\n",
           forks, rounds);
    printf("   %-22s %10s %10s\n", "", "p50", "p99");
    printf("   %-22s %7.1f us %7.1f us\n", "no preload", median(b50, rounds), median(b99, rounds));
    printf("   %-22s %7.1f us %7.1f us\n", "auto (libfsafe-auto)", median(q50, rounds),
           median(q99, rounds));
    printf("   auto/no preload        %10.2f %10.2f\n", median(q50, rounds) / median(b50, rounds),
           median(q99, rounds) / median(b99, rounds));
    return 0;
}
