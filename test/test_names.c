/* SPDX-License-Identifier: MIT */
/*
 * Lock names survive registration churn.  The registry keeps one counted copy
 * of each distinct name (and ops table) and gives entries an id; this test
 * registers shared, unique, truncated and empty names, unregisters some,
 * registers others into the freed slots, forks (also with a thread
 * registering meanwhile), and then reads every name back from FSAFE_STATS's
 * per-lock lines at exit, which a re-executed copy of itself writes to a pipe.
 *   test_names            the check
 *   test_names --child    the registering process (stdout: expected lines)
 */
#include "common.h"

#include <fcntl.h>

#include "fsafe.h"

/* ThreadSanitizer's deadlock detector stops at 64 locks held by one thread,
 * and the fork walk holds every registered lock. */
#define NLOCKS (T_TSAN ? 60 : 600)
static pthread_mutex_t m[NLOCKS];
static char expect_name[NLOCKS][FSAFE_NAME_MAX];
static int live[NLOCKS];

static void reg(int i, const char *name)
{
    CHECK_EQ(fsafe_register_lock(&m[i], FSAFE_MUTEX, i % 7, name), 0);
    snprintf(expect_name[i], sizeof expect_name[i], "%s", name ? name : "");
    live[i] = 1;
}

static void unreg(int i)
{
    CHECK_EQ(fsafe_unregister_lock(&m[i]), 0);
    live[i] = 0;
}

static int stop; /* __atomic */
static void *churner(void *arg)
{
    /* Registers and unregisters locks of its own, with names of their own,
     * while the main thread forks. */
    static pthread_mutex_t own[8];
    char name[32];
    for (unsigned n = 0; !__atomic_load_n(&stop, __ATOMIC_ACQUIRE); n++) {
        snprintf(name, sizeof name, "churn-%u", n % 5);
        CHECK_EQ(fsafe_register_lock(&own[n % 8], FSAFE_MUTEX, 3, name), 0);
        CHECK_EQ(fsafe_unregister_lock(&own[n % 8]), 0);
    }
    return arg;
}

static int child_main(void)
{
    char name[64];
    for (int i = 0; i < NLOCKS; i++) {
        pthread_mutex_init(&m[i], NULL);
        if (i % 3 == 0)
            reg(i, "shared");
        else if (i % 3 == 1) {
            snprintf(name, sizeof name, "unique-%d", i);
            reg(i, name);
        } else if (i % 30 == 2) {
            reg(i, i % 60 == 2 ? NULL : "");
        } else {
            reg(i, "a-name-longer-than-the-registry-keeps-0123456789-abcdefghij");
        }
    }
    /* Free about half, sharing and unique alike, then reuse the slots with
     * names that were freed and names that are new.  Three locks share a
     * name; two go, and the third keeps its name while new names take the
     * freed slots. */
    for (int i = 0; i < NLOCKS; i += 2)
        unreg(i);
    for (int i = 1; i < 6; i += 2)
        unreg(i), reg(i, "trio");
    unreg(1), unreg(3);
    for (int i = 0; i < NLOCKS; i += 4) {
        snprintf(name, sizeof name, i % 8 ? "unique-%d" : "again-%d", i + 1 - (i % 8 ? 0 : 1));
        reg(i, name);
    }
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, churner, NULL), 0);
    for (int k = 0; k < 20; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            /* In the child: register and unregister (a rebuild when the
             * churner was inside the store at the fork). */
            static pthread_mutex_t extra;
            int ok = fsafe_register_lock(&extra, FSAFE_MUTEX, 0, "child-extra") == 0 &&
                     fsafe_unregister_lock(&extra) == 0;
            _exit(ok ? 0 : 10);
        }
        CHECK_EQ(t_wait(pid, 10000), 0);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    CHECK_EQ(pthread_join(t, NULL), 0);
    for (int i = 0; i < NLOCKS; i++)
        if (live[i])
            printf("lock '%s' rank %d (mutex, %p)\n", expect_name[i], i % 7, (void *)&m[i]);
    fflush(stdout);
    return 0; /* exit(): FSAFE_STATS prints every registered lock */
}

/* Runs the child with its stdout and stats log captured in files. */
static void run_child(const char *self, const char *out, const char *log)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int l = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || l < 0 || dup2(o, 1) < 0)
            _exit(20);
        char fd[16];
        snprintf(fd, sizeof fd, "%d", l);
        setenv("FSAFE_STATS", "1", 1);
        setenv("FSAFE_LOG_FD", fd, 1);
        execl(self, self, "--child", (char *)NULL);
        _exit(21);
    }
    CHECK_EQ(t_wait(pid, 60000), 0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 2 && strcmp(argv[1], "--child") == 0) {
        setvbuf(stdout, NULL, _IOFBF, 0);
        return child_main();
    }
    char out[] = "/tmp/fsafe_names_out.XXXXXX", log[] = "/tmp/fsafe_names_log.XXXXXX";
    int fo = mkstemp(out), fl = mkstemp(log);
    CHECK(fo >= 0 && fl >= 0);
    close(fo), close(fl);
    run_child("/proc/self/exe", out, log);
    /* Every expected line must appear in the log, once, and the log must
     * list no other lock of the main thread's. */
    FILE *fe = fopen(out, "r"), *fg = fopen(log, "r");
    CHECK(fe && fg);
    static char logbuf[1 << 20];
    size_t loglen = fread(logbuf, 1, sizeof logbuf - 1, fg);
    logbuf[loglen] = '\0';
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, fe)) {
        line[strcspn(line, "\n")] = '\0';
        char *at = strstr(logbuf, line);
        if (!at || strstr(at + 1, line))
            FAIL("expected once in the stats: %s", line);
        n++;
    }
    int listed = 0;
    for (char *p = logbuf; (p = strstr(p, ": longest wait ")); p++)
        listed++;
    unlink(out), unlink(log);
    CHECK(n > NLOCKS / 3);
    CHECK_EQ(listed, n);
    printf("ok: %d lock names read back after churn, slot reuse and 20 forks\n", n);
    return 0;
}
