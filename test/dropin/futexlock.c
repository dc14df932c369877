/* SPDX-License-Identifier: MIT */
/*
 * A lock that is not a pthread lock, laid out as Rust's std::sync::Mutex<T>
 * on Linux: a 32-bit futex word (0 free, 1 held, 2 held with waiters), a
 * poison byte, then the data it guards.  Unlocked and zeroed it has the
 * bytes of PTHREAD_MUTEX_INITIALIZER.  This library calls no pthread mutex
 * function (test/dropin/symtab.sh checks its dynamic symbol table).
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static struct {
    uint32_t futex;
    unsigned char poison;
    uint64_t data[8]; /* data[0] and data[1] change together, under the lock */
} futex_registry;

static void futex_lock(void)
{
    uint32_t zero = 0;
    if (__atomic_compare_exchange_n(&futex_registry.futex, &zero, 1, 0, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
        return;
    while (__atomic_exchange_n(&futex_registry.futex, 2, __ATOMIC_ACQUIRE) != 0)
        syscall(SYS_futex, &futex_registry.futex, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

static void futex_unlock(void)
{
    if (__atomic_exchange_n(&futex_registry.futex, 0, __ATOMIC_RELEASE) == 2)
        syscall(SYS_futex, &futex_registry.futex, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static int stop;

static void *worker(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        futex_lock();
        futex_registry.data[0]++;
        futex_registry.data[1]++;
        futex_unlock();
    }
    return NULL;
}

/* Forks `forks` times while a thread updates the data under the lock; each
 * child exits at once.  Returns 0 if the data stayed whole (data[0] ==
 * data[1]), 1 if something else wrote into it, -1 on a fork error. */
__attribute__((visibility("default"))) int futexlock_run(int forks)
{
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        return -1;
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return -1;
        if (pid == 0)
            _exit(0);
        waitpid(pid, NULL, 0);
        usleep(1000);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
    return futex_registry.data[0] == futex_registry.data[1] ? 0 : 1;
}
