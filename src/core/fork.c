/* SPDX-License-Identifier: MIT */
/*
 * The fork() wrapper and fsafe's pthread_atfork handlers.
 *
 * The path is a short straight line: enter the fork gate, the prelude (flush,
 * churn), take every registered lock in rank order, block signals, real fork,
 * release in the parent / reset in the child (from the atfork handlers, so
 * that other libraries' handlers already see usable locks), restore the signal
 * mask and errno.  The child half runs in the child of a multithreaded
 * process: async-signal-safe calls only.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static pid_t (*real_fork)(void);

/*
 * The fork gate: the thread running fsafe's fork protocol, or 0.  Forks from
 * different threads take turns; a fork on the thread that owns the gate (from
 * a signal handler that interrupted the protocol) passes straight to libc.
 * Registering threads never touch the gate.
 */
static AO_t gate;
/* Set by the gate owner while its locks are held across the real fork; the
 * parent/child handler that finds it set does the release. */
static int armed;
static int via_handler;
/* Handler path (daemon(), forkpty()): the signal mask to restore once the
 * real fork has returned. */
static sigset_t handler_oldmask;
/* Threads waiting to enter the gate: a forker stuck on a lock backs off for
 * them, since one of them may be the lock's holder (see protocol_walk). */
static AO_t gate_waiters;
/* Gate owner only: forks in progress that passed straight to libc because they
 * were made on the gate owner's thread while its protocol ran (a signal handler,
 * another library's atfork handler).  fsafe's handlers leave the outer
 * protocol's locks alone for those: they belong to the outer fork. */
static int nested;

static void gate_enter(void)
{
    AO_t self = fsafe__self_id();
    if (AO_compare_and_swap_full(&gate, 0, self))
        return;
    AO_fetch_and_add_full(&gate_waiters, 1);
    struct timespec ts = {0, 50 * 1000};
    while (!AO_compare_and_swap_full(&gate, 0, self))
        nanosleep(&ts, NULL);
    AO_fetch_and_add_full(&gate_waiters, (AO_t)-1);
}

int fsafe__gate_contended(void)
{
    return AO_load_acquire(&gate_waiters) != 0;
}

static void gate_exit(void)
{
    AO_store_release(&gate, 0);
}

FSAFE_FORK_PATH int fsafe__in_fork_self(void)
{
    return AO_load_acquire(&gate) == fsafe__self_id();
}

/* The auto library's hooks (libfsafe-auto.so), or NULL; set once, before
 * main, by its constructor. */
static const struct fsafe__ext_ops *ext;

/* Work worth doing before a fork: is anything registered or configured?
 * Registered locks alone need none while the process has one thread and
 * every one of them is a free mutex (fsafe__walk_unneeded): then the fork
 * costs what it costs with nothing registered, but is counted. */
FSAFE_FORK_PATH static int protocol_needed(void)
{
    if (fsafe__churn_effective() != 0 || fsafe__cfg.flush || fsafe__cfg.warn_threads ||
        fsafe__cfg.verbose || fsafe__cfg.stats || ext)
        return 1;
    return fsafe__registry_count() != 0 && !fsafe__walk_unneeded();
}

int fsafe__fork_attach(const struct fsafe__ext_ops *ops, struct fsafe__ext_services *out)
{
    if (!ops || ops->abi != FSAFE__EXT_ABI || ext)
        return -1;
    if (!real_fork)
        real_fork = ops->real_fork;
    out->cfg = &fsafe__cfg;
    out->vmsg = fsafe__vmsg;
    out->reset_unlocked = fsafe__lock_reset_unlocked;
    out->mem_shared = fsafe__lock_mem_shared;
    out->now_ns = fsafe__now_ns;
    out->gate_contended = fsafe__gate_contended;
    out->describe = fsafe__elf_describe;
    out->walk_handover = fsafe__walk_handover;
    out->walk_give_back_libc = fsafe__locks_give_back;
    out->dl_watch = fsafe__locks_dl_watch;
    out->dl_loaded = fsafe__locks_dl_loaded;
    out->dl_unloading = fsafe__locks_dl_unloading;
    fsafe__cfg.auto_attached = 1; /* (FSAFE_LOCKS' lll entries rely on its gates) */
    ext = ops;
    return 0;
}

/* FSAFE_AUTO=1 asks for what only libfsafe-auto.so does: say so once. */
static void check_auto_loaded(void)
{
    static int said;
    if (fsafe__cfg.auto_mode == 1 && !ext && !said) {
        said = 1;
#ifdef __GLIBC__
        fsafe__msg("FSAFE_AUTO=1, but libfsafe-auto.so is not loaded: only registered locks are "
                   "taken at fork (preload libfsafe-auto.so, or use fsafe-run)");
#else
        fsafe__msg("FSAFE_AUTO=1, but auto mode is glibc-only and not part of this build: only "
                   "registered locks are taken at fork");
#endif
    }
}

/* Before any registered lock is taken, on the gate owner's thread (wrapper
 * path only: on the handler path other libraries' prepare handlers may already
 * hold their locks, and fflush or pthread_create could wait on them). */
static void protocol_prelude(void)
{
    /* fflush takes stdio locks, and a thread holding one may be waiting for a
     * registered lock: flush first. */
    if (fsafe__cfg.flush)
        fflush(NULL);
    if (fsafe__cfg.warn_threads)
        fsafe__threads_check();
    fsafe__churn_before_fork();
}

/*
 * Takes every registered lock, on the gate owner's thread.  A walk stuck on a
 * lock while another thread waits at the gate gives everything back and lets
 * that thread fork first: the waiter may be the holder of the lock (a thread
 * that forks while holding a registered lock), and without the back-off both
 * forks would wait for each other forever.
 */
static void protocol_walk(int from_handler, uint64_t t0)
{
    via_handler = from_handler;
    long taken = 0;
    uint64_t auto_ns = 0;
    int auto_busy = 0;
    /* Auto mode first: once no other thread holds a tracked lock (and every
     * pthread lock is tracked), the registered walk finds them free.  Either
     * step may give up for a thread waiting at the gate (it may hold what the
     * step waits for); the auto step is then undone too. */
    for (unsigned backoff = 1;; backoff++) {
        if (!ext || ext->prefork() == 0) {
            if (ext) {
                auto_ns += ext->waited_ns();
                auto_busy = ext->busy_seen();
            }
            if ((taken = fsafe__walk_prefork(fsafe__gate_contended)) >= 0)
                break;
            if (ext)
                ext->prefork_abort();
        }
        gate_exit();
        struct timespec ts = {0, (long)(1 + (backoff * 7919 + (unsigned)getpid()) % 4) * 1000000L};
        nanosleep(&ts, NULL);
        gate_enter();
    }
    uint64_t dt = fsafe__now_ns() - t0;
    fsafe__stats.forks++;
    fsafe__stats.locks_acquired += (uint64_t)taken;
    fsafe__stats.forks_via_handler += (uint64_t)from_handler;
    fsafe__stats.acquire_ns_total += dt;
    if (dt > fsafe__stats.acquire_ns_max)
        fsafe__stats.acquire_ns_max = dt;
    fsafe__stats.auto_wait_ns_total += auto_ns;
    if (auto_ns > fsafe__stats.auto_wait_ns_max)
        fsafe__stats.auto_wait_ns_max = auto_ns;
    if (fsafe__cfg.verbose) {
        /* Auto mode's part first: without it, "took 0 of 0" reads like all
         * that was done (issue 24). */
        char autopart[128] = "";
        if (ext && fsafe__cfg.auto_mode != 0) {
            if (auto_busy)
                snprintf(autopart, sizeof autopart,
                         "auto mode waited %llu us for other threads (listed below); ",
                         (unsigned long long)(auto_ns / 1000));
            else
                snprintf(autopart, sizeof autopart,
                         "auto mode found no other thread in a tracked lock or libc call; ");
        }
        fsafe__msg("fork #%llu in pid %d%s: %stook %llu of %llu registered locks in %llu us%s",
                   (unsigned long long)fsafe__stats.forks, (int)getpid(),
                   from_handler ? " (via pthread_atfork)" : "", autopart, (unsigned long long)taken,
                   (unsigned long long)fsafe__registry_count(), (unsigned long long)(dt / 1000),
                   fsafe__walk_was_light() && fsafe__registry_count()
                       ? " (one thread: free locks left alone)"
                       : "");
    }
}

/* Blocks every signal, then arms the release: from here to the handlers no
 * signal handler can run on this thread, so a handler that forks can never
 * be mistaken for the fork the locks were taken for. */
static void arm(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, old);
    armed = 1;
}

/* ---- pthread_atfork handlers ------------------------------------------------ */
/* A fork that needs no protocol (protocol_needed) but has locks registered is
 * counted all the same, before it (no page of ours is written after it): by
 * the wrapper, or here when it bypassed the wrapper. */
static __thread int wrapper_counted;

/* The release after the real fork, once per armed fork: from fsafe's atfork
 * handlers, or from the wrapper when the real fork ran none. */
FSAFE_FORK_PATH static void release_parent(void)
{
    armed = 0;
    fsafe__walk_postfork_parent();
    if (ext) {
        fsafe__stats.auto_handed_over += (uint64_t)ext->handed_over();
        ext->postfork_parent();
    }
}

FSAFE_FORK_PATH static void release_child(void)
{
    armed = 0;
    fsafe__walk_postfork_child();
    fsafe__walk_postfork_child_fixup();
    if (ext)
        ext->postfork_child();
}

FSAFE_FORK_PATH static void atfork_prefork(void)
{
    if (fsafe__in_fork_self())
        return; /* our own wrapper already walked, or a nested fork: pass */
    if (!protocol_needed()) {
        if (!wrapper_counted && fsafe__registry_count() != 0) {
            fsafe__stats.forks++;
            fsafe__stats.forks_via_handler++;
        }
        return;
    }
    /* A fork that bypassed the wrapper: daemon(), forkpty(). */
    uint64_t t0 = fsafe__now_ns();
    gate_enter();
    protocol_walk(1, t0);
    arm(&handler_oldmask);
}

FSAFE_FORK_PATH static void atfork_postfork_parent(void)
{
    if (!armed || nested || !fsafe__in_fork_self())
        return;
    release_parent();
    if (via_handler) {
        gate_exit();
        pthread_sigmask(SIG_SETMASK, &handler_oldmask, NULL);
    }
}

FSAFE_FORK_PATH static void atfork_postfork_child(void)
{
    if (armed && !nested && fsafe__in_fork_self()) {
        release_child();
        if (via_handler) {
            gate_exit();
            pthread_sigmask(SIG_SETMASK, &handler_oldmask, NULL);
        }
        return;
    }
    if (fsafe__in_fork_self())
        return; /* a nested fork inside our own protocol: it passes straight through */
    if (AO_load_acquire(&gate) != 0) {
        /* A fork that did not wait at the gate (nothing to do for it) while
         * another thread was inside the protocol.  That thread does not exist
         * here: free its gate and reset what it had taken. */
        armed = 0;
        fsafe__walk_postfork_child_orphaned();
        AO_store_release(&gate, 0);
        if (ext)
            ext->postfork_child();
    }
    fsafe__walk_postfork_child_fixup();
}

/* ---- set-up, at init --------------------------------------------------------- */
void fsafe__fork_setup(void)
{
#ifdef FSAFE_INTERPOSE
    /* Preloaded or linked, libfsafe.so comes before libc, and so does
     * libfsafe-auto.so preloaded.  A copy that comes after libc (dlopened)
     * gets libc's fork() from auto mode when it attaches, if not from here
     * (no dlopen here: a constructor of an initfirst library runs before
     * libc is set up). */
    real_fork = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
#else
    real_fork = fork;
#endif
    int r = pthread_atfork(atfork_prefork, atfork_postfork_parent, atfork_postfork_child);
    if (r != 0)
        fsafe__msg("pthread_atfork failed (error %d): daemon() and forkpty() are not covered", r);
}

/* ---- the wrapper ---------------------------------------------------------- */
FSAFE_FORK_PATH pid_t fsafe__fork(void)
{
    if (!real_fork) {
        static int said;
        if (!said) {
            said = 1;
            fsafe__msg("cannot find the real fork() (dlsym(RTLD_NEXT, \"fork\") failed); "
                       "fork() fails with ENOSYS");
        }
        errno = ENOSYS;
        return -1;
    }
    if (fsafe__in_fork_self()) {
        nested++;
        pid_t pid = real_fork();
        int saved = errno;
        nested--;
        errno = saved;
        return pid;
    }
    if (__builtin_expect(fsafe__cfg.auto_mode == 1 && !ext, 0))
        check_auto_loaded();
    if (!protocol_needed()) {
        if (fsafe__registry_count() == 0)
            return real_fork();
        fsafe__stats.forks++;
        wrapper_counted = 1;
        pid_t pid = real_fork();
        int saved = errno;
        wrapper_counted = 0;
        errno = saved;
        return pid;
    }

    uint64_t t0 = fsafe__now_ns();
    gate_enter();
    protocol_prelude();
    protocol_walk(0, t0);
    sigset_t old;
    arm(&old);
    /* errno through its address, taken before the fork: the child then
     * calls no __errno_location, whose libc text page it would have to fault
     * in (a child maps no file page until it touches it; one fault fewer per
     * fork, counted with the kernel's page_fault_user event,
     * test/bench/README.md).  Written back only if it changed. */
    int *errp = &errno;
    pid_t pid = real_fork();
    int saved = *errp;
    if (armed) {
        /* The real fork ran no atfork handlers (a libc that skips them on
         * failure): release here, exactly once. */
        if (pid == 0)
            release_child();
        else
            release_parent();
    }
    gate_exit();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (*errp != saved)
        *errp = saved;
    return pid;
}
