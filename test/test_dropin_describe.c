/* SPDX-License-Identifier: MIT */
/*
 * fsafe__addr_describe (src/retrofit/elfsym.c, linked from libfsafe.a): data as
 * "symbol+0xOFF (object)", code as "object+0xOFF (function+0xOFF)", from the
 * full symbol table of an executable built without -rdynamic and of a library
 * (statics included); the raw address when no object holds it; the same
 * answers from several threads at once.
 */
#define _GNU_SOURCE
#include "common.h"

#include <dlfcn.h>
#include <link.h>

#include "dropin/legacy.h"
#include "internal.h"

int app_table[16];                      /* global, not exported (no -rdynamic) */
static pthread_mutex_t app_static_lock; /* static */

static void same(const void *addr, const char *want)
{
    char got[256];
    int n = fsafe__addr_describe(addr, got, sizeof got);
    if (strcmp(got, want) != 0 || n != (int)strlen(want))
        FAIL("describe(%p) = '%s' (%d), expected '%s'", addr, got, n, want);
}

static void *many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 300; i++) {
        same(&app_table[4], "app_table+0x10 (test_dropin_describe)");
        same(legacy_static_data_address(), "legacy_static_data (liblegacy_test.so)");
    }
    return NULL;
}

int main(void)
{
    same(&app_table[4], "app_table+0x10 (test_dropin_describe)");
    same(&app_static_lock, "app_static_lock (test_dropin_describe)");
    same(legacy_static_lock_address(), "legacy_static_lock (liblegacy_test.so)");
    same((char *)legacy_static_data_address() + 12, "legacy_static_data+0xc (liblegacy_test.so)");

    /* Code: the object and its offset first, then the function. */
    Dl_info info;
    struct link_map *lm;
    void *fn = (void *)legacy_call;
    CHECK(dladdr1(fn, &info, (void **)&lm, RTLD_DL_LINKMAP) != 0);
    char want[200];
    snprintf(want, sizeof want, "liblegacy_test.so+0x%lx (legacy_call+0x5)",
             (unsigned long)((uintptr_t)fn + 5 - lm->l_addr));
    same((char *)fn + 5, want);
    snprintf(want, sizeof want, "liblegacy_test.so+0x%lx (legacy_call)",
             (unsigned long)((uintptr_t)fn - lm->l_addr));
    same(fn, want);

    /* No object: the raw address.  Small buffers: truncated, length says so. */
    int local;
    snprintf(want, sizeof want, "%p", (void *)&local);
    same(&local, want);
    char small[8];
    CHECK_EQ(fsafe__addr_describe(&app_table[4], small, sizeof small), 7);
    CHECK(strcmp(small, "app_tab") == 0);
    CHECK_EQ(fsafe__addr_describe(NULL, small, sizeof small), 0);
    CHECK_EQ(fsafe__addr_describe(&local, small, 0), 0);

    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, many, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    puts("describe ok");
    return 0;
}
