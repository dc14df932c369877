/* SPDX-License-Identifier: MIT */
/*
 * A program built against an installed fsafe (find_package or pkg-config):
 * registers a mutex that a worker thread holds most of the time, forks 5
 * times, and checks that every child could take the mutex.  With
 * CONSUMER_STATIC (libfsafe.a) it calls fsafe_fork(); otherwise plain fork(),
 * which libfsafe.so interposes.  Exit 0 only if every child completed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fsafe.h>

#ifdef CONSUMER_STATIC
#define consumer_fork fsafe_fork
#else
#define consumer_fork fork
#endif

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg)
{
    (void)arg;
    struct timespec in = {0, 2000000}, out = {0, 100000};
    for (;;) {
        pthread_mutex_lock(&lock);
        nanosleep(&in, NULL);
        pthread_mutex_unlock(&lock);
        nanosleep(&out, NULL);
    }
    return NULL;
}

/* Exit status of pid, or 124 after killing it when timeout_ms passed. */
static int wait_for(pid_t pid, long timeout_ms)
{
    struct timespec tick = {0, 5000000};
    int st;
    for (long t = 0; waitpid(pid, &st, WNOHANG) != pid; t += 5) {
        if (t >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return 124;
        }
        nanosleep(&tick, NULL);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(void)
{
    if (fsafe_version() != FSAFE_VERSION) {
        fprintf(stderr, "FAIL: header %s, library %s\n", FSAFE_VERSION_STRING,
                fsafe_version_string());
        return 1;
    }
    int r = fsafe_register_lock(&lock, FSAFE_MUTEX, 10, "consumer lock");
    if (r != 0) {
        fprintf(stderr, "FAIL: fsafe_register_lock: %s\n", strerror(r));
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    struct timespec settle = {0, 20000000};
    nanosleep(&settle, NULL);

    const int forks = 5;
    for (int i = 0; i < forks; i++) {
        pid_t pid = consumer_fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += 2;
            _exit(pthread_mutex_timedlock(&lock, &dl) == 0 ? 0 : 3);
        }
        int st = wait_for(pid, 5000);
        if (st != 0) {
            fprintf(stderr, "FAIL: child %d ended with status %d (3 or 124: it hung)\n", i, st);
            return 1;
        }
    }
    struct fsafe_stats s;
    fsafe_get_stats(&s, sizeof s);
    if (s.forks != (uint64_t)forks) {
        fprintf(stderr, "FAIL: fsafe counted %llu forks, expected %d\n",
                (unsigned long long)s.forks, forks);
        return 1;
    }
    Dl_info info = {0};
    dladdr((void *)fsafe_version, &info);
    printf("consumer: fsafe %s from %s: %d forks, every child took the lock\n",
           fsafe_version_string(), info.dli_fname ? info.dli_fname : "?", forks);
    return 0;
}
