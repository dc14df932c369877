/* SPDX-License-Identifier: MIT */
/*
 * Linked with libfsafe and the legacy library (LD_PRELOAD is ignored in secure
 * execution, linking is not).  Prints whether the kernel marked this process
 * for secure execution, whether FSAFE_LOCKS reached the environment, and how
 * many locks fsafe registered from it; then forks once.
 */
#include "common.h"

#include <sys/auxv.h>

#include "dropin/legacy.h"
#include "fsafe.h"

int main(void)
{
    struct fsafe_stats s;
    CHECK(fsafe_get_stats(&s, sizeof s) == 0);
    printf("at_secure=%lu env=%s registered=%llu\n", getauxval(AT_SECURE),
           getenv("FSAFE_LOCKS") ? "set" : "unset", (unsigned long long)s.locks_registered);
    fflush(stdout);
    (void)legacy_call();
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    CHECK(pid > 0);
    CHECK_EQ(t_wait(pid, 10000), 0);
    return 0;
}
