/* SPDX-License-Identifier: MIT */
/*
 * Throwaway-thread behaviours, one per mode (each CTest entry is one process):
 *
 *   test_churn count <n> <forks> env|api   forced count: exact counters on every
 *                                          fork, /proc/self/task back to its
 *                                          value in parent and child, no stack
 *                                          leak (mapping count stable)
 *   test_churn fail                        thread creation made impossible
 *                                          (seccomp): fork works, one line
 *   test_churn badenv                      bad FSAFE_CHURN: one warning, auto
 *   test_churn auto env|api|off            auto (FSAFE_CHURN unset or "auto", or
 *                                          fsafe_set_churn(FSAFE_CHURN_AUTO)) spawns
 *                                          nothing on Linux and prints nothing;
 *                                          "off": FSAFE_CHURN=off spawns nothing
 *
 * Modes that count stderr lines re-run this program as "inner-<mode>" with
 * stderr sent to a file (posix_spawn, so the outer fork is not fsafe's).
 */
#include "test_churn.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <spawn.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "fsafe.h"

#define CHILD_MS 5000

extern char **environ;

static struct fsafe_stats stats(void)
{
    struct fsafe_stats s;
    CHECK_EQ(fsafe_get_stats(&s, sizeof s), 0);
    return s;
}

/* Tasks not made by the test: 1, or 2 once TSan has started its background
 * thread (which it also runs in a forked child). */
static int runtime_tasks = 1;

/* Forks; the child counts its tasks (exit 10+n) and the parent checks that it
 * was one, plus the sanitizer runtime's own thread if any. */
static void fork_once(void)
{
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        int n = t_ntask();
        _exit(10 + (n < 0 ? 0 : n > 100 ? 100 : n));
    }
    int st = t_wait(pid, CHILD_MS);
#if defined(__SANITIZE_THREAD__)
    int most = 2; /* TSan may start its thread inside the child too */
#else
    int most = runtime_tasks;
#endif
    if (st < 11 || st > 10 + most)
        FAIL("child status %d (10+n: the child saw n tasks; 124 timeout)", st);
#if !defined(__SANITIZE_THREAD__)
    CHECK_EQ(st, 11);
#endif
}

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    int n = 0, c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* ---- count: forced churn ----------------------------------------------------- */
static int stop_fd[2];

static void *sleeper(void *arg)
{
    char c;
    while (read(stop_fd[0], &c, 1) < 0 && errno == EINTR) {
    }
    return arg;
}

/*
 * A registered ops "lock" whose acquire runs in the forker after churn and
 * before the real fork: the moment the throwaway threads must already be gone.
 * (pthread_join alone is not enough on Linux: measured, ~0.1-0.5% of joined
 * threads are still listed in /proc/self/task right after it returns.)
 */
static volatile int probe_tasks = -1;
static int probe_acquire(void *key)
{
    (void)key;
    probe_tasks = t_ntask();
    return 0;
}
static void probe_release(void *key)
{
    (void)key;
}
static const struct fsafe_lock_ops probe_ops = {probe_acquire, NULL, probe_release,
                                                probe_release};

static int mode_count(int n, int forks, int api)
{
    static char probe_key;
    CHECK_EQ(fsafe_register_ops(&probe_key, &probe_ops, 1, "churn.probe"), 0);
    if (api)
        CHECK_EQ(fsafe_set_churn(n), 0);
    CHECK_EQ(pipe(stop_fd), 0);
    pthread_t bg[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&bg[i], NULL, sleeper, NULL), 0);
    int base = t_ntask();
#if defined(__SANITIZE_THREAD__)
    runtime_tasks = base - 2; /* TSan starts its thread at the first pthread_create */
#endif
    CHECK_EQ(base, runtime_tasks + 2);

    int maps_warm = -1;
    for (int i = 0; i < forks; i++) {
        struct fsafe_stats s0 = stats();
        probe_tasks = -1;
        fork_once();
        struct fsafe_stats s1 = stats();
        if (probe_tasks != base)
            FAIL("fork %d: %d tasks just before the real fork, expected %d", i, probe_tasks,
                 base);
        CHECK_EQ(s1.forks - s0.forks, 1);
        CHECK_EQ(s1.churn_spawned - s0.churn_spawned, n);
        CHECK_EQ(s1.churn_reaped - s0.churn_reaped, n);
        CHECK_EQ(s1.churn_failed - s0.churn_failed, 0);
        /* Checked at once, no retry: fsafe waits until each task is gone. */
        CHECK_EQ(t_ntask(), base);
        if (i == 2)
            maps_warm = count_maps();
    }
    /* glibc caches the throwaway stacks and reuses them on the next fork; a
     * leaked stack would add at least one mapping per thread per fork.  Plain
     * builds: no growth at all.  Sanitizer runtimes map memory for their own
     * bookkeeping as they go (ASan: a few over the run, measured; TSan: about
     * one per four threads), so ASan gets "far fewer than one per thread" and
     * TSan no bound. */
    if (forks > 3) {
        int grown = count_maps() - maps_warm;
        long threads_after = (long)n * (forks - 3);
#if defined(__SANITIZE_THREAD__)
        long slack = threads_after; /* TSan maps per-thread buffers: no bound */
#elif defined(__SANITIZE_ADDRESS__)
        long slack = threads_after / 4;
#else
        long slack = 0;
#endif
        if (grown > slack)
            FAIL("%d new mappings after %ld more throwaway threads (allowed %ld): leaked stacks?",
                 grown, threads_after, slack);
    }

    CHECK_EQ(close(stop_fd[1]), 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(bg[i], NULL), 0);
    struct fsafe_stats s = stats();
    printf("ok: %d forks, churn %d: spawned %llu reaped %llu failed %llu, tasks %d\n", forks, n,
           (unsigned long long)s.churn_spawned, (unsigned long long)s.churn_reaped,
           (unsigned long long)s.churn_failed, base);
    return 0;
}

/* ---- fail: thread creation impossible ------------------------------------- */
/*
 * Root ignores RLIMIT_NPROC, and at that limit fork would fail too.  Instead a
 * seccomp filter fails exactly thread creation: clone3 -> ENOSYS (glibc then
 * falls back to clone), clone with CLONE_THREAD -> EAGAIN.  fork() uses clone
 * without CLONE_THREAD and still works.
 */
static void forbid_threads(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof *f, f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        printf("skip: cannot install a seccomp filter: %s\n", strerror(errno));
        exit(T_SKIP);
    }
}

static void *nothing(void *arg)
{
    return arg;
}

#define FAIL_FORKS 20

static int inner_fail(void)
{
    forbid_threads();
    /* The test must be able to fail: thread creation really is impossible. */
    pthread_t t;
    int r = pthread_create(&t, NULL, nothing, NULL);
    if (r == 0)
        FAIL("pthread_create succeeded under the seccomp filter");
    for (int i = 0; i < FAIL_FORKS; i++) {
        struct fsafe_stats s0 = stats();
        errno = 0;
        fork_once();
        struct fsafe_stats s1 = stats();
        CHECK_EQ(s1.forks - s0.forks, 1);
        CHECK_EQ(s1.churn_spawned - s0.churn_spawned, 0);
        CHECK_EQ(s1.churn_failed - s0.churn_failed, 1); /* stops at the first failure */
        CHECK_EQ(s1.churn_reaped - s0.churn_reaped, 0);
        CHECK_EQ(t_ntask(), runtime_tasks);
    }
    /* Unharmed: the program goes on with its own (single-threaded) life. */
    char *p = malloc(1 << 20);
    CHECK(p != NULL);
    memset(p, 1, 1 << 20);
    free(p);
    printf("inner ok: %d forks with thread creation failing (%s)\n", FAIL_FORKS, strerror(r));
    return 0;
}

/* ---- badenv / auto ---------------------------------------------------------- */
#if defined(__NetBSD__)
#define AUTO_COUNT 4
#else
#define AUTO_COUNT 0
#endif

static int forks_expecting(int per_fork, int forks)
{
    for (int i = 0; i < forks; i++) {
        struct fsafe_stats s0 = stats();
        fork_once();
        struct fsafe_stats s1 = stats();
        CHECK_EQ(s1.churn_spawned - s0.churn_spawned, per_fork);
        CHECK_EQ(s1.churn_reaped - s0.churn_reaped, per_fork);
        CHECK_EQ(s1.churn_failed - s0.churn_failed, 0);
    }
    return 0;
}

static int inner_badenv(void)
{
    /* The API refuses what the environment parser refuses, and keeps the
     * setting it had. */
    CHECK_EQ(fsafe_set_churn(-2), EINVAL);
    CHECK_EQ(fsafe_set_churn(1025), EINVAL);
    forks_expecting(AUTO_COUNT, 5);
    printf("inner ok: bad FSAFE_CHURN fell back to auto (%d per fork)\n", AUTO_COUNT);
    return 0;
}

static int inner_auto(const char *how)
{
    int api = strcmp(how, "api") == 0, off = strcmp(how, "off") == 0;
    if (api) {
        CHECK_EQ(fsafe_set_churn(3), 0);
        forks_expecting(3, 2);
        CHECK_EQ(fsafe_set_churn(FSAFE_CHURN_AUTO), 0);
    }
    forks_expecting(off ? 0 : AUTO_COUNT, 10);
    printf("inner ok: %s spawns %d per fork here\n", off ? "off" : "auto", off ? 0 : AUTO_COUNT);
    return 0;
}

/* ---- outer: run the inner mode with stderr captured -------------------------- */
struct captured {
    int status;
    int lines;     /* lines starting with "fsafe[PID]: " */
    size_t bytes;  /* everything on stderr */
    char text[4096];
};

static struct captured run_inner(char **argv)
{
    struct captured c;
    memset(&c, 0, sizeof c);
    int fd = memfd_create("stderr", 0);
    CHECK(fd >= 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    pid_t pid;
    int r = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    if (r != 0)
        FAIL("posix_spawn: %s", strerror(r));
    posix_spawn_file_actions_destroy(&fa);
    c.status = t_wait(pid, 30000);
    off_t len = lseek(fd, 0, SEEK_END);
    c.bytes = (size_t)len;
    ssize_t got = pread(fd, c.text, sizeof c.text - 1, 0);
    c.text[got > 0 ? got : 0] = '\0';
    close(fd);
    for (char *p = c.text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        c.lines += strncmp(p, "fsafe[", 6) == 0;
    fprintf(stderr, "--- inner stderr (%zu bytes, status %d) ---\n%s---\n", c.bytes, c.status,
            c.text);
    return c;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: see the file header");
    const char *m = argv[1];
    runtime_tasks = t_ntask();
    CHECK(runtime_tasks >= 1);
    if (strcmp(m, "count") == 0 && argc == 5)
        return mode_count(atoi(argv[2]), atoi(argv[3]), strcmp(argv[4], "api") == 0);
    if (strcmp(m, "inner-fail") == 0)
        return inner_fail();
    if (strcmp(m, "inner-badenv") == 0)
        return inner_badenv();
    if (strcmp(m, "inner-auto") == 0)
        return inner_auto(argc > 2 ? argv[2] : "env");

    if (strcmp(m, "fail") == 0) {
        char *in[] = {argv[0], "inner-fail", NULL};
        struct captured c = run_inner(in);
        if (c.status == T_SKIP)
            return T_SKIP;
        CHECK_EQ(c.status, 0);
        CHECK_EQ(c.lines, 1); /* one line for FAIL_FORKS failing forks */
        CHECK(strstr(c.text, "]: cannot create a throwaway thread") != NULL);
        CHECK(strstr(c.text, "EAGAIN") != NULL);
        printf("ok: thread creation failed on every fork; fork worked; one line\n");
        return 0;
    }
    if (strcmp(m, "badenv") == 0) {
        char *in[] = {argv[0], "inner-badenv", NULL};
        struct captured c = run_inner(in);
        CHECK_EQ(c.status, 0);
        CHECK_EQ(c.lines, 1);
        CHECK(strstr(c.text, "FSAFE_CHURN") != NULL);
        CHECK(strstr(c.text, "default, auto") != NULL);
        printf("ok: one warning, default kept\n");
        return 0;
    }
    if (strcmp(m, "auto") == 0) {
        char *in[] = {argv[0], "inner-auto", argc > 2 ? argv[2] : "env", NULL};
        struct captured c = run_inner(in);
        CHECK_EQ(c.status, 0);
        CHECK_EQ(c.bytes, 0); /* by default fsafe prints nothing */
        printf("ok: %s: no throwaway threads expected here, printed nothing\n", in[2]);
        return 0;
    }
    FAIL("unknown mode '%s'", m);
}
