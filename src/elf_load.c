/* SPDX-License-Identifier: MIT */
/*
 * libfsafe.so's side of the symbol-table reader, which lives in a library of
 * its own, libfsafe-elf.so (src/elfsym.c with libelf).  libfsafe.so does not
 * link libelf: every library a process maps costs each of its forks the
 * copying and tearing down of the library's mappings, about 2.4 us a library
 * on the benchmark machine, and libelf brings libz (test/bench/README.md).
 * Only FSAFE_LOCKS and auto mode's reports read symbol tables.
 *
 * libfsafe-elf.so attaches itself from its constructor (fsafe__elf_attach):
 * when it is preloaded too (fsafe-run does that when FSAFE_LOCKS is set) or
 * loaded as a dependency (libfsafe-auto.so has it as one), that is before
 * main.  Otherwise the first lookup loads it, from libfsafe.so's own
 * directory, with dlopen; but never from libfsafe's constructor, which runs
 * before libc's (-z initfirst): a dlopen there would start libc with no
 * environment (src/locks_env.c).  FSAFE_LOCKS waits for it then, until the
 * first fork, dlopen or call of fsafe's API (fsafe__locks_env_resume).  The static library has the reader built in.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static AO_t attached; /* const struct fsafe__elf_ops * */
static AO_t load_tried;

FSAFE_EXPORT void fsafe__elf_attach(const struct fsafe__elf_ops *ops)
{
    if (!ops || ops->abi != FSAFE__ELF_ABI || AO_load_acquire(&attached))
        return;
    AO_store_release(&attached, (AO_t)ops);
    fsafe__locks_env_resume();
}

/* Loads libfsafe-elf.so from the directory libfsafe.so was loaded from, else
 * by its name (the loader's search path). */
static void load(void)
{
    void *(*real_dlopen)(const char *, int) =
        (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    if (!real_dlopen)
        return;
    Dl_info di;
    char path[4096];
    void *h = NULL;
    if (dladdr((void *)load, &di) && di.dli_fname && strrchr(di.dli_fname, '/')) {
        int dir = (int)(strrchr(di.dli_fname, '/') - di.dli_fname);
        int n = snprintf(path, sizeof path, "%.*s/%s", dir, di.dli_fname, FSAFE__ELF_SONAME);
        if (n > 0 && (size_t)n < sizeof path)
            h = real_dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
    if (!h)
        h = real_dlopen(FSAFE__ELF_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h || !AO_load_acquire(&attached))
        fsafe__msg("cannot load %s (%s): FSAFE_LOCKS finds no symbols, and reports name "
                   "no symbols",
                   FSAFE__ELF_SONAME, h ? "it did not attach" : dlerror());
}

/* The reader, loading it if allowed and not tried yet; NULL if there is none. */
static const struct fsafe__elf_ops *ops_get(int may_load)
{
    const struct fsafe__elf_ops *o = (const struct fsafe__elf_ops *)AO_load_acquire(&attached);
    if (o || !may_load || fsafe__in_initfirst() ||
        !AO_compare_and_swap_full(&load_tried, 0, 1))
        return o;
    load();
    return (const struct fsafe__elf_ops *)AO_load_acquire(&attached);
}

int fsafe__elf_available(void)
{
    return ops_get(1) != NULL;
}

int fsafe__elf_find(const char *path, uintptr_t base, const char *name, struct fsafe__elf_def *out)
{
    const struct fsafe__elf_ops *o = ops_get(1);
    if (!o) {
        memset(out, 0, sizeof *out);
        return FSAFE__ELF_UNREADABLE;
    }
    return o->find(path, base, name, out);
}

/* Reports come from the fork path's parent side: never loads the reader
 * there; without it, the object and offset. */
int fsafe__addr_describe(const void *addr, char *out, size_t size)
{
    const struct fsafe__elf_ops *o = ops_get(0);
    if (o)
        return o->describe(addr, out, size);
    if (!out || size == 0)
        return 0;
    out[0] = '\0';
    Dl_info info;
    struct link_map *lm = NULL;
    int n;
    if (addr && dladdr1(addr, &info, (void **)&lm, RTLD_DL_LINKMAP) && lm) {
        const char *file = lm->l_name && lm->l_name[0] ? lm->l_name : program_invocation_name;
        const char *base = strrchr(file, '/');
        n = snprintf(out, size, "%s+0x%lx", base ? base + 1 : file,
                     (unsigned long)((uintptr_t)addr - lm->l_addr));
    } else {
        n = snprintf(out, size, "%p", addr);
    }
    return n < 0 ? 0 : (size_t)n < size ? n : (int)size - 1;
}

void fsafe__elf_atfork_child(void)
{
    const struct fsafe__elf_ops *o = (const struct fsafe__elf_ops *)AO_load_acquire(&attached);
    if (o)
        o->atfork_child();
}
