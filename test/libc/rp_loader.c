/* SPDX-License-Identifier: MIT */
/* A library that loads its plugin by bare name: only its own RUNPATH holds the
 * plugin's directory (test_libc_locks runpath). */
#include <dlfcn.h>
#include <stddef.h>

__attribute__((visibility("default"))) int rp_load(void)
{
    return dlopen("libfsafe_rp_plugin.so", RTLD_NOW) != NULL;
}
