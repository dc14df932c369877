/* SPDX-License-Identifier: MIT */
/*
 * libfsafe.so's way to the ELF symbol reader (elfsym.c, the only code that
 * calls libelf).  libfsafe.so does not link libelf: every process started
 * under fsafe-run would map libelf and libz for nothing (issue 26: about
 * 30,000 instructions of every exec).  The reader is libfsafe-elf.so, loaded
 * with libfsafe.so where FSAFE_LOCKS is set (fsafe-run preloads it then), and
 * by a report that names addresses, here, once.  In libfsafe.a
 * (FSAFE_ELF_BUILTIN) the reader is built in and the table points at it.
 * Nothing here runs on the fork path or in a child.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#ifndef FSAFE_ELF_BUILTIN
/*
 * Weak references: the loader binds them, at load time and before any
 * constructor, when libfsafe-elf.so is in the global scope (preloaded before
 * or after libfsafe.so, or linked by the program), and leaves them NULL when
 * it is not.  So the table is filled before libfsafe.so's initfirst
 * constructor (whose FSAFE_LOCKS resolution reads it) and any entry point
 * called before that constructor, and it is read-only after relocation
 * (RELRO).  Loaded later, libfsafe-elf.so does not fill it: FSAFE_LOCKS is
 * resolved before main or not at all (the reverted split of a6e8c9c deferred
 * it to the first fork, dlopen or API call, which ran on fork paths).
 */
#pragma weak fsafe__elf_find
#pragma weak fsafe__elf_names_any
#pragma weak fsafe__addr_describe
#pragma weak fsafe__elf_postfork_child
#endif

const struct fsafe__elf_reader fsafe__elf = {
    fsafe__elf_find,
    fsafe__elf_names_any,
    fsafe__addr_describe,
    fsafe__elf_postfork_child,
};

#ifndef FSAFE_ELF_BUILTIN
/* The reader's describe, loaded for a report (NULL if that failed). */
static int (*loaded_describe)(const void *, char *, size_t);
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

/*
 * Loads libfsafe-elf.so from its own library's directory (dladdr), local to
 * itself: nothing else in the process sees its names, and fsafe__elf stays as
 * the loader left it.  Safe where it runs, the parent after a fork, inside
 * libfsafe.so's atfork parent handler (auto mode's report): other threads run
 * again; glibc has released malloc's locks before its parent handlers;
 * auto mode has released the loader lock (dl_load_lock) it took for the fork
 * before it reports; and glibc holds its own atfork lock across the parent
 * handlers, which a library whose constructor calls pthread_atfork would wait
 * for forever, but neither libfsafe-elf.so, libelf nor libz registers
 * anything at load (they import no pthread_atfork; their constructors are the
 * compiler's frame_dummy).  The report runs with every signal blocked (from
 * before the real fork until the handlers are done), so no handler on this
 * thread can interrupt the load.  A fork made from a signal handler reports
 * there too; as the reader's own look-ups always did (dladdr, malloc), the
 * load then relies on what glibc's fork of a multithreaded process already
 * needed: the interrupted code held no malloc lock (fork takes them all).
 * With the reader preloaded (FSAFE_LOCKS) nothing is loaded here.  Never
 * closed.  A failure says nothing: the report falls back to exported names.
 * The loaded reader's cache mutex needs no child handler: only describe
 * takes it, on the forking thread inside fsafe's fork gate, and with auto
 * mode attached every fork waits at that gate.
 */
static void load_reader(void)
{
    static const char soname[] = FSAFE__ELF_SONAME;
    Dl_info self;
    char path[4096];
    /* Not under LeakSanitizer (ASan's or its own runtime): gcc 12's crashes
     * at exit ("Tracer caught signal 11", and the program's exit status 1)
     * scanning the dynamic TLS of a library loaded this late (libelf keeps
     * its error code in a __thread variable); measured with auto.paused_thread
     * under -fsanitize=address.  The report then names exported symbols;
     * with libfsafe-elf.so preloaded it names every symbol. */
    if (dlsym(RTLD_DEFAULT, "__lsan_do_leak_check"))
        return;
    if (!dladdr((const void *)&fsafe__elf_describe, &self) || !self.dli_fname)
        return;
    const char *slash = strrchr(self.dli_fname, '/');
    size_t dir = slash ? (size_t)(slash - self.dli_fname) + 1 : 0;
    if (dir + sizeof soname > sizeof path)
        return;
    memcpy(path, self.dli_fname, dir);
    memcpy(path + dir, soname, sizeof soname);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h)
        loaded_describe = (int (*)(const void *, char *, size_t))dlsym(h, "fsafe__addr_describe");
}

/* Without the reader: what dladdr knows (exported names only), in the
 * reader's format: "sym+0x8 (file)" for data, "file+0x11a9 (sym+0x12)" for
 * code, "file+0x11a9" without a name; 0 when no object holds addr. */
static int exported_name(const void *addr, char *out, size_t size)
{
    Dl_info info;
    struct link_map *lm = NULL;
    const ElfW(Sym) *sym = NULL;
    if (!dladdr1(addr, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm)
        return 0;
    dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT);
    const char *path = info.dli_fname ? info.dli_fname : "";
    const char *file = strrchr(path, '/');
    file = file ? file + 1 : path;
    unsigned long off = (unsigned long)((uintptr_t)addr - lm->l_addr);
    int n;
    if (info.dli_sname && info.dli_saddr) {
        char s[256];
        unsigned long d = (unsigned long)((uintptr_t)addr - (uintptr_t)info.dli_saddr);
        if (d)
            snprintf(s, sizeof s, "%s+0x%lx", info.dli_sname, d);
        else
            snprintf(s, sizeof s, "%s", info.dli_sname);
        /* ELF32_ST_TYPE is the same macro. */
        int code = sym && (ELF64_ST_TYPE(sym->st_info) == STT_FUNC ||
                           ELF64_ST_TYPE(sym->st_info) == STT_GNU_IFUNC);
        if (code)
            n = snprintf(out, size, "%s+0x%lx (%s)", file, off, s);
        else
            n = snprintf(out, size, "%s (%s)", s, file);
    } else {
        n = snprintf(out, size, "%s+0x%lx", file, off);
    }
    return n < 0 ? 0 : (size_t)n < size ? n : (int)size - 1;
}
#endif

int fsafe__elf_describe(const void *addr, char *out, size_t size)
{
    if (fsafe__elf.describe)
        return fsafe__elf.describe(addr, out, size);
#ifdef FSAFE_ELF_BUILTIN
    return 0;
#else
    if (!out || size == 0)
        return 0;
    out[0] = '\0';
    if (!addr)
        return 0;
    pthread_once(&load_once, load_reader);
    if (loaded_describe)
        return loaded_describe(addr, out, size);
    return exported_name(addr, out, size);
#endif
}
