/* SPDX-License-Identifier: MIT */
/*
 * Throwaway threads: spawned, joined and confirmed gone before the real fork,
 * so that no stale thread/LWP id survives into the child (NetBSD 5.0).  Runs in
 * the parent, on the fork gate owner's thread, before any registered lock or
 * libc fork lock is taken.  Never runs in the child, never blocks on a lock a
 * user thread can hold.
 *
 * Where churn happens, argued against the seed (000_dd81781b4e3ccafc.txt):
 *
 *  - The seed's reproducer: create three threads, let one exit (LWP ids 1 and
 *    3 remain), fork from LWP 3.  The child's thread is LWP 1 but the thread
 *    library still uses the stale id 3 (_lwp_park(..., 3, ...) -> ESRCH).  Its
 *    workaround, found by experiment, is to create enough throwaway threads and
 *    let them exit BEFORE forking, "so that the missing LWP ids are used and
 *    retired".  That is a parent-side operation, and it is what fsafe does: the
 *    N threads are alive at the same time (so N distinct ids/thread structures
 *    are taken, not one recycled N times), then all are joined.
 *
 *  - In the child it is rejected.  (1) fsafe's child half runs in the child of
 *    a multithreaded process, where only async-signal-safe calls are allowed;
 *    pthread_create mallocs and takes libc's stack-list lock.  (2) On the
 *    affected system it would run the very code that breaks: the seed's child
 *    fails in thread-library calls that use the stale id, and pthread_create /
 *    pthread_join are such calls.  (3) It would run inside libc's child
 *    sequence, before later-registered libraries have reset their locks, so a
 *    pthread_create interposer (sanitizer, profiler) could deadlock there.
 *
 *  - In the parent, churn runs before the atfork prepare handlers' locks, the
 *    registered locks, libc's NSS/stdio/malloc fork locks: the throwaway
 *    threads only touch libc's own short-lived internal locks, which nobody is
 *    holding across a blocking wait at that point, so they cannot deadlock.
 *    fork.c calls us only from the wrapper, not from the prepare-handler path
 *    (daemon(), forkpty()), where other libraries' prepare handlers may
 *    already hold their locks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include "internal.h"

#define CHURN_MAX 1024                   /* FSAFE_CHURN's upper bound */
#if defined(__SANITIZE_THREAD__)
/* ThreadSanitizer's runtime puts its own per-thread state on the stack and
 * warns (on stderr) for anything under about 900 KiB. */
#define CHURN_STACK (1024 * 1024)
#else
#define CHURN_STACK (64 * 1024)          /* the thread only returns */
#endif
#define CHURN_STACK_MAX (64u << 20)      /* give up growing it for static TLS here */
/* Per fork, waiting for the exiting tasks: 200 ms, plus 1 ms per thread (1024
 * threads under ASan on a loaded 2-core machine took just over 200 ms). */
#define CHURN_GONE_NS (200 * 1000000ull)
#define CHURN_GONE_PER_TASK_NS (1000000ull)

static AO_t churn_override = (AO_t)-2; /* -2: not set, use FSAFE_CHURN */
static AO_t churn_warned;              /* the one diagnostic line was printed */

/* Forker-only (the fork gate is held): static storage, no malloc on the path. */
static pthread_t churn_thr[CHURN_MAX];
static volatile pid_t churn_tid[CHURN_MAX]; /* written by the thread, read after join */
/* The usable size of one throwaway stack; grows (forker only) when glibc says
 * the program's static TLS does not fit (EINVAL), and stays grown. */
static size_t churn_stack = CHURN_STACK;

int fsafe__churn_set(int count)
{
    if (count < FSAFE_CHURN_AUTO || count > CHURN_MAX)
        return EINVAL;
    AO_store_release(&churn_override, (AO_t)(long)count);
    return 0;
}

FSAFE_FORK_PATH int fsafe__churn_effective(void)
{
    long v = (long)AO_load_acquire(&churn_override);
    if (v == -2)
        v = fsafe__cfg.churn;
    if (v == FSAFE_CHURN_AUTO) {
#if defined(__NetBSD__)
        /* The seed's reproducer has ids 1..3 in play; one more than that.
         * Later NetBSD refreshes the cached id in the child itself
         * (pthread__fork_callback), where this only costs time. */
        v = 4;
#else
        v = 0; /* Linux gives the child a fresh task; churn would only cost time */
#endif
    }
    return (int)v;
}

static void *throwaway(void *arg)
{
#if defined(__linux__)
    churn_tid[(size_t)arg] = fsafe__gettid();
#endif
    return NULL;
}

/*
 * pthread_join returns when the kernel clears the thread's tid word
 * (CLONE_CHILD_CLEARTID), which Linux does in exit_mm(), before the task is
 * released; measured here, ~0.1-0.5% of joined threads still appear in
 * /proc/self/task right after pthread_join.  Poll tgkill(sig 0) until ESRCH,
 * i.e. until the task is unhashed.  Returns 1 when gone, 0 if the deadline
 * passed first.
 */
static int task_gone(pid_t tid, uint64_t deadline)
{
#if defined(__linux__)
    if (tid <= 0)
        return 0; /* the thread never ran: nothing to poll for */
    pid_t pid = getpid();
    for (int spin = 0;; spin++) {
        if (syscall(SYS_tgkill, pid, tid, 0) == -1 && errno == ESRCH)
            return 1;
        if (fsafe__now_ns() > deadline)
            return 0;
        if (spin < 64) {
            sched_yield();
        } else {
            struct timespec ts = {0, 20 * 1000};
            nanosleep(&ts, NULL);
        }
    }
#else
    (void)tid, (void)deadline;
    return 1; /* pthread_join is all we have to rely on */
#endif
}

static const char *errname(int e)
{
    switch (e) {
    case EAGAIN:
        return "EAGAIN";
    case ENOMEM:
        return "ENOMEM";
    case EPERM:
        return "EPERM";
    case EINVAL:
        return "EINVAL";
    default:
        return "error";
    }
}

/*
 * The throwaway threads run on stacks fsafe maps and unmaps itself, one
 * mapping per fork: a guard page, then the stack, for each thread.  glibc keeps
 * the stacks it allocated for joinable threads in its stack cache after the
 * join (nptl/nptl-stack.c, __nptl_deallocate_stack -> queue_stack), and a child
 * inherits that cache: a child's thread that asks for a small stack would get
 * a throwaway's bigger one.  A stack given with pthread_attr_setstack is never
 * cached (glibc 2.36 frees only its TLS at the join), so after the munmap the
 * cache, and the address space, are as the program left them.
 */
struct stacks {
    char *base;
    size_t len, slot, page;
};

static int stacks_map(struct stacks *s, int n)
{
    long pg = sysconf(_SC_PAGESIZE);
    s->page = pg > 0 ? (size_t)pg : 4096;
    size_t sz = (churn_stack + s->page - 1) / s->page * s->page;
    s->slot = s->page + sz;
    s->len = s->slot * (size_t)n;
    void *p = mmap(NULL, s->len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED)
        return errno;
    for (int i = 0; i < n; i++)
        if (mprotect((char *)p + s->slot * (size_t)i, s->page, PROT_NONE) != 0) {
            int e = errno;
            munmap(p, s->len);
            return e;
        }
    s->base = p;
    return 0;
}

/* Creates throwaway thread i on its slot; returns pthread_create's error. */
static int spawn_one(const struct stacks *s, int i)
{
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (err != 0)
        return err;
    err = pthread_attr_setstack(&attr, s->base + s->slot * (size_t)i + s->page, s->slot - s->page);
    if (err == 0) {
        churn_tid[i] = 0;
        err = pthread_create(&churn_thr[i], &attr, throwaway, (void *)(size_t)i);
    }
    pthread_attr_destroy(&attr);
    return err;
}

/*
 * Spawn n throwaway threads, all alive at once, then join each and wait until
 * its task is gone.  On the first pthread_create failure stop creating (one
 * failed attempt per fork, bounded time), reap what was created, and let the
 * fork proceed.  The first failure in the process prints one line; later ones
 * are only counted, so a process at its thread limit is not flooded.
 *
 * Nothing the program can observe changes: errno is restored, the caller's
 * signal mask is restored, scheduling and CPU affinity are only inherited by
 * the throwaway threads (never set), and their stacks bypass glibc's cache.
 */
void fsafe__churn_before_fork(void)
{
    int n = fsafe__churn_effective();
    if (n <= 0)
        return;
    if (n > CHURN_MAX)
        n = CHURN_MAX;
    int saved_errno = errno;

    /* Threads inherit the creator's mask: with everything blocked, no signal
     * handler of the program ever runs on a throwaway thread's small stack. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    struct stacks st = {NULL, 0, 0, 0};
    int made = 0, err;
    for (;;) {
        err = stacks_map(&st, n);
        if (err != 0)
            break;
        for (; made < n; made++)
            if ((err = spawn_one(&st, made)) != 0)
                break;
        /* EINVAL before any thread ran: the program's static TLS does not
         * fit the stack (glibc puts it there).  Grow it and map again. */
        if (err != EINVAL || made != 0 || churn_stack >= CHURN_STACK_MAX)
            break;
        munmap(st.base, st.len);
        st.base = NULL;
        churn_stack *= 2;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    fsafe__stats.churn_spawned += (uint64_t)made;
    if (err != 0) {
        fsafe__stats.churn_failed++;
        if (AO_compare_and_swap_full(&churn_warned, 0, 1))
            fsafe__msg("cannot create a throwaway thread before fork (%s: %s, "
                       "errno %d); forking with %d of %d; further failures are only counted "
                       "(churn_failed)",
                       st.base ? "pthread_create" : "mmap", errname(err), err, made, n);
    }

    uint64_t deadline = fsafe__now_ns() + CHURN_GONE_NS + (uint64_t)made * CHURN_GONE_PER_TASK_NS;
    int unjoined = 0;
    for (int i = 0; i < made; i++) {
        if (pthread_join(churn_thr[i], NULL) != 0) {
            unjoined = 1;
            continue;
        }
        if (task_gone(churn_tid[i], deadline))
            fsafe__stats.churn_reaped++;
    }
    /* A joined thread no longer touches its stack: the kernel clears the tid
     * word pthread_join waits for when the task drops its memory map.  A
     * thread that could not be joined may still run on its stack: keep it. */
    if (st.base && !unjoined)
        munmap(st.base, st.len);
    errno = saved_errno;
}
