/* SPDX-License-Identifier: MIT */
/* A library whose constructor forks when FSAFE_TEST_CTOR_FORK is set, the way
 * some libraries spawn a helper process at load time (test_libc_locks
 * ctor_fork).  The child returns from the constructor, and so from dlopen. */
#include <stdlib.h>
#include <unistd.h>

__attribute__((visibility("default"))) pid_t fsafe_test_ctor_pid;

__attribute__((constructor)) static void ctor(void)
{
    if (getenv("FSAFE_TEST_CTOR_FORK"))
        fsafe_test_ctor_pid = fork();
}
