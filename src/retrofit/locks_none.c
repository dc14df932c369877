/* SPDX-License-Identifier: MIT */
/*
 * FSAFE_LOCKS in a build without it (a libc other than glibc, or no libelf;
 * CMakeLists.txt chooses this file instead of locks_env.c, lockcheck.c and
 * elfsym.c): a set FSAFE_LOCKS gets one line on stderr and is otherwise
 * treated as unset.  Never aborts the host program.
 */
#include <stddef.h>

#include "internal.h"

/* Once, at init (core/api.c), like the real one. */
void fsafe__locks_env_register(void)
{
    if (fsafe__cfg.locks && fsafe__cfg.locks[0])
        fsafe__msg("FSAFE_LOCKS is not supported in this build of fsafe (it needs glibc and "
                   "libelf); ignored");
}

/* Nothing waits for a library here. */
int fsafe__locks_dl_watch(void)
{
    return 0;
}

void fsafe__locks_dl_loaded(void)
{
}

void fsafe__locks_dl_unloading(void)
{
}

void fsafe__locks_give_back(void)
{
}

/* No symbol tables here: nothing written, and the caller (auto/fork.c's
 * reports) prints the raw address. */
int fsafe__elf_describe(const void *addr, char *out, size_t size)
{
    (void)addr;
    if (size)
        out[0] = '\0';
    return 0;
}
