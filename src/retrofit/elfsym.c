/* SPDX-License-Identifier: MIT */
/*
 * Symbols as `nm` shows them: the full symbol table (.symtab) and the dynamic
 * one (.dynsym) of each loaded object's file, and its separate debug file
 * (/usr/lib/debug/.build-id/xx/yyyy.debug) when installed, read with libelf.
 * Each file is mapped read-only once and cached.  May malloc, open files and
 * wait on a mutex: never call it on the fork path or in a child.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct tab {
    Elf *elf;
    Elf_Data *data;
    size_t n;      /* symbols */
    size_t strndx; /* section index of the names */
    /* The same table read in place, when it is in this process's own class
     * and byte order (every loaded object's file is): a scan of libc's debug
     * file then costs about 10 instructions a symbol instead of 55 through
     * gelf_getsym and elf_strptr (issue 23: FSAFE_LOCKS entries for glibc's
     * locks are looked up at every process start).  NULL otherwise. */
    const ElfW(Sym) *syms;
    const char *strs;
    size_t strsize;
};

struct ent {
    uint64_t value, size;
    const char *name;
    int code; /* a function */
};

/* One object's file, keyed by (path, base).  Immutable once built, except the
 * lazily built address index; all of it is reached under `mu`. */
struct eobj {
    struct eobj *next;
    char *path;
    uintptr_t base;
    int readable;
    Elf *elf, *dbg;
    struct tab symtab, dynsym, dbgsym; /* .n == 0 when absent */
    char dbgpath[96];                  /* tried, whether found or not */
    struct ent *idx;                   /* sorted by value, for describe */
    size_t nidx;
    int idx_built;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct eobj *objs;
static int elf_ready = -1; /* -1 not tried, 0 failed, 1 ok */
static int abandoned;      /* a child whose parent had `mu` held: the cache is not used */

void fsafe__elf_postfork_child(void)
{
    if (pthread_mutex_trylock(&mu) == 0) {
        pthread_mutex_unlock(&mu);
    } else {
        pthread_mutex_init(&mu, NULL); /* its holder does not exist here */
        abandoned = 1;
    }
}

static Elf *open_elf(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    /* FDREAD: everything is in the mapping (or read), and libelf forgets the
     * descriptor, so the program's file descriptors stay as they were. */
    if (e && (elf_kind(e) != ELF_K_ELF || elf_cntl(e, ELF_C_FDREAD) != 0)) {
        elf_end(e);
        e = NULL;
    }
    close(fd);
    return e;
}

/* Fills t's in-place view when the table can be read as this process's own
 * ElfW(Sym) array and its names as one block. */
static void native_view(Elf *e, struct tab *t, const GElf_Shdr *sh)
{
    const unsigned char *ident = (const unsigned char *)elf_getident(e, NULL);
    Elf_Scn *ss = elf_getscn(e, t->strndx);
    GElf_Shdr ssh;
    /* A compressed string table's data would be the compressed bytes
     * (elf_strptr decompresses): only a plain SHT_STRTAB is read in place. */
    if (!ss || !gelf_getshdr(ss, &ssh) || ssh.sh_type != SHT_STRTAB ||
        (ssh.sh_flags & SHF_COMPRESSED) || (sh->sh_flags & SHF_COMPRESSED))
        return;
    Elf_Data *sd = elf_getdata(ss, NULL);
    const unsigned char want_class = sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32;
    const unsigned char want_data = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB
                                                                              : ELFDATA2MSB;
    if (!ident || ident[EI_CLASS] != want_class || ident[EI_DATA] != want_data || !sd ||
        sd->d_type != ELF_T_BYTE || !sd->d_buf || sd->d_size == 0 || sh->sh_entsize != sizeof(ElfW(Sym)) ||
        t->data->d_type != ELF_T_SYM || !t->data->d_buf ||
        t->data->d_size < t->n * sizeof(ElfW(Sym)) ||
        ((const char *)sd->d_buf)[sd->d_size - 1] != '\0')
        return;
    t->syms = t->data->d_buf;
    t->strs = sd->d_buf;
    t->strsize = sd->d_size;
}

static void find_tabs(Elf *e, struct tab *symtab, struct tab *dynsym, unsigned char *id,
                      size_t *idlen)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(e, scn)) != NULL) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            continue;
        if ((sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM) && sh.sh_entsize) {
            struct tab *t = sh.sh_type == SHT_SYMTAB ? symtab : dynsym;
            Elf_Data *d = elf_getdata(scn, NULL);
            if (t && d) {
                t->elf = e;
                t->data = d;
                t->n = sh.sh_size / sh.sh_entsize;
                t->strndx = sh.sh_link;
                native_view(e, t, &sh);
            }
        } else if (sh.sh_type == SHT_NOTE && id && *idlen == 0) {
            Elf_Data *d = elf_getdata(scn, NULL);
            GElf_Nhdr nh;
            size_t off = 0, noff, doff;
            while (d && (off = gelf_getnote(d, off, &nh, &noff, &doff)) > 0) {
                if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                    memcmp((char *)d->d_buf + noff, "GNU", 4) == 0 && nh.n_descsz >= 2 &&
                    nh.n_descsz <= 40) {
                    memcpy(id, (char *)d->d_buf + doff, nh.n_descsz);
                    *idlen = nh.n_descsz;
                    break;
                }
            }
        }
    }
}

/* The cached object for (path, base), built on first use.  Caller holds mu. */
static struct eobj *get_obj(const char *path, uintptr_t base)
{
    for (struct eobj *o = objs; o; o = o->next)
        if (o->base == base && strcmp(o->path, path) == 0)
            return o;
    if (elf_ready < 0)
        elf_ready = elf_version(EV_CURRENT) != EV_NONE;
    struct eobj *o = calloc(1, sizeof *o);
    if (!o || !(o->path = strdup(path))) {
        free(o);
        return NULL;
    }
    o->base = base;
    o->elf = elf_ready ? open_elf(path) : NULL;
    o->readable = o->elf != NULL;
    if (o->elf) {
        unsigned char id[40];
        size_t idlen = 0;
        find_tabs(o->elf, &o->symtab, &o->dynsym, id, &idlen);
        if (!o->symtab.n && idlen) {
            /* Stripped: the debug file, found by build id, has the full table. */
            int n = snprintf(o->dbgpath, sizeof o->dbgpath, "/usr/lib/debug/.build-id/%02x/", id[0]);
            for (size_t i = 1; i < idlen && n + 3 < (int)sizeof o->dbgpath; i++)
                n += snprintf(o->dbgpath + n, sizeof o->dbgpath - n, "%02x", id[i]);
            snprintf(o->dbgpath + n, sizeof o->dbgpath - n, ".debug");
            o->dbg = open_elf(o->dbgpath);
            if (o->dbg)
                find_tabs(o->dbg, &o->dbgsym, NULL, NULL, NULL);
        }
    }
    o->next = objs;
    objs = o;
    return o;
}

/* Defined symbols called `name` in t: the count of distinct addresses, and
 * the first definition in *first. */
static int scan(const struct tab *t, const char *name, GElf_Sym *first, int *nfound)
{
    int n = 0;
    if (t->syms) {
        for (size_t i = 1; i < t->n; i++) {
            const ElfW(Sym) *y = &t->syms[i];
            if (y->st_name >= t->strsize || t->strs[y->st_name] != name[0] ||
                strcmp(t->strs + y->st_name, name) != 0 || y->st_shndx == SHN_UNDEF ||
                ELF64_ST_TYPE(y->st_info) == STT_SECTION || ELF64_ST_TYPE(y->st_info) == STT_FILE)
                continue;
            GElf_Sym s;
            if (!gelf_getsym(t->data, (int)i, &s))
                continue;
            if (n == 0)
                *first = s;
            else if (s.st_value == first->st_value)
                continue;
            n++;
        }
        *nfound += n;
        return n;
    }
    for (size_t i = 1; i < t->n; i++) {
        GElf_Sym s;
        if (!gelf_getsym(t->data, (int)i, &s) || s.st_shndx == SHN_UNDEF ||
            GELF_ST_TYPE(s.st_info) == STT_SECTION || GELF_ST_TYPE(s.st_info) == STT_FILE)
            continue;
        const char *sn = elf_strptr(t->elf, t->strndx, s.st_name);
        if (!sn || strcmp(sn, name) != 0)
            continue;
        if (n == 0)
            *first = s;
        else if (s.st_value == first->st_value)
            continue;
        n++;
    }
    *nfound += n;
    return n;
}

int fsafe__elf_find(const char *path, uintptr_t base, const char *name, struct fsafe__elf_def *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&mu);
    struct eobj *o = abandoned ? NULL : get_obj(path, base);
    int r;
    if (!o || !o->readable) {
        r = FSAFE__ELF_UNREADABLE;
        goto done;
    }
    GElf_Sym s, d;
    int nd = 0;
    /* .dynsym says whether the object exports it; the full table has them all. */
    if (o->dynsym.n && scan(&o->dynsym, name, &d, &nd) && GELF_ST_BIND(d.st_info) != STB_LOCAL)
        out->exported = 1;
    const struct tab *full = o->symtab.n ? &o->symtab : o->dbgsym.n ? &o->dbgsym : NULL;
    out->from_debug = full == &o->dbgsym;
    if (full) {
        int n = 0;
        if (!scan(full, name, &s, &n)) {
            r = FSAFE__ELF_ABSENT;
            goto done;
        }
        out->count = n;
    } else if (nd) {
        s = d, out->count = nd;
    } else {
        r = o->dbgpath[0] || !o->symtab.n ? FSAFE__ELF_STRIPPED : FSAFE__ELF_ABSENT;
        goto done;
    }
    out->addr = base + (uintptr_t)s.st_value;
    out->size = s.st_size;
    out->type = GELF_ST_TYPE(s.st_info);
    out->bind = GELF_ST_BIND(s.st_info);
    r = FSAFE__ELF_FOUND;
done:
    if (o && r == FSAFE__ELF_STRIPPED)
        snprintf(out->debug_file, sizeof out->debug_file, "%s",
                 o->dbgpath[0] ? o->dbgpath : "(no build id)");
    pthread_mutex_unlock(&mu);
    return r;
}

int fsafe__elf_names_any(const char *path, uintptr_t base, const char *const *prefixes)
{
    pthread_mutex_lock(&mu);
    struct eobj *o = abandoned ? NULL : get_obj(path, base);
    int r = -1;
    if (o && o->readable && o->dynsym.n) {
        r = 0;
        for (size_t i = 1; i < o->dynsym.n && !r; i++) {
            GElf_Sym sy;
            const char *sn;
            if (!gelf_getsym(o->dynsym.data, (int)i, &sy) ||
                !(sn = elf_strptr(o->dynsym.elf, o->dynsym.strndx, sy.st_name)))
                continue;
            for (const char *const *p = prefixes; *p && !r; p++)
                r = strncmp(sn, *p, strlen(*p)) == 0;
        }
    }
    pthread_mutex_unlock(&mu);
    return r;
}

/* ---- address -> name --------------------------------------------------------- */
static int ent_cmp(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    return x->value < y->value ? -1 : x->value > y->value;
}

static void build_index(struct eobj *o)
{
    o->idx_built = 1;
    const struct tab *t = o->symtab.n ? &o->symtab : o->dbgsym.n ? &o->dbgsym : &o->dynsym;
    if (!t->n || !(o->idx = malloc(t->n * sizeof *o->idx)))
        return;
    for (size_t i = 1; i < t->n; i++) {
        GElf_Sym s;
        if (!gelf_getsym(t->data, (int)i, &s) || s.st_shndx == SHN_UNDEF)
            continue;
        int ty = GELF_ST_TYPE(s.st_info);
        if (ty != STT_OBJECT && ty != STT_FUNC && ty != STT_NOTYPE && ty != STT_GNU_IFUNC)
            continue;
        const char *sn = elf_strptr(t->elf, t->strndx, s.st_name);
        if (!sn || !sn[0] || (ty == STT_NOTYPE && !s.st_size))
            continue; /* labels and linker markers name nothing useful */
        o->idx[o->nidx++] =
            (struct ent){s.st_value, s.st_size, sn, ty == STT_FUNC || ty == STT_GNU_IFUNC};
    }
    qsort(o->idx, o->nidx, sizeof *o->idx, ent_cmp);
}

/* The symbol holding link-time address v, or NULL. */
static const struct ent *containing(struct eobj *o, uint64_t v)
{
    if (!o->idx_built)
        build_index(o);
    size_t lo = 0, hi = o->nidx;
    while (lo < hi) { /* first entry with value > v */
        size_t mid = lo + (hi - lo) / 2;
        if (o->idx[mid].value <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Symbols may nest or overlap: look back for the nearest that holds v. */
    for (size_t i = lo; i-- > 0 && lo - i <= 64;) {
        const struct ent *e = &o->idx[i];
        if (v < e->value + (e->size ? e->size : 1))
            return e;
    }
    return NULL;
}

/* A C++ name as a reader knows it (libstdc++'s __cxa_demangle, when the
 * process has loaded it, as every C++ program has), or NULL; to be freed.
 * Called with mu held: the look-up is made once. */
static char *demangled(const char *name)
{
    static char *(*demangle)(const char *, char *, size_t *, int *);
    static int looked;
    if (name[0] != '_' || name[1] != 'Z')
        return NULL;
    if (!looked) {
        looked = 1;
        demangle = (char *(*)(const char *, char *, size_t *, int *))dlsym(RTLD_DEFAULT,
                                                                           "__cxa_demangle");
    }
    int st = -1;
    char *d = demangle ? demangle(name, NULL, NULL, &st) : NULL;
    if (d && st != 0) {
        free(d);
        d = NULL;
    }
    return d;
}

int fsafe__addr_describe(const void *addr, char *out, size_t size)
{
    if (!out || size == 0)
        return 0;
    out[0] = '\0';
    if (!addr)
        return 0;
    Dl_info info;
    struct link_map *lm = NULL;
    int n;
    if (!dladdr1(addr, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm) {
        n = snprintf(out, size, "%p", addr);
        return n < 0 ? 0 : (size_t)n < size ? n : (int)size - 1;
    }
    char exe[4096];
    const char *path = lm->l_name;
    if (!path || !path[0]) { /* the program */
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[k > 0 ? k : 0] = '\0';
        path = k > 0 ? exe : "/proc/self/exe";
    }
    const char *file = strrchr(path, '/');
    file = file ? file + 1 : path;
    uintptr_t off = (uintptr_t)addr - lm->l_addr;

    pthread_mutex_lock(&mu);
    struct eobj *o = abandoned ? NULL : get_obj(path, lm->l_addr);
    const struct ent *e = o && o->readable ? containing(o, off) : NULL;
    if (e) {
        /* Code as a backtrace shows it, the object first; data as a lock is
         * named, the symbol first. */
        unsigned long d = (unsigned long)(off - e->value);
        char sym[256];
        char *plain = demangled(e->name);
        const char *name = plain ? plain : e->name;
        if (d)
            snprintf(sym, sizeof sym, "%s+0x%lx", name, d);
        else
            snprintf(sym, sizeof sym, "%s", name);
        free(plain);
        if (e->code)
            n = snprintf(out, size, "%s+0x%lx (%s)", file, (unsigned long)off, sym);
        else
            n = snprintf(out, size, "%s (%s)", sym, file);
    } else {
        n = snprintf(out, size, "%s+0x%lx", file, (unsigned long)off);
    }
    pthread_mutex_unlock(&mu);
    return n < 0 ? 0 : (size_t)n < size ? n : (int)size - 1;
}
