/* SPDX-License-Identifier: MIT */
/*
 * The top of libfsafe.so: every function of fsafe.h it exports, the private
 * entry point libfsafe-auto.so attaches through, the fork() interposer, and
 * initialisation.  Each entry point makes sure init has run, then calls the
 * layer that does the work; nothing below calls back up here (the layers:
 * src/README.md, checked by test/layers.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- initialisation --------------------------------------------------------- */
static AO_t init_state; /* 0 none, 1 running, 2 done */

void fsafe__init(void)
{
    if (AO_load_acquire(&init_state) == 2)
        return;
    if (AO_compare_and_swap_full(&init_state, 0, 1)) {
        /* Init runs in the constructor, before main: whatever fails in it
         * (a bad FSAFE_LOG_FD, a file FSAFE_LOCKS cannot open) leaves errno
         * as the program would have found it. */
        int saved = errno;
        fsafe__config_init();
        if (fsafe__cfg.verbose)
            fsafe__config_show(fsafe__churn_effective());
        fsafe__fork_setup();
        AO_store_release(&init_state, 2);
        /* After init is marked done: a lock FSAFE_LOCKS registers is one like
         * any other (and registration needs no init of its own). */
        fsafe__stats_setup();
        fsafe__locks_env_register();
        errno = saved;
        return;
    }
    struct timespec ts = {0, 100 * 1000};
    while (AO_load_acquire(&init_state) != 2)
        nanosleep(&ts, NULL);
}

/* As early as the loader allows, so that fsafe's child handler is among the
 * first registered and therefore among the first to run in the child. */
__attribute__((constructor(101))) static void fsafe_ctor(int argc, char **argv, char **envp)
{
    (void)argc, (void)argv;
    fsafe__config_set_envp(envp);
    fsafe__init();
}

/* ---- fork ------------------------------------------------------------------- */
FSAFE_FORK_PATH FSAFE_EXPORT pid_t fsafe_fork(void)
{
    fsafe__init();
    return fsafe__fork();
}

#ifdef FSAFE_INTERPOSE
FSAFE_FORK_PATH FSAFE_EXPORT pid_t fork(void)
{
    return fsafe_fork();
}
#endif

FSAFE_EXPORT int fsafe__ext_attach(const struct fsafe__ext_ops *ops,
                                   struct fsafe__ext_services *out)
{
    fsafe__init();
    return fsafe__fork_attach(ops, out);
}

/* ---- the registry ----------------------------------------------------------- */
FSAFE_EXPORT int fsafe_register_lock(void *lock, int kind, int rank, const char *name)
{
    fsafe__init();
    return fsafe__registry_add_lock(lock, kind, rank, name);
}

FSAFE_EXPORT int fsafe_register_ops(void *key, const struct fsafe_lock_ops *ops, int rank,
                                    const char *name)
{
    fsafe__init();
    return fsafe__registry_add_ops(key, ops, rank, name);
}

FSAFE_EXPORT int fsafe_unregister_lock(void *lock)
{
    fsafe__init();
    return fsafe__registry_remove(lock);
}

/* ---- settings and counters -------------------------------------------------- */
FSAFE_EXPORT int fsafe_set_churn(int count)
{
    return fsafe__churn_set(count);
}

FSAFE_EXPORT int fsafe_get_stats(struct fsafe_stats *out, size_t size)
{
    if (!out)
        return EINVAL;
    fsafe__stats_read(out, size);
    return 0;
}

FSAFE_EXPORT unsigned fsafe_version(void)
{
    return FSAFE_VERSION;
}

FSAFE_EXPORT const char *fsafe_version_string(void)
{
    return FSAFE_VERSION_STRING;
}
