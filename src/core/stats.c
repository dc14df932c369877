/* SPDX-License-Identifier: MIT */
/*
 * The statistics: fsafe's counters (struct fsafe_stats, written by the
 * forker only: fork.c and churn.c count, fsafe_get_stats reads), and the
 * reports: FSAFE_STATS at exit (like MIMALLOC_SHOW_STATS) and FSAFE_WARN_THREADS
 * (at a fork, and its total at exit).  Printed only by the process whose
 * counters they are: a forked child holds a copy of its parent's counters and
 * stays silent about them (after exec, a program reads the configuration
 * afresh and reports for itself).  Reports at exit() come from a destructor;
 * at _exit()/_Exit() from the interposed functions below, which must stay
 * async-signal-safe and always end in the real _exit.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

struct fsafe_stats fsafe__stats;

void fsafe__stats_read(struct fsafe_stats *out, size_t size)
{
    struct fsafe_stats s = fsafe__stats;
    s.locks_registered = fsafe__registry_count();
    size_t n = size < sizeof s ? size : sizeof s;
    __builtin_memcpy(out, &s, n);
}

static pid_t setup_pid; /* 0: FSAFE_STATS is off */

/* FSAFE_WARN_THREADS, forker only (the fork gate is held), per process. */
static pid_t thr_pid; /* whose counts these are; another pid resets them */
static int thr_last;  /* other threads at the previous fork */
static unsigned long long thr_forks, thr_warned;
static int thr_max;

#ifdef FSAFE_INTERPOSE
static void (*real_exit)(int);
#endif

void fsafe__stats_setup(void)
{
    if (fsafe__cfg.stats)
        setup_pid = getpid();
#ifdef FSAFE_INTERPOSE
    real_exit = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
#endif
}

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/*
 * FSAFE_WARN_THREADS at a fork (wrapper path, before any lock is taken): says
 * so at the first fork made with other threads alive, then again only when
 * their number changes; the total comes at exit.
 */
void fsafe__threads_check(void)
{
    int saved = errno;
    pid_t pid = getpid();
    if (thr_pid != pid)
        thr_pid = pid, thr_last = 0, thr_forks = thr_warned = 0, thr_max = 0;
    int others = count_threads() - 1;
    thr_forks++;
    if (others > 0) {
        thr_warned++;
        if (others > thr_max)
            thr_max = others;
        if (thr_warned == 1)
            fsafe__msg("forking with %d other thread%s alive; locks not registered with fsafe "
                       "may deadlock the child (said again only when the number changes; "
                       "the total at exit)",
                       others, others == 1 ? "" : "s");
        else if (others != thr_last)
            fsafe__msg("forking with %d other thread%s alive (was %d)", others,
                       others == 1 ? "" : "s", thr_last);
    }
    if (others >= 0)
        thr_last = others;
    errno = saved;
}

/* "12.345" ms from nanoseconds, without floating point. */
#define MS_FMT "%llu.%03llu ms"
#define MS_ARGS(ns)                                                                                \
    (unsigned long long)((ns) / 1000000u), (unsigned long long)((ns) / 1000u % 1000u)

static void print_lock(const struct fsafe__entry *e, void *arg)
{
    (void)arg;
    static const char *const kinds[] = {"?", "mutex", "rwlock", "spin", "ops"};
    fsafe__msg("  lock '%s' rank %d (%s, %p): longest wait " MS_FMT, fsafe__entry_name(e), e->rank,
               kinds[e->kind <= FSAFE__KIND_OPS ? e->kind : 0], e->lock, MS_ARGS(e->max_wait_ns));
}

/* how: "" at exit(), " at _exit()".  At _exit() the per-lock list is left out:
 * it needs the registry's lock, which an async-signal-safe _exit must not take. */
static void report(const char *how)
{
    pid_t pid = getpid(); /* a syscall: a vfork child sees its own pid */
    if (thr_warned && thr_pid == pid)
        fsafe__msg("%s: %llu of %llu forks were made with other threads alive (at most %d)",
                   fsafe__prog_name(), thr_warned, thr_forks, thr_max);
    if (setup_pid == 0 || pid != setup_pid)
        return;
    struct fsafe_stats s;
    fsafe__stats_read(&s, sizeof s);
    fsafe__msg("stats for %s%s: %llu forks (%llu via pthread_atfork), %llu lock acquisitions; "
               "the wait before the real fork took " MS_FMT " in total, " MS_FMT
               " at most; %llu locks registered",
               fsafe__prog_name(), how, (unsigned long long)s.forks,
               (unsigned long long)s.forks_via_handler, (unsigned long long)s.locks_acquired,
               MS_ARGS(s.acquire_ns_total), MS_ARGS(s.acquire_ns_max),
               (unsigned long long)s.locks_registered);
    if (s.auto_wait_ns_total || s.auto_handed_over)
        fsafe__msg("  auto mode: of that wait, other threads' locks took " MS_FMT " in total, " MS_FMT
                   " at most; %llu mutexes handed over to atfork handlers",
                   MS_ARGS(s.auto_wait_ns_total), MS_ARGS(s.auto_wait_ns_max),
                   (unsigned long long)s.auto_handed_over);
    if (s.churn_spawned || s.churn_failed)
        fsafe__msg("  churn: %llu throwaway threads spawned, %llu joined, %llu failed",
                   (unsigned long long)s.churn_spawned, (unsigned long long)s.churn_reaped,
                   (unsigned long long)s.churn_failed);
    if (*how == '\0')
        fsafe__registry_foreach(print_lock, NULL);
    else if (s.locks_registered)
        fsafe__msg("  (the per-lock list is printed at exit(), not at _exit())");
}

__attribute__((destructor)) static void stats_at_exit(void)
{
    report("");
}

#ifdef FSAFE_INTERPOSE
/*
 * _exit() and _Exit() (glibc exports both, one function): report, then end
 * exactly as libc's would.  Only calls made through the dynamic symbol reach
 * here (the program's, other libraries'); libc's own internal calls (exit()
 * after the destructors, posix_spawn's and system()'s children) do not.
 * Nothing is reported unless FSAFE_STATS or FSAFE_WARN_THREADS is on, and
 * only in the process whose counters they are (a vfork child sees another
 * pid and passes straight through).
 */
static __attribute__((noreturn)) void exit_now(int status)
{
    if (setup_pid || thr_warned)
        report(" at _exit()");
    if (real_exit)
        real_exit(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

FSAFE_EXPORT void _exit(int status)
{
    exit_now(status);
}

FSAFE_EXPORT void _Exit(int status)
{
    exit_now(status);
}
#endif
