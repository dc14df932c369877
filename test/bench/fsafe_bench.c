/* SPDX-License-Identifier: MIT */
/*
 * fsafe's benchmarks: what a fork costs with fsafe, against the alternatives.
 * One binary, two roles: the driver (no fsafe in it, ever) starts worker
 * processes of itself, with or without LD_PRELOAD=libfsafe.so, interleaves
 * their batches, and prints/writes the results.  Prints numbers only; it never
 * judges speed (goals are checked by a reader of the table, not by a test).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FSAFE_OPTIONAL /* the "without fsafe" worker must never load it */
#include "fsafe.h"

#ifndef FSAFE_BENCH_LIB
#define FSAFE_BENCH_LIB "libfsafe.so"
#endif
#ifndef FSAFE_BENCH_EMPTY_LIB
#define FSAFE_BENCH_EMPTY_LIB "libfsafe_bench_empty.so"
#endif

/* ---- small helpers ----------------------------------------------------------- */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fsafe_bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        die("out of memory (%zu x %zu)", n, size);
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Quantile q of v[0..n) (linear interpolation); sorts a copy. */
static double quantile(const double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    double *s = xcalloc(n, sizeof *s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    double r = i + 1 < n ? s[i] + (s[i + 1] - s[i]) * (pos - (double)i) : s[n - 1];
    free(s);
    return r;
}

/* ---- rows: one line of the table ---------------------------------------------
 * A worker prints rows on stdout as text ("ROW fig name unit n median p10 p90
 * [key=value ...]"); the driver parses them, prints the table and the JSON. */
#define MAX_EXTRA 6
struct row {
    int fig;
    char name[64];
    char unit[16];
    int n;
    double median, p10, p90;
    int nextra;
    char ekey[MAX_EXTRA][24];
    double eval[MAX_EXTRA];
};
static struct row rows[256];
static int nrows;

static struct row *row_add(int fig, const char *name, const char *unit, const double *v, size_t n)
{
    if (nrows == (int)(sizeof rows / sizeof rows[0]))
        die("too many rows");
    struct row *r = &rows[nrows++];
    memset(r, 0, sizeof *r);
    r->fig = fig;
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    r->n = (int)n;
    r->median = quantile(v, n, 0.5);
    r->p10 = quantile(v, n, 0.1);
    r->p90 = quantile(v, n, 0.9);
    return r;
}

static void row_extra(struct row *r, const char *key, double val)
{
    if (r->nextra == MAX_EXTRA)
        die("too many extras on row %s", r->name);
    snprintf(r->ekey[r->nextra], sizeof r->ekey[0], "%s", key);
    r->eval[r->nextra++] = val;
}

/* Worker side: print and forget the rows made so far. */
static void rows_emit(void)
{
    for (int i = 0; i < nrows; i++) {
        struct row *r = &rows[i];
        printf("ROW %d %s %s %d %.6g %.6g %.6g", r->fig, r->name, r->unit, r->n, r->median, r->p10,
               r->p90);
        for (int k = 0; k < r->nextra; k++)
            printf(" %s=%.6g", r->ekey[k], r->eval[k]);
        printf("\n");
    }
    fflush(stdout);
    nrows = 0;
}

/* Driver side: parse one ROW line from a worker. */
static void row_parse(const char *line)
{
    struct row r;
    memset(&r, 0, sizeof r);
    int used = 0;
    if (sscanf(line, "ROW %d %63s %15s %d %lf %lf %lf%n", &r.fig, r.name, r.unit, &r.n, &r.median,
               &r.p10, &r.p90, &used) != 7)
        die("malformed row from worker: %s", line);
    const char *p = line + used;
    while (*p == ' ' && r.nextra < MAX_EXTRA) {
        int k = 0;
        if (sscanf(p, " %23[^=]=%lf%n", r.ekey[r.nextra], &r.eval[r.nextra], &k) != 2)
            die("malformed extra from worker: %s", p);
        r.nextra++;
        p += k;
    }
    if (nrows == (int)(sizeof rows / sizeof rows[0]))
        die("too many rows");
    rows[nrows++] = r;
}

/* ---- workers started by the driver ------------------------------------------ */
struct worker {
    pid_t pid;
    FILE *to, *from;
    char label[48];
};

static const char *lib_path = FSAFE_BENCH_LIB;
static const char *empty_lib_path = FSAFE_BENCH_EMPTY_LIB;
static const char *also_preload; /* --also-preload: a 4th figure-1 variant, for investigation */

/* Starts "self --worker args..." with the given library preloaded (NULL:
 * none); the worker says "ready" once its setup is done. */
static void worker_start(struct worker *w, const char *preload, const char *label,
                         char *const args[])
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
        die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        if (preload)
            setenv("LD_PRELOAD", preload, 1);
        else
            unsetenv("LD_PRELOAD");
        unsetenv("FSAFE_CHURN"); /* each worker sets exactly what it measures */
        char *argv[16];
        int a = 0;
        argv[a++] = "fsafe_bench";
        argv[a++] = "--worker";
        for (int i = 0; args[i] && a < 15; i++)
            argv[a++] = args[i];
        argv[a] = NULL;
        execv("/proc/self/exe", argv);
        fprintf(stderr, "fsafe_bench: exec: %s\n", strerror(errno));
        _exit(127);
    }
    close(in[0]), close(out[1]);
    w->pid = pid;
    w->to = fdopen(in[1], "w");
    w->from = fdopen(out[0], "r");
    snprintf(w->label, sizeof w->label, "%s", label);
    char line[256];
    if (!fgets(line, sizeof line, w->from) || strncmp(line, "ready", 5) != 0)
        die("worker %s failed to start", label);
}

/* Reads a worker's output to the end, keeps its ROW lines, reaps it. */
static void worker_finish(struct worker *w)
{
    fclose(w->to);
    char line[1024];
    while (fgets(line, sizeof line, w->from))
        if (strncmp(line, "ROW ", 4) == 0)
            row_parse(line);
    fclose(w->from);
    int st;
    if (waitpid(w->pid, &st, 0) != w->pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("worker %s failed (status 0x%x)", w->label, st);
}

/* Asks a fork-loop worker for one batch; returns ns per fork. */
static double worker_batch(struct worker *w, int k)
{
    fprintf(w->to, "%d\n", k);
    fflush(w->to);
    char line[128];
    if (!fgets(line, sizeof line, w->from))
        die("worker %s died during a batch", w->label);
    return strtod(line, NULL) / k;
}

/* ---- worker: the fork+_exit+waitpid loop ------------------------------------- */
static pthread_mutex_t *mtx;
static int nmtx;
static int b_cursor; /* variant (b): which mutex the next handler is about */

static void a_prepare(void)
{
    for (int i = 0; i < nmtx; i++)
        pthread_mutex_lock(&mtx[i]);
}
static void a_release(void)
{
    for (int i = nmtx - 1; i >= 0; i--)
        pthread_mutex_unlock(&mtx[i]);
}
/* (b): N registrations of one handler triple.  glibc runs prepare handlers
 * newest first and parent/child handlers oldest first, so a cursor walks the
 * array down in prepare and back up after the fork. */
static void b_prepare(void)
{
    pthread_mutex_lock(&mtx[--b_cursor]);
}
static void b_release(void)
{
    pthread_mutex_unlock(&mtx[b_cursor++]);
}

static void one_fork(void)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(0);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("fork child failed (status 0x%x)", st);
}

static void need_fsafe(void)
{
    if (!fsafe_present())
        die("worker needs libfsafe.so (LD_PRELOAD); use --lib PATH");
}

/* An idle thread: it makes the worker multithreaded, as every program that
 * needs fsafe is.  glibc (2.35 and later) takes and releases a mutex with
 * plain stores, not atomic instructions, while a process has never had a
 * second thread; with one, every variant pays what a real program pays. */
static void *idle_thread(void *arg)
{
    for (;;)
        pause();
    return arg;
}

static int worker_forkloop(const char *mode, int n, int threads)
{
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
            die("pthread_create failed");
    }
    nmtx = n;
    mtx = xcalloc(n ? (size_t)n : 1, sizeof *mtx);
    for (int i = 0; i < n; i++)
        pthread_mutex_init(&mtx[i], NULL);
    if (strcmp(mode, "plain") == 0) {
        if (fsafe_present())
            die("plain worker has fsafe loaded");
    } else if (strcmp(mode, "fsafe") == 0) {
        need_fsafe();
        for (int i = 0; i < n; i++)
            if (fsafe_opt_register_lock(&mtx[i], FSAFE_MUTEX | FSAFE_PRIVATE, 100, "bench") != 0)
                die("register failed");
    } else if (strcmp(mode, "a") == 0) {
        if (n && pthread_atfork(a_prepare, a_release, a_release) != 0)
            die("pthread_atfork failed");
    } else if (strcmp(mode, "b") == 0) {
        for (int i = 0; i < n; i++)
            if (pthread_atfork(b_prepare, b_release, b_release) != 0)
                die("pthread_atfork #%d failed", i);
        b_cursor = n;
    } else {
        die("unknown fork-loop mode %s", mode);
    }
    one_fork(); /* warm up: first-touch faults, lazy binding */
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        int k = atoi(line);
        uint64_t t0 = now_ns();
        for (int i = 0; i < k; i++)
            one_fork();
        printf("%llu\n", (unsigned long long)(now_ns() - t0));
        fflush(stdout);
    }
    return 0;
}

/* ---- worker: fork latency under contention (figure 3) ------------------------- */
#define CONT_LOCKS 64
static pthread_mutex_t cont_mtx[CONT_LOCKS];
static volatile int cont_run;  /* workers spin on the locks while set */
static volatile int cont_quit;

static void *contender(void *arg)
{
    (void)arg;
    struct timespec idle = {0, 1000 * 1000};
    while (!cont_quit) {
        if (!cont_run) {
            nanosleep(&idle, NULL);
            continue;
        }
        for (int i = 0; i < CONT_LOCKS; i++) {
            pthread_mutex_lock(&cont_mtx[i]);
            __asm__ volatile("" ::: "memory");
            pthread_mutex_unlock(&cont_mtx[i]);
        }
    }
    return NULL;
}

static double fork_latency(void)
{
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    uint64_t dt = now_ns() - t0;
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(0);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("fork child failed (status 0x%x)", st);
    return (double)dt;
}

static int worker_contend(int total, int batch)
{
    need_fsafe();
    for (int i = 0; i < CONT_LOCKS; i++) {
        pthread_mutex_init(&cont_mtx[i], NULL);
        if (fsafe_opt_register_lock(&cont_mtx[i], FSAFE_MUTEX | FSAFE_PRIVATE, i, "contended"))
            die("register failed");
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, contender, NULL))
            die("pthread_create failed");
    printf("ready\n");
    fflush(stdout);
    double *on = xcalloc((size_t)total, sizeof *on), *off = xcalloc((size_t)total, sizeof *off);
    int non = 0, noff = 0;
    for (int round = 0; non < total || noff < total; round++) {
        int with = round & 1;
        cont_run = with;
        struct timespec settle = {0, 2 * 1000 * 1000};
        nanosleep(&settle, NULL); /* let the workers notice */
        for (int i = 0; i < batch; i++) {
            if (with && non < total)
                on[non++] = fork_latency();
            else if (!with && noff < total)
                off[noff++] = fork_latency();
        }
    }
    cont_quit = 1;
    cont_run = 0;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    struct row *r;
    r = row_add(3, "fork_latency_no_workers", "ns", off, (size_t)noff);
    row_extra(r, "p99", quantile(off, (size_t)noff, 0.99));
    row_extra(r, "max", quantile(off, (size_t)noff, 1.0));
    r = row_add(3, "fork_latency_2_workers_64_locks", "ns", on, (size_t)non);
    row_extra(r, "p99", quantile(on, (size_t)non, 0.99));
    row_extra(r, "max", quantile(on, (size_t)non, 1.0));
    rows_emit();
    return 0;
}

/* ---- worker: registry scaling (figure 4) -------------------------------------- */
struct reg_job {
    pthread_mutex_t *m;
    long n;
    int ranks; /* distinct ranks: 16, or 1 = all equal */
    pthread_barrier_t *bar;
    int unregister;
};

static void *reg_thread(void *arg)
{
    struct reg_job *j = arg;
    pthread_barrier_wait(j->bar);
    for (long i = 0; i < j->n; i++) {
        int err = j->unregister ? fsafe_opt_unregister_lock(&j->m[i])
                                : fsafe_opt_register_lock(&j->m[i], FSAFE_MUTEX | FSAFE_PRIVATE,
                                                          (int)(i % j->ranks), NULL);
        if (err)
            die("%s #%ld failed: %d", j->unregister ? "unregister" : "register", i, err);
    }
    return NULL;
}

/* Register (then unregister) n locks with nthreads threads, each its own
 * slice; returns ns per operation for each phase in out[0], out[1]. */
static void reg_run(pthread_mutex_t *m, long n, int ranks, int nthreads, double out[2])
{
    for (int phase = 0; phase < 2; phase++) {
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, (unsigned)nthreads + 1);
        struct reg_job jobs[2];
        pthread_t t[2];
        for (int i = 0; i < nthreads; i++) {
            jobs[i] = (struct reg_job){m + i * (n / nthreads), n / nthreads, ranks, &bar, phase};
            if (pthread_create(&t[i], NULL, reg_thread, &jobs[i]))
                die("pthread_create failed");
        }
        /* The clock starts before the barrier opens: on 2 cores the released
         * workers may run to completion before this thread is scheduled. */
        uint64_t t0 = now_ns();
        pthread_barrier_wait(&bar);
        for (int i = 0; i < nthreads; i++)
            pthread_join(t[i], NULL);
        out[phase] = (double)(now_ns() - t0) / (double)n;
        pthread_barrier_destroy(&bar);
    }
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (!f || fscanf(f, "%ld %ld", &size, &res) != 2)
        die("cannot read /proc/self/statm");
    fclose(f);
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static int worker_registry(long nmax, int reps)
{
    need_fsafe();
    pthread_mutex_t *m = xcalloc((size_t)nmax, sizeof *m);
    for (long i = 0; i < nmax; i++)
        pthread_mutex_init(&m[i], NULL);
    printf("ready\n");
    fflush(stdout);

    /* Memory: the first registration of nmax locks maps fresh entries and
     * hash table; the resident growth divided by nmax is the cost per entry. */
    long before = rss_kb();
    double tmp[2];
    reg_run(m, nmax, 16, 1, tmp);
    (void)tmp;
    long after_reg = rss_kb();
    double bytes = (double)(after_reg - before) * 1024.0 / (double)nmax;
    struct row *r = row_add(4, "memory_per_entry", "bytes", &bytes, 1);
    row_extra(r, "n", (double)nmax);

    static const int ranks_v[2] = {16, 1};
    for (long n = 1000; n <= nmax; n *= 10)
        for (int ri = 0; ri < 2; ri++)
            for (int th = 1; th <= 2; th++) {
                double *reg = xcalloc((size_t)reps, sizeof *reg);
                double *unreg = xcalloc((size_t)reps, sizeof *unreg);
                for (int k = 0; k < reps; k++) {
                    double o[2];
                    reg_run(m, n, ranks_v[ri], th, o);
                    reg[k] = o[0];
                    unreg[k] = o[1];
                }
                char name[64];
                snprintf(name, sizeof name, "register_n%ld_%s_%dthr", n,
                         ranks_v[ri] == 16 ? "16ranks" : "1rank", th);
                row_add(4, name, "ns/op", reg, (size_t)reps);
                snprintf(name, sizeof name, "unregister_n%ld_%s_%dthr", n,
                         ranks_v[ri] == 16 ? "16ranks" : "1rank", th);
                row_add(4, name, "ns/op", unreg, (size_t)reps);
                free(reg);
                free(unreg);
            }
    rows_emit();
    return 0;
}

/* ---- worker: churn cost (figure 5) --------------------------------------------- */
static void *noop_thread(void *arg)
{
    return arg;
}

static void create_join(int count)
{
    for (int i = 0; i < count; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, noop_thread, NULL) || pthread_join(t, NULL))
            die("pthread_create/join failed");
    }
}

static int set_churn(int n)
{
    return fsafe_set_churn ? fsafe_set_churn(n) : ENOSYS;
}

static int worker_churn(int rounds, int k)
{
    need_fsafe();
    printf("ready\n");
    fflush(stdout);
    /* Variants, interleaved in every round (rotating the start):
     * 0 fork churn 0, 1 fork churn 1, 2 fork churn 4, 3 create+join 1, 4 create+join 4 */
    enum { NV = 5 };
    double *s[NV];
    for (int v = 0; v < NV; v++)
        s[v] = xcalloc((size_t)rounds, sizeof(double));
    double *d1 = xcalloc((size_t)rounds, sizeof *d1), *d4 = xcalloc((size_t)rounds, sizeof *d4);
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < NV; j++) {
            int v = (r + j) % NV;
            if (v <= 2 && set_churn(v == 0 ? 0 : v == 1 ? 1 : 4) != 0)
                die("fsafe_set_churn failed");
            uint64_t t0 = now_ns();
            for (int i = 0; i < k; i++) {
                if (v <= 2)
                    one_fork();
                else
                    create_join(v == 3 ? 1 : 4);
            }
            s[v][r] = (double)(now_ns() - t0) / k;
        }
        d1[r] = s[1][r] - s[0][r];
        d4[r] = s[2][r] - s[0][r];
    }
    set_churn(0);
    struct fsafe_stats st;
    memset(&st, 0, sizeof st);
    if (fsafe_get_stats && fsafe_get_stats(&st, sizeof st) == 0 &&
        st.churn_spawned < (uint64_t)rounds * k * 5)
        die("churn did not run: %llu throwaway threads", (unsigned long long)st.churn_spawned);
    row_add(5, "fork_churn0", "ns", s[0], (size_t)rounds);
    struct row *x;
    x = row_add(5, "fork_churn1", "ns", s[1], (size_t)rounds);
    row_extra(x, "added_ns", quantile(d1, (size_t)rounds, 0.5));
    x = row_add(5, "fork_churn4", "ns", s[2], (size_t)rounds);
    row_extra(x, "added_ns", quantile(d4, (size_t)rounds, 0.5));
    x = row_add(5, "create_join1", "ns", s[3], (size_t)rounds);
    row_extra(x, "churn_added_over_this", quantile(d1, (size_t)rounds, 0.5) / quantile(s[3], (size_t)rounds, 0.5));
    x = row_add(5, "create_join4", "ns", s[4], (size_t)rounds);
    row_extra(x, "churn_added_over_this", quantile(d4, (size_t)rounds, 0.5) / quantile(s[4], (size_t)rounds, 0.5));
    rows_emit();
    return 0;
}

static int worker_main(int argc, char **argv)
{
    if (argc < 1)
        die("worker: missing kind");
    if (strcmp(argv[0], "forkloop") == 0 && (argc == 3 || argc == 4))
        return worker_forkloop(argv[1], atoi(argv[2]), argc == 4 ? atoi(argv[3]) : 0);
    if (strcmp(argv[0], "contend") == 0 && argc == 3)
        return worker_contend(atoi(argv[1]), atoi(argv[2]));
    if (strcmp(argv[0], "registry") == 0 && argc == 3)
        return worker_registry(atol(argv[1]), atoi(argv[2]));
    if (strcmp(argv[0], "churn") == 0 && argc == 3)
        return worker_churn(atoi(argv[1]), atoi(argv[2]));
    die("worker: bad arguments");
    return 1;
}

/* ---- driver --------------------------------------------------------------------- */
struct params {
    int f1_rounds, f1_k;
    int f2_rounds, f2_k;
    int f3_total, f3_batch;
    long f4_nmax;
    int f4_reps;
    int f5_rounds, f5_k;
};

static void start_forkloop_threads(struct worker *w, const char *mode, int n, int threads,
                                   const char *preload)
{
    char nbuf[16], tbuf[16], label[48];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    snprintf(tbuf, sizeof tbuf, "%d", threads);
    snprintf(label, sizeof label, "forkloop %s %d %d", mode, n, threads);
    char *args[] = {"forkloop", (char *)mode, nbuf, tbuf, NULL};
    worker_start(w, preload, label, args);
}

static void start_forkloop_with(struct worker *w, const char *mode, int n, const char *preload)
{
    start_forkloop_threads(w, mode, n, 0, preload);
}

static void start_forkloop(struct worker *w, const char *mode, int n, int threads)
{
    start_forkloop_threads(w, mode, n, threads, strcmp(mode, "fsafe") == 0 ? lib_path : NULL);
}

/* Figure 1: nothing registered, fsafe loaded vs never loaded, plus a
 * process with an empty library preloaded: what loading any library costs a
 * fork (more mappings to copy), as opposed to what fsafe's code costs.
 * Interleaved, the order rotating every round. */
static void fig1(const struct params *p)
{
    struct worker w[4];
    int nv = also_preload ? 4 : 3;
    start_forkloop(&w[0], "plain", 0, 0);
    start_forkloop(&w[1], "fsafe", 0, 0);
    start_forkloop_with(&w[2], "plain", 0, empty_lib_path);
    if (also_preload)
        start_forkloop_with(&w[3], "plain", 0, also_preload);
    int R = p->f1_rounds;
    double *s[4], *ratio[4];
    for (int v = 0; v < nv; v++) {
        s[v] = xcalloc((size_t)R, sizeof(double));
        ratio[v] = xcalloc((size_t)R, sizeof(double));
    }
    for (int r = 0; r < R; r++) {
        for (int j = 0; j < nv; j++) {
            int v = (r + j) % nv;
            s[v][r] = worker_batch(&w[v], p->f1_k);
        }
        for (int v = 1; v < nv; v++)
            ratio[v][r] = s[v][r] / s[0][r];
    }
    for (int v = 0; v < nv; v++)
        worker_finish(&w[v]);
    row_add(1, "fork_without_fsafe", "ns", s[0], (size_t)R);
    static const char *const name[] = {"", "fork_fsafe_nothing_registered",
                                       "fork_empty_lib_preloaded", "fork_also_preload"};
    for (int v = 1; v < nv; v++) {
        struct row *x = row_add(1, name[v], "ns", s[v], (size_t)R);
        row_extra(x, "ratio", quantile(ratio[v], (size_t)R, 0.5));
        row_extra(x, "ratio_p10", quantile(ratio[v], (size_t)R, 0.1));
        row_extra(x, "ratio_p90", quantile(ratio[v], (size_t)R, 0.9));
    }
    for (int v = 0; v < nv; v++)
        free(s[v]), free(ratio[v]);
}

/* One half of figure 2 (below), in workers with this many idle threads. */
/* a_in_library: (a) in a worker with the empty library preloaded, as fsafe's
 * is preloaded: what the walk costs against (a), without what any loaded
 * library costs each fork (figure 1's floor). */
#define NV2 5
#define WORKERS2 4
static const char *const vname[NV2] = {"", "fsafe", "a_one_atfork", "b_n_atforks",
                                       "a_in_library"};

static void fig2_run(const struct params *p, int threads)
{
    static const int ns[] = {16, 256, 1024, 4096};
    static const char *const modes[NV2] = {"plain", "fsafe", "a", "b", "a"};
    const char *pre = threads ? "mt_" : "";
    int R = p->f2_rounds;
    double extra[4][NV2]; /* [N][variant]: median of the fork's cost over the baseline, ns */
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        int n = ns[ni];
        /* WORKERS2 processes per variant, taking turns by round: each has its
         * own address-space layout, which moves a fork by a few µs (more
         * than the differences measured here). */
        struct worker w[NV2][WORKERS2];
        for (int v = 0; v < NV2; v++)
            for (int k = 0; k < WORKERS2; k++)
                start_forkloop_threads(&w[v][k], modes[v], v == 0 ? 0 : n, threads,
                                       v == 1 ? lib_path : v == 4 ? empty_lib_path : NULL);
        double *s[NV2], *per[NV2];
        for (int v = 0; v < NV2; v++) {
            s[v] = xcalloc((size_t)R, sizeof(double));
            per[v] = xcalloc((size_t)R, sizeof(double));
        }
        for (int r = 0; r < R; r++) {
            for (int j = 0; j < NV2; j++) {
                int v = (r + j) % NV2;
                s[v][r] = worker_batch(&w[v][r % WORKERS2], p->f2_k);
            }
            for (int v = 1; v < NV2; v++)
                per[v][r] = (s[v][r] - s[0][r]) / n;
        }
        for (int v = 0; v < NV2; v++)
            for (int k = 0; k < WORKERS2; k++)
                worker_finish(&w[v][k]);
        char name[64];
        snprintf(name, sizeof name, "%sn%d_baseline_fork_without_fsafe", pre, n);
        row_add(2, name, "ns", s[0], (size_t)R);
        double med[NV2];
        for (int v = 1; v < NV2; v++) {
            med[v] = quantile(per[v], (size_t)R, 0.5);
            extra[ni][v] = med[v] * n;
        }
        for (int v = 1; v < NV2; v++) {
            snprintf(name, sizeof name, "%sn%d_%s_per_lock", pre, n, vname[v]);
            struct row *x = row_add(2, name, "ns/lock", per[v], (size_t)R);
            row_extra(x, "fork_ns", quantile(s[v], (size_t)R, 0.5));
            if (v == 1) {
                row_extra(x, "ratio_vs_a", med[1] / med[2]);
                row_extra(x, "ratio_vs_b", med[1] / med[3]);
                row_extra(x, "ratio_vs_a_in_library", med[1] / med[4]);
            }
        }
        for (int v = 0; v < NV2; v++)
            free(s[v]), free(per[v]);
    }
    /* The walk's cost per lock without the per-fork fixed costs (fsafe's
     * protocol and a loaded library, which the per-lock rows divide by N):
     * the slope from N=1024 to N=4096, and the intercept at N=0. */
    double slope[NV2], icept[NV2];
    for (int v = 1; v < NV2; v++) {
        slope[v] = (extra[3][v] - extra[2][v]) / (ns[3] - ns[2]);
        icept[v] = extra[2][v] - slope[v] * ns[2];
    }
    for (int v = 1; v < NV2; v++) {
        char name[64];
        snprintf(name, sizeof name, "%sslope_1024_4096_%s", pre, vname[v]);
        struct row *x = row_add(2, name, "ns/lock", &slope[v], 1);
        row_extra(x, "fixed_ns", icept[v]);
        if (v == 1) {
            row_extra(x, "ratio_vs_a", slope[1] / slope[2]);
            row_extra(x, "ratio_vs_b", slope[1] / slope[3]);
            row_extra(x, "ratio_vs_a_in_library", slope[1] / slope[4]);
        }
    }
}

/* Figure 2: N registered mutexes; fsafe vs (a) one atfork triple vs (b) N
 * triples, with the no-fsafe loop as the baseline; all four interleaved.
 * Twice: in single-threaded workers (rows n<N>_...), and in workers with one
 * idle thread (rows mt_n<N>_...), the case fsafe exists for. */
static void fig2(const struct params *p)
{
    for (int threads = 0; threads <= 1; threads++)
        fig2_run(p, threads);
}

static void run_collect(const char *preload, const char *label, char *const args[])
{
    struct worker w;
    worker_start(&w, preload, label, args);
    worker_finish(&w);
}

/* Figures 3-5: one worker of the given mode, with its two numeric arguments. */
static void run_worker_figure(const char *mode, long x, long y)
{
    char a[24], b[24];
    snprintf(a, sizeof a, "%ld", x);
    snprintf(b, sizeof b, "%ld", y);
    char *args[] = {(char *)mode, a, b, NULL};
    run_collect(lib_path, mode, args);
}

static const char *const fig_title[] = {
    "",
    "Figure 1: fork+_exit+waitpid, nothing registered (ratio = fsafe / without)",
    "Figure 2: cost per registered uncontended mutex (fork loop minus the no-fsafe baseline)",
    "Figure 3: fork() call-to-return in the parent, 64 registered locks",
    "Figure 4: registry scaling, register then unregister N locks",
    "Figure 5: churn (throwaway threads) vs plain pthread_create+join",
};

static void print_table(FILE *f)
{
    int last = 0;
    for (int i = 0; i < nrows; i++) {
        struct row *r = &rows[i];
        if (r->fig != last) {
            fprintf(f, "\n%s\n", fig_title[r->fig]);
            fprintf(f, "  %-40s %12s %25s %8s %5s\n", "name", "median", "p10 .. p90", "unit", "n");
            last = r->fig;
        }
        char spread[48];
        snprintf(spread, sizeof spread, "%.4g .. %.4g", r->p10, r->p90);
        fprintf(f, "  %-40s %12.4g %25s %8s %5d", r->name, r->median, spread, r->unit, r->n);
        for (int k = 0; k < r->nextra; k++)
            fprintf(f, "  %s=%.4g", r->ekey[k], r->eval[k]);
        fprintf(f, "\n");
    }
}

static void json_num(FILE *f, double v)
{
    /* JSON has no NaN or infinity. */
    if (v != v || v > 1e300 || v < -1e300)
        fprintf(f, "null");
    else
        fprintf(f, "%.6g", v);
}

static void write_json(const char *path, int quick)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write %s: %s", path, strerror(errno));
    struct utsname u;
    uname(&u);
    fprintf(f, "{\n  \"benchmark\": \"fsafe_bench\",\n  \"quick\": %s,\n", quick ? "true" : "false");
    fprintf(f, "  \"machine\": {\"cpus\": %ld, \"kernel\": \"%s\", \"arch\": \"%s\"},\n",
            sysconf(_SC_NPROCESSORS_ONLN), u.release, u.machine);
    fprintf(f, "  \"rows\": [\n");
    for (int i = 0; i < nrows; i++) {
        struct row *r = &rows[i];
        fprintf(f, "    {\"figure\": %d, \"name\": \"%s\", \"unit\": \"%s\", \"n\": %d, \"median\": ",
                r->fig, r->name, r->unit, r->n);
        json_num(f, r->median);
        fprintf(f, ", \"p10\": ");
        json_num(f, r->p10);
        fprintf(f, ", \"p90\": ");
        json_num(f, r->p90);
        for (int k = 0; k < r->nextra; k++) {
            fprintf(f, ", \"%s\": ", r->ekey[k]);
            json_num(f, r->eval[k]);
        }
        fprintf(f, "}%s\n", i + 1 < nrows ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0)
        die("cannot write %s", path);
}

static void usage(void)
{
    fprintf(stderr, "usage: fsafe_bench [--quick] [--json FILE] [--lib PATH/libfsafe.so] "
                    "[--empty-lib PATH] [--also-preload PATH] [--only 1,2,3,4,5]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--worker") == 0)
        return worker_main(argc - 2, argv + 2);
    if (fsafe_present())
        die("run the driver without fsafe loaded; it preloads fsafe into its workers itself");
    int quick = 0;
    const char *json = NULL, *only = "12345";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json = argv[++i];
        else if (strcmp(argv[i], "--lib") == 0 && i + 1 < argc)
            lib_path = argv[++i];
        else if (strcmp(argv[i], "--empty-lib") == 0 && i + 1 < argc)
            empty_lib_path = argv[++i];
        else if (strcmp(argv[i], "--also-preload") == 0 && i + 1 < argc)
            also_preload = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else
            usage();
    }
    if (access(lib_path, R_OK) != 0)
        die("cannot read %s; pass --lib PATH/libfsafe.so", lib_path);
    if (access(empty_lib_path, R_OK) != 0)
        die("cannot read %s; pass --empty-lib PATH", empty_lib_path);
    signal(SIGPIPE, SIG_IGN);
    struct params full = {200, 20, 100, 20, 3000, 100, 1000000, 3, 40, 10};
    struct params q = {6, 3, 3, 2, 60, 10, 10000, 1, 3, 2};
    const struct params *p = quick ? &q : &full;
    if (strchr(only, '1'))
        fig1(p);
    if (strchr(only, '2'))
        fig2(p);
    if (strchr(only, '3'))
        run_worker_figure("contend", p->f3_total, p->f3_batch);
    if (strchr(only, '4'))
        run_worker_figure("registry", p->f4_nmax, p->f4_reps);
    if (strchr(only, '5'))
        run_worker_figure("churn", p->f5_rounds, p->f5_k);
    print_table(stdout);
    if (json)
        write_json(json, quick);
    return 0;
}
