/* SPDX-License-Identifier: MIT */
/*
 * Throwaway threads: spawned and joined before the real fork so that no stale
 * thread/LWP id survives into the child (NetBSD 5.0; see README).
 * Runs before any registered lock is taken, never in the child.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>

#include "internal.h"

static AO_t churn_override = (AO_t)-2; /* -2: not set, use FSAFE_CHURN */

FSAFE_EXPORT int fsafe_set_churn(int count)
{
    if (count < FSAFE_CHURN_AUTO || count > 1024)
        return EINVAL;
    AO_store_release(&churn_override, (AO_t)(long)count);
    return 0;
}

int fsafe__churn_effective(void)
{
    long v = (long)AO_load_acquire(&churn_override);
    if (v == -2)
        v = fsafe__cfg.churn;
    if (v == FSAFE_CHURN_AUTO) {
#if defined(__NetBSD__)
        v = 4;
#else
        v = 0; /* Linux gives the child a fresh task; churn would only cost time */
#endif
    }
    return (int)v;
}

static void *throwaway(void *arg)
{
    return arg;
}

void fsafe__churn_before_fork(void)
{
    int n = fsafe__churn_effective();
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, throwaway, NULL) != 0) {
            fsafe__stats.churn_failed++;
            continue;
        }
        fsafe__stats.churn_spawned++;
        if (pthread_join(t, NULL) == 0)
            fsafe__stats.churn_reaped++;
    }
}
