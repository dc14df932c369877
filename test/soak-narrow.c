/* SPDX-License-Identifier: MIT */
/*
 * soak-narrow: the one situation of the soak's "lock 00 owned by a worker"
 * children (issue soak36), at about 250 forks a second instead of 35.  Four
 * workers take a plain mutex L0 (lock or trylock) and sometimes L1 inside
 * it; forker B forks holding L0 (and L1) half of the time, so that workers
 * block on a mutex of a thread inside fork() (the fork skips their lock
 * calls, and a signal handler on them parks behind it: waits_on_frozen in
 * src/auto/track.c); forker A forks holding nothing meanwhile; a thread
 * sends SIGUSR1 to the workers every SIG_US microseconds, and the handler
 * takes a spinlock.  Each child must take L0, L1 and the spinlock within
 * 2 s (a hung child is a bad one).  Not a CTest case; build and run by hand:
 *
 *   cc -O2 -pthread -o /tmp/soak-narrow test/soak-narrow.c -ldl
 *   LD_PRELOAD=build/libfsafe-auto.so.0.1.0 \
 *     FSAFE_AUTO_WAIT_MS=5000 /tmp/soak-narrow SECONDS [SIG_US]
 *
 * One line: forks and bad children per forker; exit 1 with any bad child.
 * Without fsafe a run of a few seconds has bad children (L0 held by a
 * worker, the spinlock held); a debug build (test/soak-audit.patch) writes
 * its records out in a bad child.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NW 4
static pthread_mutex_t L0 = PTHREAD_MUTEX_INITIALIZER, L1 = PTHREAD_MUTEX_INITIALIZER;
static pthread_spinlock_t sig_spin;
static int stop;
static pid_t wtid[NW];
static pthread_t wt[NW];
static unsigned long forks[2], bad[2];
static int sig_us = 50;

static unsigned rnd(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}
static void spin(unsigned n)
{
    for (volatile unsigned k = 0; k < n; k++) {
    }
}

static void on_usr1(int sig)
{
    (void)sig;
    int e = errno;
    pthread_spin_lock(&sig_spin);
    pthread_spin_unlock(&sig_spin);
    errno = e;
}

static void *worker(void *a)
{
    unsigned seed = 77 + (unsigned)(uintptr_t)a;
    wtid[(uintptr_t)a] = gettid();
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        int r = (rnd(&seed) & 3) == 0 ? pthread_mutex_trylock(&L0) : pthread_mutex_lock(&L0);
        if (r == 0) {
            spin(rnd(&seed) % 300);
            if (rnd(&seed) & 1) {
                pthread_mutex_lock(&L1);
                spin(rnd(&seed) % 100);
                pthread_mutex_unlock(&L1);
            }
            pthread_mutex_unlock(&L0);
        }
        if ((rnd(&seed) & 15) == 0)
            sched_yield();
    }
    return NULL;
}

static void *signaller(void *a)
{
    (void)a;
    unsigned seed = 5;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        pthread_kill(wt[rnd(&seed) % NW], SIGUSR1);
        struct timespec ts = {0, sig_us * 1000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int child(int held)
{
    if (held >= 2)
        pthread_mutex_unlock(&L1);
    if (held >= 1)
        pthread_mutex_unlock(&L0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 2;
    if (pthread_mutex_timedlock(&L0, &ts) != 0) {
        pid_t o = L0.__data.__owner;
        int w = -1;
        for (int k = 0; k < NW; k++)
            if (wtid[k] == o)
                w = k;
        char b[128];
        int n = snprintf(b, sizeof b, "bad: L0 owner %d (worker %d) word %d, forker held %d\n", o,
                         w, L0.__data.__lock, held);
        (void)!write(1, b, (size_t)n);
        void (*dump)(const void *) =
            (void (*)(const void *))dlsym(RTLD_DEFAULT, "fsafe__soak36_dump");
        if (dump)
            dump(&L0);
        return 2;
    }
    pthread_mutex_unlock(&L0);
    if (pthread_mutex_timedlock(&L1, &ts) != 0) {
        char b[128];
        int n = snprintf(b, sizeof b, "bad: L1 owner %d word %d, forker held %d\n",
                         L1.__data.__owner, L1.__data.__lock, held);
        (void)!write(1, b, (size_t)n);
        return 3;
    }
    pthread_mutex_unlock(&L1);
    for (int k = 0; k < 2000; k++) {
        if (pthread_spin_trylock(&sig_spin) == 0) {
            pthread_spin_unlock(&sig_spin);
            return 0;
        }
        usleep(1000);
    }
    (void)!write(1, "bad: sig_spin\n", 14);
    return 4;
}

static void fork_once(int who, unsigned *seed)
{
    int held = 0;
    if (who == 1 && (rnd(seed) & 1)) {
        pthread_mutex_lock(&L0);
        held = 1;
        if (rnd(seed) & 1) {
            pthread_mutex_lock(&L1);
            held = 2;
        }
    }
    pid_t p = fork();
    if (p == 0)
        _exit(child(held));
    if (held >= 2)
        pthread_mutex_unlock(&L1);
    if (held >= 1)
        pthread_mutex_unlock(&L0);
    int st;
    if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        __atomic_add_fetch(&bad[who], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&forks[who], 1, __ATOMIC_RELAXED);
}

static void *forker_b(void *a)
{
    (void)a;
    unsigned seed = 99;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE))
        fork_once(1, &seed);
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int secs = argc > 1 ? atoi(argv[1]) : 30;
    if (argc > 2)
        sig_us = atoi(argv[2]);
    pthread_spin_init(&sig_spin, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    for (long i = 0; i < NW; i++)
        pthread_create(&wt[i], NULL, worker, (void *)i);
    pthread_t s, b;
    pthread_create(&s, NULL, signaller, NULL);
    pthread_create(&b, NULL, forker_b, NULL);
    unsigned seed = 1;
    time_t end = time(NULL) + secs;
    while (time(NULL) < end)
        fork_once(0, &seed);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_join(b, NULL);
    pthread_join(s, NULL);
    for (int i = 0; i < NW; i++)
        pthread_join(wt[i], NULL);
    printf("%s: %lu forks (A %lu, B %lu), bad A %lu B %lu\n", bad[0] + bad[1] ? "FAIL" : "ok",
           forks[0] + forks[1], forks[0], forks[1], bad[0], bad[1]);
    return bad[0] + bad[1] ? 1 : 0;
}
