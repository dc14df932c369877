/* SPDX-License-Identifier: MIT */
/*
 * FSAFE_STATS: a report at exit (a destructor), like MIMALLOC_SHOW_STATS.
 * Printed only by the process that read the configuration: a forked child that
 * calls exit() holds a copy of its parent's counters and stays silent (after
 * exec, a program reads the configuration afresh and reports for itself).
 */
#define _GNU_SOURCE
#include <unistd.h>

#include "internal.h"

static pid_t setup_pid; /* 0: FSAFE_STATS is off */

void fsafe__stats_setup(void)
{
    if (fsafe__cfg.stats)
        setup_pid = getpid();
}

/* "12.345" ms from nanoseconds, without floating point. */
#define MS_FMT "%llu.%03llu ms"
#define MS_ARGS(ns)                                                                                \
    (unsigned long long)((ns) / 1000000u), (unsigned long long)((ns) / 1000u % 1000u)

static void print_lock(const struct fsafe__entry *e, void *arg)
{
    (void)arg;
    static const char *const kinds[] = {"?", "mutex", "rwlock", "spin", "ops"};
    fsafe__msg("  lock '%s' rank %d (%s, %p): longest wait " MS_FMT, e->name, e->rank,
               kinds[e->kind <= FSAFE__KIND_OPS ? e->kind : 0], e->lock, MS_ARGS(e->max_wait_ns));
}

__attribute__((destructor)) static void stats_at_exit(void)
{
    if (setup_pid == 0 || getpid() != setup_pid)
        return;
    struct fsafe_stats s;
    fsafe_get_stats(&s, sizeof s);
    fsafe__msg("stats for pid %d: %llu forks (%llu via pthread_atfork), %llu lock acquisitions; "
               "acquiring locks took " MS_FMT " in total, " MS_FMT " at most; %llu locks registered",
               (int)setup_pid, (unsigned long long)s.forks, (unsigned long long)s.forks_via_handler,
               (unsigned long long)s.locks_acquired, MS_ARGS(s.acquire_ns_total),
               MS_ARGS(s.acquire_ns_max), (unsigned long long)s.locks_registered);
    if (s.churn_spawned || s.churn_failed)
        fsafe__msg("  churn: %llu throwaway threads spawned, %llu joined, %llu failed",
                   (unsigned long long)s.churn_spawned, (unsigned long long)s.churn_reaped,
                   (unsigned long long)s.churn_failed);
    fsafe__registry_foreach(print_lock, NULL);
}
