/* SPDX-License-Identifier: MIT */
/*
 * The child's watch (issue 24): one line when the child of a multithreaded
 * fork blocks in a wait that no thread of the child can end.
 *
 * fsafe cannot see every lock: a condition wait whose predicate is a flag
 * (libxml2's recursive mutex), a semaphore that another thread posts
 * (CPython 3.13.1+'s PyMutex parks its waiters on one), a futex word that a
 * library waits on through syscall() (GLib's own g_mutex calls, Rust's and
 * Qt's mutexes, abseil).  When the thread that would have ended such a wait
 * stayed in the parent, the child waits forever, and fsafe used to say
 * nothing.  Now, in such a child, these waits without a timeout are made
 * with FSAFE_CHILD_WATCH_MS as the timeout first; when it runs out and the
 * child still has only the one thread, fsafe writes one line naming the
 * object, the call and the code that called it, and then makes the wait the
 * program asked for, unchanged.  The program sees the same results and the
 * same errno.
 *
 * When nothing can end the wait, so that a healthy program never sees it:
 * - only in a child whose parent had more than one thread (glibc's
 *   __libc_single_threaded at the fork; before glibc 2.32, which has no
 *   such flag, the thread count in /proc/self/stat), and
 *   only while the child has one thread (/proc/self/stat): once a wait
 *   finds that it has made a thread, the watch is off for good, as after
 *   its one line;
 * - only for process-private objects (a process-shared one may be ended
 *   by another process);
 * - a condition wait: nothing but another thread may signal it
 *   (pthread_cond_signal is not async-signal-safe);
 * - a semaphore or a futex word: a signal handler may post or wake it
 *   (sem_post is async-signal-safe, and is used so), so not when a handler
 *   is installed for a signal this thread does not block, unless the
 *   caller is one known to wait for another thread (`known`, by its
 *   dynamic symbol: CPython's parking lot, whose PyMutex waits a Python
 *   child would otherwise never be told about, Python having a SIGINT
 *   handler).
 *
 * Everything here runs in the child: async-signal-safe calls only
 * (open/read, clock_gettime, sigaction, pthread_sigmask, write through
 * fsafe__amsg), and dladdr, whose loader lock glibc's fork re-initialises
 * in the child (and that auto mode keeps out of other threads' hands at
 * the fork: loader.c) and which allocates nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "auto.h"
#include "glibc.h"

#define unlikely(x) __builtin_expect(!!(x), 0)

AO_t fsafe__watch_armed;
static int parent_threaded; /* at the last prefork */

static void disarm(void)
{
    AO_store(&fsafe__watch_armed, 0);
}

/* This process's number of threads, the 20th field of /proc/self/stat
 * (num_threads, after the command name in parentheses); -1 if unreadable. */
static int thread_count(void)
{
    char buf[512];
    int saved = errno; /* the program's, whatever the calls below do */
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    errno = saved;
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    /* ") S ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime cutime cstime priority nice num_threads" */
    for (int field = 2; p && field < 20; field++)
        p = strchr(p + 1, ' ');
    int count = 0;
    for (p = p ? p + 1 : NULL; p && *p >= '0' && *p <= '9'; p++)
        count = count * 10 + (*p - '0');
    return p ? count : -1;
}

static int alone(void)
{
    return thread_count() == 1;
}

void fsafe__watch_prefork(void)
{
    if (fsafe__svc.cfg->child_watch_ms <= 0)
        return;
    int single = fsafe__gl_single_threaded();
    /* glibc < 2.32 has no flag: the kernel is asked */
    parent_threaded = single >= 0 ? !single : thread_count() != 1;
}

void fsafe__watch_postfork_child(void)
{
    AO_t armed = parent_threaded && fsafe__svc.cfg->child_watch_ms > 0;
    if (AO_load(&fsafe__watch_armed) != armed) /* no page written for nothing (issue 25) */
        AO_store(&fsafe__watch_armed, armed);
}

/* Whether a signal handler may run on this thread (and so post a
 * semaphore or wake a futex word). */
static int handler_may_run(void)
{
    sigset_t blocked;
    if (pthread_sigmask(SIG_BLOCK, NULL, &blocked) != 0)
        return 1;
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sigismember(&blocked, sig) == 1 || sigaction(sig, NULL, &sa) != 0)
            continue;
        if ((sa.sa_flags & SA_SIGINFO) || (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN))
            return 1;
    }
    return 0;
}

/* A function glibc may not have (the clockwait calls are glibc 2.30's):
 * the next definition, or NULL, looked up once. */
static void *optional(AO_t *slot, const char *name)
{
    AO_t p = AO_load_acquire(slot);
    if (p == 0) {
        void *f = dlsym(RTLD_NEXT, name);
        p = f ? (AO_t)f : 1;
        AO_store_release(slot, p);
    }
    return p == 1 ? NULL : (void *)p;
}

static struct timespec deadline(clockid_t clock)
{
    long ms = fsafe__svc.cfg->child_watch_ms;
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    return ts;
}

/* Callers known by name (their library's dynamic symbol): what they wait
 * for, and whether only another thread can end it (no signal handler). */
static const struct known {
    const char *sym;
    int threads_only;
    const char *what;
} known[] = {
    /* Python/parking_lot.c: a parked thread's semaphore, posted only by the
     * thread that unparks it (_PySemaphore_Wakeup). */
    {"_PySemaphore_Wait", 1,
     "; CPython's parking lot: a PyMutex (threading.Lock in 3.13.1 and later, "
     "the interpreter's own locks) that a thread of the parent held"},
};

/* dladdr for caller into *di (0 when nothing is known), and *k the known
 * caller it is, or NULL. */
static int where(uintptr_t caller, Dl_info *di, const struct known **k)
{
    int (*dladdr_)(const void *, Dl_info *) = NEXT(int (*)(const void *, Dl_info *), "dladdr");
    *k = NULL;
    if (!caller || !dladdr_((const void *)caller, di))
        return 0;
    for (size_t i = 0; di->dli_sname && i < sizeof known / sizeof *known; i++)
        if (strcmp(di->dli_sname, known[i].sym) == 0)
            *k = &known[i];
    return 1;
}

/* The one line: fn (the call) on a kind object, called from caller.
 * signallable: a signal handler could end this wait (a semaphore, a futex
 * word), so nothing is said while one may run, unless the caller is known
 * to wait for another thread. */
static void say(const char *fn, const char *kind, const void *object, uintptr_t caller,
                int signallable)
{
    Dl_info di;
    const struct known *k;
    int saved = errno; /* the program's, whatever the calls below do */
    int found = where(caller, &di, &k);
    if (signallable && !(k && k->threads_only) && handler_may_run()) {
        errno = saved;
        return;
    }
    const char *head = "the program", *obj = "", *open_ = "", *close_ = "";
    uintptr_t off = caller;
    if (found) {
        if (di.dli_fname && di.dli_fname[0])
            head = di.dli_fname;
        off = caller - (uintptr_t)di.dli_fbase;
        if (di.dli_sname) /* "sym+0x1c (object)"; else "object+0x1c40" */
            obj = head, head = di.dli_sname, off = caller - (uintptr_t)di.dli_saddr, open_ = " (",
            close_ = ")";
    }
    fsafe__amsg("this child of a multithreaded process has waited %ld ms (FSAFE_CHILD_WATCH_MS) "
                "in %s on %s %p, called from %s+0x%lx%s%s%s, and has no other thread that could "
                "end the wait (the one that would have stayed in the parent): it waits forever%s",
                fsafe__svc.cfg->child_watch_ms, fn, kind, object, head, (unsigned long)off, open_,
                obj, close_, k ? k->what : "");
    disarm();
    errno = saved;
}

/* A semaphore's or futex word's wait ran out of the watch: a child that
 * has made a thread ends the watch; one still alone may be told so. */
static void ran_out(const char *fn, const char *kind, const void *object, uintptr_t caller)
{
    if (!alone())
        disarm();
    else
        say(fn, kind, object, caller, 1);
}

/* ---- condition waits (track.c) ------------------------------------------------------ */
int fsafe__watch_cond_wait(pthread_cond_t *c, pthread_mutex_t *m, const char *fn,
                           uintptr_t caller)
{
    int (*wait_)(pthread_cond_t *, pthread_mutex_t *) =
        NEXT(int (*)(pthread_cond_t *, pthread_mutex_t *), "pthread_cond_wait");
    if (*fsafe__gl_cond_wrefs(c) & FSAFE__GL_COND_PSHARED)
        return wait_(c, m); /* another process may signal it */
    if (!alone()) {
        disarm(); /* the child made a thread: the watch is over */
        return wait_(c, m);
    }
    /* Alone: no thread can signal c, so none can do it between the timed
     * wait's return and the wait below (a lost wake-up). */
    static AO_t clockwait_slot;
    int (*clockwait)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *) =
        optional(&clockwait_slot, "pthread_cond_clockwait");
    int r;
    if (clockwait) {
        struct timespec ts = deadline(CLOCK_MONOTONIC);
        r = clockwait(c, m, CLOCK_MONOTONIC, &ts);
    } else { /* before glibc 2.30: on the clock c was made with */
        struct timespec ts = deadline((*fsafe__gl_cond_wrefs(c) & FSAFE__GL_COND_MONOTONIC)
                                          ? CLOCK_MONOTONIC
                                          : CLOCK_REALTIME);
        r = NEXT(int (*)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *),
                 "pthread_cond_timedwait")(c, m, &ts);
    }
    if (r != ETIMEDOUT)
        return r;
    say(fn, "condition variable", c, caller, 0);
    return wait_(c, m);
}

/* ---- semaphores (sem.c) -------------------------------------------------------------- */
int fsafe__watch_sem_wait(sem_t *s, uintptr_t caller)
{
    int saved = errno;
    int (*wait_)(sem_t *) = NEXT(int (*)(sem_t *), "sem_wait");
    if (NEXT(int (*)(sem_t *), "sem_trywait")(s) == 0)
        return 0;
    errno = saved;
    if (!fsafe__gl_sem_private(s))
        return wait_(s); /* another process may post it */
    /* As for a futex word: alone or not is asked when the watch runs out. */
    static AO_t clockwait_slot;
    int (*clockwait)(sem_t *, clockid_t, const struct timespec *) =
        optional(&clockwait_slot, "sem_clockwait");
    int r;
    if (clockwait) {
        struct timespec ts = deadline(CLOCK_MONOTONIC);
        r = clockwait(s, CLOCK_MONOTONIC, &ts);
    } else { /* before glibc 2.30 */
        struct timespec ts = deadline(CLOCK_REALTIME);
        r = NEXT(int (*)(sem_t *, const struct timespec *), "sem_timedwait")(s, &ts);
    }
    if (r == 0 || errno != ETIMEDOUT)
        return r;
    errno = saved;
    ran_out("sem_wait", "semaphore", s, caller);
    return wait_(s);
}

/* ---- futex words waited on through syscall() ------------------------------------------ */
/* A wait without a timeout on a private word. */
static long watch_futex(long (*real)(long, ...), long a[6], uintptr_t caller)
{
    int op = (int)a[1];
    int cmd = op & FUTEX_CMD_MASK;
    if ((cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET) || a[3] != 0 || !(op & FUTEX_PRIVATE_FLAG))
        return real(SYS_futex, a[0], a[1], a[2], a[3], a[4], a[5]);
    /* A word's wait may time out and be made again at no cost to its
     * meaning (the kernel compares the word each time), so whether the
     * child is alone is asked only when the watch runs out. */
    int saved = errno;
    struct timespec ts;
    if (cmd == FUTEX_WAIT) { /* relative */
        long ms = fsafe__svc.cfg->child_watch_ms;
        ts.tv_sec = ms / 1000, ts.tv_nsec = (ms % 1000) * 1000000L;
    } else { /* absolute, on the clock the operation names */
        ts = deadline((op & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC);
    }
    long r = real(SYS_futex, a[0], a[1], a[2], (long)&ts, a[4], a[5]);
    if (r == 0 || errno != ETIMEDOUT)
        return r;
    errno = saved;
    ran_out("syscall(SYS_futex, FUTEX_WAIT)", "futex word", (void *)a[0], caller);
    return real(SYS_futex, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/*
 * syscall() is interposed for this alone: outside a watched child it passes
 * every call through.  It is defined with six fixed arguments after the
 * number, under the name "syscall", rather than as the variadic function
 * unistd.h declares: the x86-64 and AArch64 (Linux) calling conventions
 * pass variadic integer arguments exactly as fixed ones, so these are the
 * caller's, or whatever the registers and stack slots the caller did not
 * use hold, which are passed on unread, as glibc's own syscall() reads six.
 * With a va_list the pass-through cost 46 instructions a call (callgrind,
 * syscall(SYS_getppid) in a loop); the slow paths are out of line.
 */
static AO_t real_syscall;

static __attribute__((noinline, cold)) long syscall_slow(long number, long a0, long a1, long a2,
                                                         long a3, long a4, long a5,
                                                         uintptr_t caller)
{
    long (*real)(long, ...) = (long (*)(long, ...))fsafe__next_sym(&real_syscall, "syscall", NULL);
    if (AO_load(&fsafe__watch_armed) && number == SYS_futex) {
        long a[6] = {a0, a1, a2, a3, a4, a5};
        return watch_futex(real, a, caller);
    }
    return real(number, a0, a1, a2, a3, a4, a5);
}

FSAFE_EXPORT long fsafe__syscall(long number, long a0, long a1, long a2, long a3, long a4, long a5)
    __asm__("syscall");
long fsafe__syscall(long number, long a0, long a1, long a2, long a3, long a4, long a5)
{
    long (*real)(long, ...) = (long (*)(long, ...))AO_load_acquire(&real_syscall);
    if (__builtin_expect(real != NULL && !AO_load(&fsafe__watch_armed), 1))
        return real(number, a0, a1, a2, a3, a4, a5);
    return syscall_slow(number, a0, a1, a2, a3, a4, a5, (uintptr_t)__builtin_return_address(0));
}
