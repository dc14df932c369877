/* SPDX-License-Identifier: MIT */
/*
 * fsafe's demo: a child that hangs without fsafe and doesn't with it.
 *
 * A "logging library" guards its buffer with a mutex, and a worker thread logs
 * all the time.  The main thread forks; the child logs one line.  Without
 * fsafe the child inherits the mutex locked by a thread that does not exist in
 * the child, and waits forever (the demo gives up after 3 s).  The library
 * registers its mutex with fsafe through the optional API, so the same binary
 * run with libfsafe.so preloaded (the demo's second run; plain libfsafe.so, not
 * auto mode) forks safely every time: the registration is what protects it.
 *
 * Usage: fsafe-demo [--forks N]      (default 20)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsafe.h"

/* ---- the "logging library" ------------------------------------------------ */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[256];
static unsigned long log_lines;

static int log_init(void)
{
    /* Optional: a no-op (ENOSYS) when fsafe is not in the process. */
    return fsafe_opt_register_lock(&log_lock, FSAFE_MUTEX, 100, "demo log_lock");
}

static int log_line(const char *msg, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    if (pthread_mutex_timedlock(&log_lock, &ts) != 0)
        return -1;
    /* a little work while holding the lock, as real loggers do */
    size_t n = strlen(msg) < sizeof log_buf - 1 ? strlen(msg) : sizeof log_buf - 1;
    memcpy(log_buf, msg, n);
    log_buf[n] = '\0';
    for (volatile int i = 0; i < 2000; i++) {
    }
    log_lines++;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;)
        log_line("worker: busy", 1000000);
    return NULL;
}

/* ---- the demonstration --------------------------------------------------- */
static int run(int forks)
{
    int r = log_init();
    printf("  fsafe_opt_register_lock(&log_lock) returned %s\n",
           r == 0        ? "0: registered, fsafe's fork() takes it before forking"
           : r == ENOSYS ? "ENOSYS: fsafe is not in this process"
                         : strerror(r));
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    usleep(10000);
    int ok = 0, hung = 0;
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0)
            _exit(log_line("child: hello", 3000) == 0 ? 0 : 3);
        int st;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            ok++;
        else
            hung++;
    }
    printf("  %d forks: %d children logged, %d children were stuck on the log lock\n", forks, ok,
           hung);
    return hung ? 1 : 0;
}

int main(int argc, char **argv)
{
    int forks = 20;
    if (argc == 3 && strcmp(argv[1], "--forks") == 0 && atoi(argv[2]) > 0) {
        forks = atoi(argv[2]);
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--forks N]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *phase = getenv("FSAFE_DEMO_PHASE");
    if (!phase) {
        /* Phase 1: without fsafe, in a child process so its hangs cost only 3 s each. */
        printf("1. without fsafe (each stuck child is given up after 3 s):\n");
        pid_t pid = fork();
        if (pid == 0) {
            setenv("FSAFE_DEMO_PHASE", "without", 1);
            execv("/proc/self/exe", argv);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
        int without = WIFEXITED(st) ? WEXITSTATUS(st) : 2;

        printf("2. the same binary with libfsafe.so preloaded (LD_PRELOAD=%s, no auto mode):\n"
               "   what protects the child is the library's own registration of log_lock\n",
               FSAFE_DEMO_LIB);
        setenv("FSAFE_DEMO_PHASE", "with", 1);
        setenv("LD_PRELOAD", FSAFE_DEMO_LIB, 1);
        pid = fork();
        if (pid == 0) {
            execv("/proc/self/exe", argv);
            _exit(127);
        }
        waitpid(pid, &st, 0);
        int with = WIFEXITED(st) ? WEXITSTATUS(st) : 2;
        printf("result: %s\n", without == 1 && with == 0
                                   ? "children hang without fsafe; with it, the registered "
                                     "log_lock was taken before each fork and reset in the child"
                                   : "UNEXPECTED (see above)");
        return with == 0 ? 0 : 1;
    }
    if (strcmp(phase, "with") == 0 && !fsafe_present()) {
        fprintf(stderr, "fsafe-demo: libfsafe did not load from %s\n", FSAFE_DEMO_LIB);
        return 2;
    }
    return run(strcmp(phase, "with") == 0 ? forks : 3);
}
