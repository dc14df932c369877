/* SPDX-License-Identifier: MIT */
/*
 * What a forked child costs against the process's thread history (issue 25):
 * a worker lets THREADS threads come and go (at most 1000 alive at once, each
 * taking a mutex once, so that auto mode gives it a record), joins them all,
 * then forks FORKS times.  Each child reports its own minor page faults
 * (getrusage) and CPU time (schedstat) through a pipe and exits; the parent's own faults per
 * fork are counted too (copy-on-write of pages the child shared).  The driver
 * runs the worker with nothing preloaded, with an empty library preloaded,
 * and with auto mode (libfsafe-auto.so, as fsafe-run does),
 * after 0, 1000 and 10000 threads.  A measurement: it prints numbers.
 *   child_cost [--quick]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker.h"

#define BATCH 1000

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t batch_barrier;

static void *short_lived(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
    pthread_barrier_wait(&batch_barrier); /* all of a batch alive at once */
    return NULL;
}

static void let_threads_come_and_go(int n)
{
    static pthread_t t[BATCH];
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    for (int done = 0; done < n;) {
        int k = n - done < BATCH ? n - done : BATCH;
        pthread_barrier_init(&batch_barrier, NULL, (unsigned)k);
        for (int i = 0; i < k; i++)
            if (pthread_create(&t[i], &a, short_lived, NULL) != 0) {
                fprintf(stderr, "child_cost: pthread_create failed at thread %d\n", done + i);
                exit(1);
            }
        for (int i = 0; i < k; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&batch_barrier);
        done += k;
    }
}

/* This thread's time on a CPU so far, in ns: the first field of
 * /proc/thread-self/schedstat (the scheduler's own accounting; getrusage's
 * CPU times are sampled at the tick, too coarse for a child's ~100 us).
 * open/read/close only: fine in a child. */
static long cpu_ns(void)
{
    char buf[128];
    int fd = open("/proc/thread-self/schedstat", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    long v = 0;
    for (char *p = buf; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (*p - '0');
    return v;
}

/* Prints "child_faults child_cpu_us parent_faults_per_fork" (means). */
static void worker(int threads, int forks)
{
    let_threads_come_and_go(threads);
    double faults = 0, cpu = 0;
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    for (int i = 0; i < forks; i++) {
        int fd[2];
        if (pipe(fd) != 0)
            exit(1);
        pid_t pid = fork();
        if (pid == 0) {
            struct rusage r;
            getrusage(RUSAGE_SELF, &r);
            long v[2] = {r.ru_minflt, cpu_ns() / 1000};
            if (write(fd[1], v, sizeof v) != (ssize_t)sizeof v)
                _exit(1);
            _exit(0);
        }
        close(fd[1]);
        long v[2] = {0, 0};
        if (read(fd[0], v, sizeof v) != (ssize_t)sizeof v)
            exit(1);
        close(fd[0]);
        waitpid(pid, NULL, 0);
        faults += (double)v[0];
        cpu += (double)v[1];
    }
    getrusage(RUSAGE_SELF, &after);
    printf("%.1f %.1f %.1f\n", faults / forks, cpu / forks,
           (double)(after.ru_minflt - before.ru_minflt) / forks);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--worker") == 0) {
        worker(atoi(argv[2]), atoi(argv[3]));
        return 0;
    }
    int quick = argc == 2 && strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
        return 2;
    }
    const char *forks = quick ? "5" : "200";
    static const char *const history[] = {"0", "1000", "10000"};
    static const char *const name[] = {"no preload", "empty preload", "auto mode"};
    const char *preload[] = {NULL, CHILD_COST_EMPTY_LIB, CHILD_COST_AUTO_LIB};
    printf("A child's cost against the threads the process has had (means over %s forks)\n",
           forks);
    printf("  %-8s %-14s %14s %14s %16s\n", "threads", "variant", "child faults",
           "child CPU us", "parent faults");
    for (int h = 0; h < (quick ? 2 : 3); h++)
        for (int v = 0; v < 3; v++) {
            char *args[] = {argv[0], "--worker", (char *)history[h], (char *)forks, NULL};
            double out[3];
            if (bench_run_worker(preload[v], args, out, 3) != 0) {
                fprintf(stderr, "child_cost: worker (%s, %s threads) failed\n", name[v],
                        history[h]);
                return 1;
            }
            printf("  %-8s %-14s %14.1f %14.1f %16.1f\n", history[h], name[v], out[0], out[1],
                   out[2]);
        }
    return 0;
}
