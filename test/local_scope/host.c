/* SPDX-License-Identifier: MIT */
/*
 * A C program that loads a plugin with dlopen(RTLD_LOCAL), as CPython loads
 * every extension module: the plugin and the libraries it brings (libstdc++,
 * GLib, abseil, libgomp) are outside the global scope, where
 * dlsym(RTLD_NEXT) looks.  Their calls of functions that libfsafe-auto.so
 * interposes still reach libfsafe-auto.so, which must forward them to the
 * definition in the plugin's scope (src/auto/svc.c).
 *
 *   test_local_scope PLUGIN.so busy|quiet
 * busy: the plugin's threads take its lock in a loop (plugin_start); quiet:
 * no threads.  Then the plugin's check runs in this process and in each of
 * FORKS children (each bounded by the plugin: it takes the lock within 1 s
 * or fails; a child still running after 5 s is killed and ends the loop), the plugin is stopped and closed, and the check line is
 * printed.  Exit 0 when every child and the parent passed, 1 otherwise.
 * Before anything runs, the premise is checked: neither the plugin nor
 * plugin_probe (a symbol of the library it brings) is in the global scope.
 */
#include "../common.h"

#include <dlfcn.h>

#define FORKS 10
#define CHILD_MS 5000

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 3 || (strcmp(argv[2], "busy") != 0 && strcmp(argv[2], "quiet") != 0)) {
        fprintf(stderr, "usage: %s PLUGIN.so busy|quiet\n", argv[0]);
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h)
        FAIL("dlopen(%s): %s", argv[1], dlerror());
    const char *probe = dlsym(h, "plugin_probe");
    int (*start)(void) = (int (*)(void))dlsym(h, "plugin_start");
    int (*check)(void) = (int (*)(void))dlsym(h, "plugin_check");
    void (*stop)(void) = (void (*)(void))dlsym(h, "plugin_stop");
    CHECK(probe && start && check && stop);
    CHECK(dlsym(RTLD_DEFAULT, "plugin_check") == NULL);
    CHECK(dlsym(RTLD_DEFAULT, probe) == NULL);

    if (strcmp(argv[2], "busy") == 0)
        CHECK_EQ(start(), 0);
    int bad = check() != 0;
    int passed = 0;
    for (int i = 0; i < FORKS; i++) {
        pid_t pid = fork();
        if (pid < 0)
            FAIL("fork: %s", strerror(errno));
        if (pid == 0)
            _exit(check() == 0 ? 0 : 1);
        int st = t_wait(pid, CHILD_MS);
        passed += st == 0;
        if (st == T_TIMEOUT)
            break; /* one hung child is enough: the others would wait as long */
    }
    stop();
    CHECK_EQ(dlclose(h), 0);
    printf("%s: parent %s, %d/%d children passed\n", argv[2], bad ? "failed" : "passed", passed,
           FORKS);
    return bad || passed != FORKS;
}
