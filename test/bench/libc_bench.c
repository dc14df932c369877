/* SPDX-License-Identifier: MIT */
/*
 * What the libc gates of auto mode cost (issue 11): ns per call of gated glibc
 * functions, and fork latency while two threads call them, with
 * libfsafe-auto.so preloaded against a process that never loaded fsafe.
 * Prints numbers and ratios; judges nothing.
 *
 *   libc_bench [--quick] [--rounds N] [LIBFSAFE_AUTO]
 *
 * The driver starts worker processes of itself ("--worker"), plain and with
 * LD_PRELOAD, alternating the order each round; rows are medians over rounds.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <locale.h>
#include <pthread.h>
#include <pwd.h>
#include <regex.h>
#include <resolv.h>
#include <rpc/netdb.h>
#include <shadow.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "worker.h"

#define NMETRIC 18
static const char *const metric[NMETRIC] = {
    "localtime_r ns/call",         "gmtime_r ns/call",
    "getpwnam ns/call",            "setenv ns/call",
    "getrpcbyname ns/call",        "res_mkquery ns/call",
    "sgetspent ns/call",           "readdir ns/entry",
    "telldir ns/call",             "regexec ns/call",
    "pthread_kill(t, 0) ns/call",  "pthread_getschedparam ns",
    "mbrtowc ns/call (no gate)",   "fork us p50 (localtime_r)",
    "fork us p99 (localtime_r)",
    "fork us p50 (getpwnam)",      "fork us p99 (getpwnam)",
    "swprintf ns/call",
};

static int quick;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- worker ------------------------------------------------------------------ */
static atomic_int stop;
static volatile long sink;

static void call_localtime(void)
{
    time_t t = 1700000000;
    struct tm tm;
    localtime_r(&t, &tm);
    sink += tm.tm_hour;
}

static void call_getpwnam(void)
{
    struct passwd *p = getpwnam("root");
    sink += p ? (long)p->pw_uid : 1;
}

/* The best of 7 batches: on a shared machine the other batches measure the
 * neighbours. */
static double per_call(void (*fn)(void), long n)
{
    double best = 1e30;
    fn(); /* warm */
    for (int b = 0; b < 7; b++) {
        double t0 = now_ns();
        for (long i = 0; i < n / 7; i++)
            fn();
        double v = (now_ns() - t0) / (double)(n / 7);
        if (v < best)
            best = v;
    }
    return best;
}

static void call_gmtime(void)
{
    time_t t = 1700000000;
    struct tm tm;
    gmtime_r(&t, &tm);
    sink += tm.tm_hour;
}

static void call_setenv(void)
{
    setenv("FSAFE_BENCH_VAR", "x", 1);
}

/* Three of the families gated since issue 23: an NSS lookup of the rpc
 * database (/etc/rpc), a resolver call that sends nothing, and a parser with
 * a static result (no I/O: the gate's share is largest there). */
static void call_getrpcbyname(void)
{
    struct rpcent *r = getrpcbyname("portmapper");
    sink += r ? r->r_number : 1;
}

static void call_res_mkquery(void)
{
    unsigned char q[512];
    sink += res_mkquery(QUERY, "localhost", C_IN, T_A, NULL, 0, NULL, q, sizeof q);
}

static void call_sgetspent(void)
{
    struct spwd *sp = sgetspent("fsafe:*:19000:0:99999:7:::");
    sink += sp ? sp->sp_lstchg : 1;
}

/* Issue 23's gates: readdir through a directory of many entries (getdents
 * refills included, rewinddir at the end: ns per entry), telldir (the lock
 * and nothing else: the gate's share is largest there), a short regexec,
 * and the calls on another thread's descriptor.  mbrtowc is not gated: its
 * row is the base a gate would be added to (issue 23, the multibyte rows). */
static DIR *bench_dir;
static void call_readdir(void)
{
    if (!readdir(bench_dir))
        rewinddir(bench_dir);
}

static void call_telldir(void)
{
    sink += telldir(bench_dir);
}

static regex_t bench_re;
static void call_regexec(void)
{
    regmatch_t m[4];
    sink += regexec(&bench_re, "fsafe@example.org", 4, m, 0);
}

static pthread_t bench_peer;
static void *peer(void *p)
{
    (void)p;
    pause();
    return NULL;
}

static void call_pthread_kill(void)
{
    sink += pthread_kill(bench_peer, 0);
}

static void call_getschedparam(void)
{
    struct sched_param sp;
    int policy;
    sink += pthread_getschedparam(bench_peer, &policy, &sp);
}

/* Session 37's gate: a short wide string, the shape of std::to_wstring. */
static void call_swprintf(void)
{
    wchar_t buf[24];
    sink += swprintf(buf, sizeof buf / sizeof buf[0], L"%d", (int)(sink & 0xffff));
}

static void call_mbrtowc(void)
{
    static const char s[] = "\xc3\xa9t\xc3\xa9";
    mbstate_t st = {0};
    wchar_t wc;
    for (size_t i = 0, n; i < sizeof s - 1; i += n)
        if ((n = mbrtowc(&wc, s + i, sizeof s - 1 - i, &st)) == 0 || n > 4)
            break;
    sink += wc;
}

static void *spin(void *p)
{
    void (*fn)(void) = (void (*)(void))p;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        fn();
    return NULL;
}

/* fork + _exit + waitpid while two threads call fn: p50 and p99 in us. */
static void fork_latency(void (*fn)(void), int n, double *p50, double *p99)
{
    pthread_t th[2];
    double *v = malloc(sizeof *v * (size_t)n);
    atomic_store(&stop, 0);
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, spin, (void *)fn);
    usleep(10000);
    for (int i = 0; i < n; i++) {
        double t0 = now_ns();
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        waitpid(pid, NULL, 0);
        v[i] = (now_ns() - t0) / 1e3;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    *p50 = v[n / 2];
    *p99 = v[(n * 99) / 100];
    free(v);
}

static int worker(void)
{
    long k = quick ? 10 : 1;
    double m[NMETRIC];
    m[0] = per_call(call_localtime, 200000 / k);
    m[1] = per_call(call_gmtime, 200000 / k);
    m[2] = per_call(call_getpwnam, 5000 / k);
    m[3] = per_call(call_setenv, 200000 / k);
    m[4] = per_call(call_getrpcbyname, 5000 / k);
    m[5] = per_call(call_res_mkquery, 50000 / k);
    m[6] = per_call(call_sgetspent, 200000 / k);
    if (!(bench_dir = opendir("/usr/lib/x86_64-linux-gnu")) && !(bench_dir = opendir("/usr/lib")))
        return 1;
    if (regcomp(&bench_re, "^([a-z]+)@([a-z]+)\\.(com|org)$", REG_EXTENDED) != 0 ||
        pthread_create(&bench_peer, NULL, peer, NULL) != 0 || !setlocale(LC_CTYPE, "C.UTF-8"))
        return 1;
    m[7] = per_call(call_readdir, 200000 / k);
    m[8] = per_call(call_telldir, 200000 / k);
    m[9] = per_call(call_regexec, 200000 / k);
    m[10] = per_call(call_pthread_kill, 200000 / k);
    m[11] = per_call(call_getschedparam, 200000 / k);
    m[12] = per_call(call_mbrtowc, 200000 / k) / 3; /* three characters a call */
    fork_latency(call_localtime, quick ? 20 : 300, &m[13], &m[14]);
    fork_latency(call_getpwnam, quick ? 20 : 300, &m[15], &m[16]);
    m[17] = per_call(call_swprintf, 200000 / k);
    for (int i = 0; i < NMETRIC; i++)
        printf("%.3f\n", m[i]);
    return 0;
}

/* ---- driver ------------------------------------------------------------------ */
static int run_worker(const char *preload, double *out)
{
    char *argv[] = {"libc_bench", "--worker", quick ? "--quick" : "--full", NULL};
    return bench_run_worker(preload, argv, out, NMETRIC);
}

int main(int argc, char **argv)
{
    const char *lib = NULL;
    int rounds = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--full"))
            quick = 0;
        else if (!strcmp(argv[i], "--worker"))
            return worker();
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else
            lib = argv[i];
    }
#ifdef FSAFE_BENCH_AUTO_LIB
    if (!lib)
        lib = FSAFE_BENCH_AUTO_LIB;
#endif
    if (!lib) {
        fprintf(stderr, "usage: %s [--quick] [--rounds N] LIBFSAFE_AUTO\n", argv[0]);
        return 2;
    }
    if (quick)
        rounds = 1;
    if (rounds < 1)
        rounds = 1;
    double (*plain)[NMETRIC] = calloc((size_t)rounds, sizeof *plain);
    double (*autom)[NMETRIC] = calloc((size_t)rounds, sizeof *autom);
    for (int r = 0; r < rounds; r++) {
        int first_auto = r & 1;
        if (run_worker(first_auto ? lib : NULL, first_auto ? autom[r] : plain[r]) ||
            run_worker(first_auto ? NULL : lib, first_auto ? plain[r] : autom[r])) {
            fprintf(stderr, "libc_bench: a worker failed\n");
            return 1;
        }
    }
    printf("libc gates of auto mode: medians of %d round%s (2 cores; %s)\n", rounds,
           rounds == 1 ? "" : "s", lib);
    printf("%-28s %12s %12s %8s\n", "", "no fsafe", "auto", "ratio");
    for (int m = 0; m < NMETRIC; m++) {
        double a[64], b[64];
        int n = rounds < 64 ? rounds : 64;
        for (int r = 0; r < n; r++)
            a[r] = plain[r][m], b[r] = autom[r][m];
        qsort(a, (size_t)n, sizeof *a, cmp_d);
        qsort(b, (size_t)n, sizeof *b, cmp_d);
        double pa = a[n / 2], pb = b[n / 2];
        printf("%-28s %12.1f %12.1f %7.2fx\n", metric[m], pa, pb, pa > 0 ? pb / pa : 0);
    }
    free(plain);
    free(autom);
    return 0;
}
