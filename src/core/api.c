/* SPDX-License-Identifier: MIT */
/*
 * The top of the core: every function of fsafe.h it exports, the private
 * entry points auto mode attaches through, which copy of the core acts, and
 * initialisation (libfsafe.so's interposed libc functions are
 * core/interpose.c).  Each entry point makes sure init has run, then calls
 * the layer that does the work; nothing below calls back up here (the
 * layers: src/README.md, checked by test/layers.sh).
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

/*
 * One active copy.  libfsafe-auto.so has this core built in, so a process
 * can map it twice: a program linked with libfsafe.so run under fsafe-run,
 * or LD_PRELOAD naming both libraries.  The program's calls (fork,
 * fsafe_register_lock, ...) reach the copy whose symbols come first in the
 * loader's lookup order: that copy is the active one.  The other stays
 * dormant, with no settings read, no pthread_atfork handlers and no
 * FSAFE_LOCKS, so that no lock is taken twice at fork.  The loader binds
 * first_attach and first_init (relocations against the exported symbols)
 * before any constructor runs; attach_here is this copy's own.  A library
 * bound to the dormant copy's symbols directly (RTLD_DEEPBIND) would
 * register its locks where no fork looks: not supported.
 */
FSAFE_EXPORT int fsafe__ext_attach(const struct fsafe__ext_ops *ops,
                                   struct fsafe__ext_services *out);
extern __typeof__(fsafe__ext_attach) attach_here
    __attribute__((alias("fsafe__ext_attach"), visibility("hidden")));
static int (*const volatile first_attach)(const struct fsafe__ext_ops *,
                                          struct fsafe__ext_services *) = fsafe__ext_attach;
static void (*const volatile first_init)(char **envp) = fsafe__ext_init;

int fsafe__copy_dormant(void)
{
    return first_attach != attach_here;
}

FSAFE_EXPORT void fsafe__ext_init(char **envp)
{
    fsafe__config_set_envp(envp);
    fsafe__init();
}

/* As early as the loader allows, so that fsafe's child handler is among the
 * first registered and therefore among the first to run in the child.  A
 * dormant copy's constructor may be the one the loader runs first (both
 * libraries are linked -z initfirst, and glibc honours one): it starts the
 * active copy's init now, with the environment (before libc's constructor
 * has run, environ may not be set). */
__attribute__((constructor(101))) static void fsafe_ctor(int argc, char **argv, char **envp)
{
    (void)argc, (void)argv;
    first_init(envp);
}

/* ---- fork ------------------------------------------------------------------- */
FSAFE_FORK_PATH FSAFE_EXPORT pid_t fsafe_fork(void)
{
    fsafe__init();
    return fsafe__fork();
}

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
