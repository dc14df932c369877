/* SPDX-License-Identifier: MIT */
/*
 * FSAFE_LOCKS=plugin_lock@libfsafe_plugin_test.so for a plugin loaded and
 * unloaded at run time (run under fsafe-run; the program does not link fsafe
 * and asks it through dlsym).  The lock is registered at dlopen, unregistered
 * before dlclose unmaps it (a fork afterwards must not touch the unmapped
 * lock), registered again at the next dlopen, and kept while a second handle
 * keeps the plugin loaded.
 *   test_dropin_dlclose PLUGIN_PATH [none]
 * none: FSAFE_LOCKS is set but ignored (libfsafe.so without its symbol
 * reader, libfsafe-elf.so): nothing is registered at dlopen, forks work.
 */
#define _GNU_SOURCE
#include "common.h"

#include <dlfcn.h>

#include "fsafe.h"

static int (*get_stats)(struct fsafe_stats *, size_t);

static unsigned long long registered(void)
{
    struct fsafe_stats s;
    memset(&s, 0, sizeof s);
    CHECK_EQ(get_stats(&s, sizeof s), 0);
    return (unsigned long long)s.locks_registered;
}

static void fork_ok(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    CHECK_EQ(t_wait(pid, 4000), 0);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        FAIL("usage: %s PLUGIN_PATH", argv[0]);
    get_stats = (int (*)(struct fsafe_stats *, size_t))dlsym(RTLD_DEFAULT, "fsafe_get_stats");
    if (!get_stats)
        FAIL("run under fsafe-run: fsafe_get_stats not found");
    CHECK_EQ(registered(), 0);
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h)
        FAIL("dlopen: %s", dlerror());
    if (argc > 2 && strcmp(argv[2], "none") == 0) {
        CHECK_EQ(registered(), 0);
        fork_ok();
        CHECK_EQ(dlclose(h), 0);
        CHECK_EQ(registered(), 0);
        fork_ok();
        puts("nothing registered at dlopen or dlclose");
        return 0;
    }
    CHECK_EQ(registered(), 1);
    fork_ok();
    CHECK_EQ(dlclose(h), 0);
    CHECK_EQ(registered(), 0); /* unloaded: unregistered first */
    fork_ok();                 /* and no fork touches the unmapped lock */
    h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    CHECK_EQ(registered(), 1); /* loaded again: registered again */
    void *h2 = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    CHECK(h2 == h);
    CHECK_EQ(dlclose(h2), 0);
    CHECK_EQ(registered(), 1); /* still loaded through h */
    fork_ok();
    /* A failing dlopen leaves dlerror's message and no registration. */
    CHECK(dlopen("libfsafe-no-such-plugin.so", RTLD_NOW) == NULL);
    const char *e = dlerror();
    CHECK(e != NULL && strstr(e, "libfsafe-no-such-plugin.so") != NULL);
    CHECK_EQ(dlclose(h), 0);
    CHECK_EQ(registered(), 0);
    int *chain = dlsym(RTLD_DEFAULT, "chain_calls"); /* later.chained's other hooks */
    if (chain)
        printf("chained dlopen/dlclose calls: %d\n", *chain);
    puts("plugin lock registered at dlopen and unregistered at dlclose");
    return 0;
}
