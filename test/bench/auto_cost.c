/* SPDX-License-Identifier: MIT */
/*
 * auto_cost: what auto mode costs a program, per lock operation and per
 * process start (issue 26), in instructions counted by callgrind (repeatable
 * on a shared machine) or, without valgrind, in wall time.  Prints numbers
 * and ratios; judges nothing.
 *
 *   auto_cost [--iters N] [--forks N] [--requests N] [--time] [--python PYTHON]
 *
 * Variants, each a separate process that never loaded what it does not name:
 *   plain      no preload
 *   empty      an empty shared library preloaded (what any preload costs)
 *   no-auto    libfsafe.so preloaded, FSAFE_AUTO=0 (fsafe-run --no-auto)
 *   auto       libfsafe-auto.so preloaded (fsafe-run)
 *
 * Rows:
 *   lock loop  one request's worth of lock traffic per iteration: two nested
 *              mutexes, a third with a condition signal inside, an rwlock
 *              read pair, a semaphore wait/post pair, and localtime_r every
 *              16th iteration, after one thread has come and gone.
 *              Instructions per iteration = (I(2N) - I(N)) / N: start-up
 *              and exit cancel out.
 *   mutex pair one pthread_mutex_lock + unlock, the same way.
 *   GMutex pair one g_mutex_lock + g_mutex_unlock (GLib, issue 24: found with
 *              dlopen and dlsym(RTLD_DEFAULT), as a program linked to GLib
 *              binds them), the same way; "-" without libglib-2.0.so.0.
 *   absl pair  one absl::Mutex Lock + Unlock (abseil, issue 24; the same way,
 *              by mangled name in Debian 11's, 12's or 13's namespace); "-"
 *              without a shared libabsl_synchronization.
 *   /bin/true  the whole process, start-up to exit.
 *   python     one concurrent.futures.ThreadPoolExecutor(4) task (submit and
 *              result), (I(2N) - I(N)) / N, with --python (callgrind only).
 *   memcached  instructions (or ns) per request of a memcached server (4
 *              threads, at most 256 connections, loopback, without its LRU
 *              crawler and maintainer threads, whose work grows with the
 *              wall time that callgrind stretches: with them the count moved
 *              10% between runs), started by this program with the
 *              variant's preload (Debian's memcached), under
 *              memcaslap's load (-T 1 -c 16, its get/set mix; from
 *              libmemcached-tools, never preloaded): (I(2N) - I(N)) / N
 *              requests, N = --requests (default 20000; 0 skips the row), the
 *              median of 3 runs (5 with --time); "-" when either program is
 *              missing.  Each run is bounded (60 s plain, 600 s under
 *              callgrind) and killed past it.
 *   fork       fork() latency in microseconds (wall time, always): p50, p99
 *              and max of FORKS forks while 8 threads take one of 8 mutexes
 *              for a short critical section, and every 64th time format a
 *              log line with a timestamp (localtime_r, snprintf) under a
 *              log mutex; plain against auto, 3 runs each alternating, the
 *              median of each figure, with auto mode's wait (fsafe_get_stats)
 *              shown apart and the load average.  --forks N (default 300;
 *              0 skips the row).
 *
 *   auto_cost --worker loop|pair|gmutex|absl|fork N    the measured program itself
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FSAFE_OPTIONAL
#include "fsafe.h"

#ifndef AUTO_COST_LIB
#error "AUTO_COST_LIB (libfsafe.so), AUTO_COST_AUTO_LIB and AUTO_COST_EMPTY_LIB come from CMake"
#endif

/* ---- the measured program ------------------------------------------------------------------ */
static pthread_mutex_t m_outer = PTHREAD_MUTEX_INITIALIZER, m_inner = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m_queue = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c_queue = PTHREAD_COND_INITIALIZER;
static pthread_rwlock_t rw_config = PTHREAD_RWLOCK_INITIALIZER;
static sem_t sem_pool;
static volatile long sink;

static void *gone(void *arg)
{
    return arg;
}

static __attribute__((noinline)) void request(long i)
{
    pthread_mutex_lock(&m_outer);
    pthread_mutex_lock(&m_inner);
    sink += i;
    pthread_mutex_unlock(&m_inner);
    pthread_mutex_unlock(&m_outer);
    pthread_mutex_lock(&m_queue);
    sink++;
    pthread_cond_signal(&c_queue);
    pthread_mutex_unlock(&m_queue);
    pthread_rwlock_rdlock(&rw_config);
    sink ^= i;
    pthread_rwlock_unlock(&rw_config);
    sem_wait(&sem_pool);
    sem_post(&sem_pool);
    if ((i & 15) == 0) {
        time_t t = (time_t)i;
        struct tm tm;
        localtime_r(&t, &tm);
        sink += tm.tm_sec;
    }
}

static __attribute__((noinline)) void pair(void)
{
    pthread_mutex_lock(&m_outer);
    pthread_mutex_unlock(&m_outer);
}

/* ---- fork latency under load ---------------------------------------------------------------- */
#define BUSY_THREADS 8
static pthread_mutex_t busy_locks[BUSY_THREADS];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[4096];
static size_t log_len;
static volatile int busy_stop;

static void *busy(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (unsigned long k = 0; !busy_stop; k++) {
        int i = (int)(rand_r(&seed) % BUSY_THREADS);
        pthread_mutex_lock(&busy_locks[i]);
        for (volatile int w = 0; w < 50; w++) {
        }
        pthread_mutex_unlock(&busy_locks[i]);
        if ((k & 63) == 0) {
            time_t now = time(NULL);
            struct tm tm;
            char line[96];
            localtime_r(&now, &tm);
            int n = snprintf(line, sizeof line, "%02d:%02d:%02d worker %u step %lu\n", tm.tm_hour,
                             tm.tm_min, tm.tm_sec, seed % 100, k);
            pthread_mutex_lock(&log_lock);
            if (log_len + (size_t)n >= sizeof log_buf)
                log_len = 0;
            memcpy(log_buf + log_len, line, (size_t)n);
            log_len += (size_t)n;
            pthread_mutex_unlock(&log_lock);
        }
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Prints "p50_us p99_us max_us wait_total_us wait_max_us" (wait: -1 without
 * fsafe). */
static int worker_forks(long forks)
{
    pthread_t t[BUSY_THREADS];
    for (int i = 0; i < BUSY_THREADS; i++)
        pthread_mutex_init(&busy_locks[i], NULL);
    for (int i = 0; i < BUSY_THREADS; i++)
        if (pthread_create(&t[i], NULL, busy, (void *)(uintptr_t)(i + 1)) != 0)
            return 1;
    double *lat = malloc(sizeof *lat * (size_t)forks);
    if (!lat)
        return 1;
    struct timespec gap = {0, 2000000}; /* the threads run between forks */
    for (long i = 0; i < forks; i++) {
        nanosleep(&gap, NULL);
        uint64_t t0 = now_ns();
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        lat[i] = (double)(now_ns() - t0) / 1000.0;
        if (pid < 0)
            return 1;
        waitpid(pid, NULL, 0);
    }
    busy_stop = 1;
    for (int i = 0; i < BUSY_THREADS; i++)
        pthread_join(t[i], NULL);
    qsort(lat, (size_t)forks, sizeof *lat, cmp_double);
    struct fsafe_stats st;
    double wait_total = -1, wait_max = -1;
    if (fsafe_get_stats && fsafe_get_stats(&st, sizeof st) == 0) { /* weak: FSAFE_OPTIONAL */
        wait_total = (double)st.auto_wait_ns_total / 1000.0;
        wait_max = (double)st.auto_wait_ns_max / 1000.0;
    }
    printf("%.1f %.1f %.1f %.1f %.1f\n", lat[forks / 2], lat[(forks * 99) / 100],
           lat[forks - 1], wait_total, wait_max);
    free(lat);
    return 0;
}

#define GLIB_SONAME "libglib-2.0.so.0"

/* N GMutex pairs through whatever the program's calls bind to. */
static int worker_gmutex(long n)
{
    static union {
        void *p;
        unsigned i[2];
    } gmutex; /* a GMutex: zero is unlocked */
    if (!dlopen(GLIB_SONAME, RTLD_NOW | RTLD_GLOBAL))
        return 3;
    void (*lock)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "g_mutex_lock");
    void (*unlock)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "g_mutex_unlock");
    if (!lock || !unlock)
        return 3;
    for (long i = 0; i < n; i++) {
        lock(&gmutex);
        unlock(&gmutex);
    }
    return 0;
}

/* Debian's shared abseil, newest first (SONAME, inline namespace). */
static const char *const absl_libs[][3] = {
    {"libabsl_synchronization.so.20260526", "_ZN4absl8debian105Mutex", "lock"},
    {"libabsl_synchronization.so.20240722", "_ZN4absl7debian75Mutex", "Lock"},
    {"libabsl_synchronization.so.20220623", "_ZN4absl7debian35Mutex", "Lock"},
    {"libabsl_synchronization.so.20200923", "_ZN4absl7debian15Mutex", "Lock"},
};

/* The first abseil found: its lock and unlock members, or 0. */
static int absl_calls(void (**lock)(void *), void (**unlock)(void *))
{
    for (size_t i = 0; i < sizeof absl_libs / sizeof *absl_libs; i++) {
        if (!dlopen(absl_libs[i][0], RTLD_NOW | RTLD_GLOBAL))
            continue;
        char l[96], u[96];
        /* "Lock"/"Unlock", or from 20260526 "lock"/"unlock" */
        snprintf(l, sizeof l, "%s4%sEv", absl_libs[i][1], absl_libs[i][2]);
        snprintf(u, sizeof u, "%s6%cnlockEv", absl_libs[i][1], absl_libs[i][2][0] == 'L' ? 'U' : 'u');
        *lock = (void (*)(void *))dlsym(RTLD_DEFAULT, l);
        *unlock = (void (*)(void *))dlsym(RTLD_DEFAULT, u);
        return *lock && *unlock;
    }
    return 0;
}

/* N absl::Mutex pairs (a zero word is an unlocked absl::Mutex). */
static int worker_absl(long n)
{
    static intptr_t mu;
    void (*lock)(void *), (*unlock)(void *);
    if (!absl_calls(&lock, &unlock))
        return 3;
    for (long i = 0; i < n; i++) {
        lock(&mu);
        unlock(&mu);
    }
    return 0;
}

static int worker(const char *what, long n)
{
    if (strcmp(what, "fork") == 0)
        return worker_forks(n);
    if (strcmp(what, "gmutex") == 0)
        return worker_gmutex(n);
    if (strcmp(what, "absl") == 0)
        return worker_absl(n);
    pthread_t t;
    if (pthread_create(&t, NULL, gone, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 1;
    if (sem_init(&sem_pool, 0, 1) != 0)
        return 1;
    int loop = strcmp(what, "loop") == 0;
    if (!loop && strcmp(what, "pair") != 0)
        return 2;
    for (long i = 0; i < n; i++) {
        if (loop)
            request(i);
        else
            pair();
    }
    return 0;
}

/* ---- the driver ---------------------------------------------------------------------------- */
struct variant {
    const char *name;
    const char *preload; /* NULL: none */
    const char *auto_setting;
};

static const struct variant variants[] = {
    {"plain", NULL, NULL},
    {"empty", AUTO_COST_EMPTY_LIB, NULL},
    {"no-auto", AUTO_COST_LIB, "0"},
    {"auto", AUTO_COST_AUTO_LIB, NULL},
};
#define NVARIANTS (sizeof variants / sizeof variants[0])

static char self[4096];
static int use_time;

/* In a child about to exec: the environment of variant v, and only it. */
static void variant_env(const struct variant *v)
{
    unsetenv("LD_PRELOAD");
    unsetenv("FSAFE_AUTO");
    if (v->preload)
        setenv("LD_PRELOAD", v->preload, 1);
    if (v->auto_setting)
        setenv("FSAFE_AUTO", v->auto_setting, 1);
}

/* The instruction count of a callgrind output file, or -1. */
static double callgrind_total(const char *path)
{
    double result = -1;
    FILE *f = fopen(path, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "summary: ", 9) == 0 || strncmp(line, "totals: ", 8) == 0)
            result = strtod(strchr(line, ' ') + 1, NULL);
    if (f)
        fclose(f);
    return result;
}

/* Runs argv under the variant's environment (and callgrind unless --time);
 * returns the instruction count (or wall ns), or -1. */
static double run(const struct variant *v, char *const argv[])
{
    char out[] = "/tmp/fsafe-auto-cost-XXXXXX";
    int fd = mkstemp(out);
    if (fd < 0)
        return -1;
    close(fd);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        variant_env(v);
        int null = open("/dev/null", 1);
        if (null >= 0)
            dup2(null, 1);
        char outopt[64];
        snprintf(outopt, sizeof outopt, "--callgrind-out-file=%s", out);
        char *args[16];
        int n = 0;
        if (!use_time) {
            args[n++] = "valgrind";
            args[n++] = "--tool=callgrind";
            args[n++] = "--log-file=/dev/null"; /* valgrind's own chatter */
            args[n++] = outopt;
        }
        for (int i = 0; argv[i] && n < 15; i++)
            args[n++] = argv[i];
        args[n] = NULL;
        execvp(args[0], args);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double result = -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        if (use_time) {
            result = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        } else {
            result = callgrind_total(out);
        }
    } else {
        fprintf(stderr, "auto_cost: %s (%s) exited with status %d\n", argv[0], v->name,
                WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    unlink(out);
    return result;
}

/* Runs argv (no valgrind) under the variant's environment and reads the
 * numbers it prints on stdout; returns how many, or -1. */
static int run_numbers(const struct variant *v, char *const argv[], double *out, int max)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        variant_env(v);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    char buf[256];
    size_t len = 0;
    ssize_t k;
    while (len < sizeof buf - 1 && (k = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)k;
    close(fds[0]);
    buf[len] = '\0';
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    int n = 0;
    char *p = buf, *end;
    while (n < max) {
        double d = strtod(p, &end);
        if (end == p)
            break;
        out[n++] = d;
        p = end;
    }
    return n;
}

/* ---- memcached under load ------------------------------------------------------------------ */
/* Starts argv (variant v's environment, or no preload when v is NULL),
 * stdout to /dev/null, stderr too when quiet; nofile > 0 sets both
 * RLIMIT_NOFILE limits to it first. */
static pid_t spawn(const struct variant *v, char *const argv[], int quiet, long nofile)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {(rlim_t)nofile, (rlim_t)nofile};
        if (nofile > 0)
            setrlimit(RLIMIT_NOFILE, &rl);
        if (v)
            variant_env(v);
        else
            unsetenv("LD_PRELOAD");
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 1);
            if (quiet)
                dup2(null, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Waits for pid until deadline (CLOCK_MONOTONIC seconds); kills it past
 * that.  Returns its wait status, or -1 when it had to be killed. */
static int wait_until(pid_t pid, double deadline)
{
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 && errno != EINTR)
            return -1;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)now.tv_sec + (double)now.tv_nsec / 1e9 > deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            return -1;
        }
        usleep(20000);
    }
}

static double mono_s(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* A loopback port nobody listens on now (the kernel's pick). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((unsigned short)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/*
 * memcached sets both limits on descriptors to its connection limit (-c), and
 * valgrind refuses a new hard limit unless it is the one its client sees:
 * the real one less the descriptors valgrind keeps for itself.  So under
 * callgrind memcached starts with a hard limit of MAXCONNS plus those.
 */
#define MAXCONNS 256
static long valgrind_nofile(void)
{
    FILE *f = popen("valgrind --tool=none --log-file=/dev/null sh -c 'ulimit -Hn'", "r");
    long seen = -1;
    if (f) {
        if (fscanf(f, "%ld", &seen) != 1)
            seen = -1;
        pclose(f);
    }
    struct rlimit rl;
    if (seen <= 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max == RLIM_INFINITY ||
        (long)rl.rlim_max < seen)
        return 0;
    long kept = (long)rl.rlim_max - seen;
    return MAXCONNS + kept <= (long)rl.rlim_max ? MAXCONNS + kept : 0;
}

/* One memcached run serving `requests` requests from memcaslap: its
 * instructions (callgrind) or the wall time of the load (--time); -1 on
 * failure, with a line on stderr. */
static double run_memcached(const struct variant *v, long requests)
{
    char out[] = "/tmp/fsafe-auto-cost-XXXXXX", outopt[64], portarg[16], server[32], nreq[32];
    int fd = mkstemp(out), port = free_port();
    if (fd < 0 || port < 0)
        return -1;
    close(fd);
    snprintf(outopt, sizeof outopt, "--callgrind-out-file=%s", out);
    snprintf(portarg, sizeof portarg, "%d", port);
    snprintf(server, sizeof server, "127.0.0.1:%d", port);
    snprintf(nreq, sizeof nreq, "%ld", requests);
    char *mc[] = {"valgrind", "--tool=callgrind", "--log-file=/dev/null", outopt,
                  "memcached", "-u", "root", "-l", "127.0.0.1", "-p", portarg, "-U", "0",
                  "-t", "4", "-c", "256", "-o", "no_lru_crawler,no_lru_maintainer", NULL};
    _Static_assert(MAXCONNS == 256, "-c above");
    static long nofile = -1;
    if (nofile < 0)
        nofile = use_time ? 0 : valgrind_nofile();
    char **argv = use_time ? mc + 4 : mc;
    double limit = use_time ? 60 : 600, t0 = mono_s(), result = -1;
    pid_t srv = spawn(v, argv, 1, nofile);
    while (srv > 0 && !port_open(port) && mono_s() - t0 < limit && waitpid(srv, NULL, WNOHANG) == 0)
        usleep(50000);
    if (srv > 0 && port_open(port)) {
        char *load[] = {"memcaslap", "-s", server, "-T", "1", "-c", "16", "-x", nreq, NULL};
        double l0 = mono_s();
        int st = wait_until(spawn(NULL, load, 1, 0), t0 + limit);
        double l1 = mono_s();
        if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            result = use_time ? (l1 - l0) * 1e9 : 0;
        else
            fprintf(stderr, "auto_cost: memcaslap failed against memcached (%s)\n", v->name);
    } else {
        fprintf(stderr, "auto_cost: memcached (%s) did not start listening\n", v->name);
    }
    if (srv > 0) {
        kill(srv, SIGTERM); /* memcached exits; callgrind writes its counts */
        int st = wait_until(srv, mono_s() + limit);
        if (st < 0)
            result = -1;
    }
    if (result == 0)
        result = callgrind_total(out);
    unlink(out);
    return result;
}

static int have_program(const char *name)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Per unit: (run(2N) - run(N)) / N, the median of `reps` (1 with callgrind:
 * its counts repeat). */
static double per_unit(const struct variant *v, char *const argv_n[], char *const argv_2n[], long n,
                       int reps)
{
    double s[9];
    int k = 0;
    for (int r = 0; r < reps && r < 9; r++) {
        double a = run(v, argv_n), b = run(v, argv_2n);
        if (a < 0 || b < 0)
            return -1;
        s[k++] = (b - a) / (double)n;
    }
    qsort(s, (size_t)k, sizeof s[0], cmp_double);
    return s[k / 2];
}

static void row(const char *name, const char *unit, double r[NVARIANTS])
{
    printf("%-12s", name);
    for (size_t i = 0; i < NVARIANTS; i++) {
        if (r[i] < 0)
            printf(" %12s", "-");
        else
            printf(" %12.1f", r[i]);
    }
    /* auto against plain and against the empty preload */
    if (r[0] > 0 && r[3] > 0)
        printf("   auto/plain %.2f", r[3] / r[0]);
    if (r[1] > 0 && r[3] > 0)
        printf("  auto/empty %.2f", r[3] / r[1]);
    printf("  (%s)\n", unit);
    fflush(stdout);
}

static int driver(long iters, const char *python, long forks, long requests)
{
    use_time = use_time || system("valgrind --version >/dev/null 2>&1") != 0;
    const char *unit = use_time ? "ns" : "instructions";
    int reps = use_time ? 5 : 1;
    printf("auto_cost: %s, %s; columns:", use_time ? "wall time, median of 5" : "callgrind",
           unit);
    for (size_t i = 0; i < NVARIANTS; i++)
        printf(" %s", variants[i].name);
    printf("\n");
    char n1[32], n2[32];
    snprintf(n1, sizeof n1, "%ld", iters);
    snprintf(n2, sizeof n2, "%ld", 2 * iters);
    const char *what[] = {"loop", "pair", "gmutex", "absl"};
    const char *label[] = {"lock loop", "mutex pair", "GMutex pair", "absl pair"};
    void (*al)(void *), (*au)(void *);
    int have[] = {1, 1, dlopen(GLIB_SONAME, RTLD_LAZY) != NULL, absl_calls(&al, &au)};
    for (int w = 0; w < 4; w++) {
        if (!have[w]) {
            double none[NVARIANTS] = {-1, -1, -1, -1};
            row(label[w], "library not found", none);
            continue;
        }
        char *a1[] = {self, "--worker", (char *)what[w], n1, NULL};
        char *a2[] = {self, "--worker", (char *)what[w], n2, NULL};
        double r[NVARIANTS];
        for (size_t i = 0; i < NVARIANTS; i++)
            r[i] = per_unit(&variants[i], a1, a2, iters, reps);
        row(label[w], use_time ? "ns per iteration" : "instructions per iteration", r);
    }
    {
        char *a[] = {"/bin/true", NULL};
        double r[NVARIANTS];
        for (size_t i = 0; i < NVARIANTS; i++) {
            double s[5];
            int k = 0;
            for (int rep = 0; rep < reps; rep++)
                if ((s[k] = run(&variants[i], a)) >= 0)
                    k++;
            qsort(s, (size_t)k, sizeof s[0], cmp_double);
            r[i] = k ? s[k / 2] : -1;
        }
        row("/bin/true", use_time ? "ns per process" : "instructions per process", r);
    }
    if (requests > 0) {
        double r[NVARIANTS] = {-1, -1, -1, -1};
        if (have_program("memcached") && have_program("memcaslap")) {
            /* Three runs even under callgrind: a server's count per request
             * depends on how its event loop batches the load (about 2%
             * between runs here), not only on the code. */
            int mreps = reps > 3 ? reps : 3;
            for (size_t i = 0; i < NVARIANTS; i++) {
                double s[5];
                int k = 0;
                for (int rep = 0; rep < mreps; rep++) {
                    double a = run_memcached(&variants[i], requests);
                    double b = a < 0 ? -1 : run_memcached(&variants[i], 2 * requests);
                    if (a >= 0 && b >= 0)
                        s[k++] = (b - a) / (double)requests;
                }
                qsort(s, (size_t)k, sizeof s[0], cmp_double);
                r[i] = k ? s[k / 2] : -1;
            }
            row("memcached", use_time ? "ns per request" : "instructions per request", r);
        } else {
            row("memcached", "memcached or memcaslap not installed", r);
        }
    }
    if (forks > 0) {
        /* plain and auto alternating, 3 runs each; medians of each figure */
        enum { RUNS = 3, FIG = 5 };
        const struct variant *pair_v[2] = {&variants[0], &variants[3]};
        double fig[2][FIG][RUNS];
        char nf[32];
        snprintf(nf, sizeof nf, "%ld", forks);
        char *a[] = {self, "--worker", "fork", nf, NULL};
        for (int r = 0; r < RUNS; r++)
            for (int k = 0; k < 2; k++) {
                const struct variant *v = pair_v[(k + r) & 1];
                double got[FIG];
                if (run_numbers(v, a, got, FIG) != FIG) {
                    fprintf(stderr, "auto_cost: the fork worker failed (%s)\n", v->name);
                    return 1;
                }
                for (int f = 0; f < FIG; f++)
                    fig[v == pair_v[1]][f][r] = got[f];
            }
        double med[2][FIG];
        for (int k = 0; k < 2; k++)
            for (int f = 0; f < FIG; f++) {
                qsort(fig[k][f], RUNS, sizeof(double), cmp_double);
                med[k][f] = fig[k][f][RUNS / 2];
            }
        double load[3] = {0, 0, 0};
        getloadavg(load, 3);
        printf("fork, %d busy threads, %ld forks, us (medians of %d runs; load average %.2f):\n",
               BUSY_THREADS, forks, RUNS, load[0]);
        printf("  p50   plain %8.1f  auto %8.1f  auto/plain %.2f\n", med[0][0], med[1][0],
               med[1][0] / med[0][0]);
        printf("  p99   plain %8.1f  auto %8.1f  auto/plain %.2f\n", med[0][1], med[1][1],
               med[1][1] / med[0][1]);
        printf("  max   plain %8.1f  auto %8.1f  auto/plain %.2f\n", med[0][2], med[1][2],
               med[1][2] / med[0][2]);
        printf("  auto mode's wait: %.1f us per fork on average, longest %.1f us\n",
               med[1][3] / (double)forks, med[1][4]);
        fflush(stdout);
    }
    if (python && !use_time) {
        const char *code = "import concurrent.futures as f, sys\n"
                           "n = int(sys.argv[1])\n"
                           "with f.ThreadPoolExecutor(4) as p:\n"
                           "    for i in range(n):\n"
                           "        p.submit(abs, i).result()\n";
        char *a1[] = {(char *)python, "-c", (char *)code, "200", NULL};
        char *a2[] = {(char *)python, "-c", (char *)code, "400", NULL};
        double r[NVARIANTS];
        for (size_t i = 0; i < NVARIANTS; i++)
            r[i] = per_unit(&variants[i], a1, a2, 200, 1);
        row("python", "instructions per ThreadPoolExecutor task", r);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: auto_cost [--iters N] [--forks N] [--requests N] [--time] [--python PYTHON]\n"
               "       auto_cost --worker loop|pair|gmutex|absl|fork N\n"
               "Prints what auto mode costs per lock operation and per process, in callgrind\n"
               "instructions (wall time with --time or without valgrind), beside no preload,\n"
               "an empty preloaded library and libfsafe.so with FSAFE_AUTO=0, and fork latency\n"
               "with 8 busy threads, plain against auto mode.  --requests N: memcached\n"
               "requests per run under memcaslap's load (default 20000; 0 skips the row).\n");
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--worker") == 0)
        return worker(argv[2], atol(argv[3]));
    long iters = 20000, forks = 300, requests = 20000;
    const char *python = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            char *end;
            iters = strtol(argv[++i], &end, 10);
            if (*end || iters <= 0) {
                fprintf(stderr, "auto_cost: --iters wants a positive number, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--forks") == 0 && i + 1 < argc) {
            char *end;
            forks = strtol(argv[++i], &end, 10);
            if (*end || forks < 0) {
                fprintf(stderr, "auto_cost: --forks wants a number, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc) {
            char *end;
            requests = strtol(argv[++i], &end, 10);
            if (*end || requests < 0) {
                fprintf(stderr, "auto_cost: --requests wants a number, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--time") == 0) {
            use_time = 1;
        } else if (strcmp(argv[i], "--python") == 0 && i + 1 < argc) {
            python = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "auto_cost: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "auto_cost: cannot find this program: %s\n", strerror(errno));
        return 1;
    }
    self[len] = '\0';
    return driver(iters, python, forks, requests);
}
