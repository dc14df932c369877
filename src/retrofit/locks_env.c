/* SPDX-License-Identifier: MIT */
/*
 * FSAFE_LOCKS: registers, by symbol name, the locks of code that knows nothing
 * of fsafe.  The parser never allocates, never prints and accepts any bytes (a
 * fuzz target calls it).  Resolution runs at init, in the constructor, and
 * after each dlopen/dlclose: never on the fork path, where the loader's locks
 * could be held by another thread, and never with dlopen (below).  The symbol
 * tables are read by libfsafe-elf.so (fsafe__elf, elf_reader.c): without it,
 * FSAFE_LOCKS is ignored with one line.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- the parser ------------------------------------------------------------ */
static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int sym_char(char c, int first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '$')
        return 1;
    return !first && c >= '0' && c <= '9';
}

static int ieq(const char *a, size_t n, const char *word)
{
    size_t i = 0;
    for (; i < n && word[i]; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return 0;
    }
    return i == n && word[i] == '\0';
}

/* Returns NULL and fills out, or the reason the entry [p, p+n) is invalid. */
/* OFFSET of symbol+OFFSET: bytes into the object, decimal or 0x hex. */
static const char *parse_offset(const char *o, size_t olen, unsigned long *out)
{
    size_t i = 0;
    int hex = olen > 2 && o[0] == '0' && (o[1] == 'x' || o[1] == 'X');
    unsigned long v = 0;
    if (hex)
        i = 2;
    if (olen == 0 || (olen == 2 && hex))
        return "empty offset after '+'";
    for (; i < olen; i++) {
        char c = o[i];
        int d = c >= '0' && c <= '9'                ? c - '0'
                : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                              : -1;
        if (d < 0)
            return "offset is not a decimal or 0x hex number of bytes";
        v = v * (hex ? 16 : 10) + (unsigned long)d;
        if (v > 0x7fffffffUL)
            return "offset out of range (at most 0x7fffffff bytes)";
    }
    *out = v;
    return NULL;
}

/* symbol[+OFFSET] (without @library). */
static const char *parse_symbol(const char *sym, size_t slen, struct fsafe__lock_spec *out)
{
    /* symbol+OFFSET: a lock inside an object, OFFSET bytes in. */
    const char *plus = memchr(sym, '+', slen);
    out->has_offset = 0;
    out->offset = 0;
    if (plus) {
        const char *o = plus + 1;
        const char *why = parse_offset(o, slen - (size_t)(o - sym), &out->offset);
        if (why)
            return why;
        out->has_offset = 1;
        slen = (size_t)(plus - sym);
    }
    if (slen == 0)
        return "empty symbol name";
    if (slen >= sizeof out->symbol)
        return "symbol name longer than 127 bytes";
    for (size_t i = 0; i < slen; i++)
        if (!sym_char(sym[i], i == 0))
            return "symbol name must be letters, digits, '_', '.' or '$', not starting with a digit "
                   "(C++: the mangled name, as nm shows it without -C)";
    memcpy(out->symbol, sym, slen);
    out->symbol[slen] = '\0';
    return NULL;
}

static const char *parse_library(const char *lib, size_t llen, struct fsafe__lock_spec *out)
{
    if (llen == 0)
        return "empty library name after '@'";
    if (llen >= sizeof out->library)
        return "library name longer than 255 bytes";
    for (size_t i = 0; i < llen; i++)
        if ((unsigned char)lib[i] <= ' ' || (unsigned char)lib[i] == 0x7f)
            return "library name contains a blank or a control character";
    memcpy(out->library, lib, llen);
    out->library[llen] = '\0';
    return NULL;
}

static const char *parse_kind(const char *k, size_t klen, int *out)
{
    if (ieq(k, klen, "mutex"))
        *out = FSAFE_MUTEX;
    else if (ieq(k, klen, "rwlock"))
        *out = FSAFE_RWLOCK;
    else if (ieq(k, klen, "spin") || ieq(k, klen, "spinlock"))
        *out = FSAFE_SPINLOCK;
    else if (ieq(k, klen, "lll"))
        *out = FSAFE__SPEC_LLL;
    else
        return "unknown kind (expected mutex, rwlock, spin or lll)";
    return NULL;
}

static const char *parse_rank(const char *r, size_t rlen, int *out)
{
    size_t i = 0;
    int neg = 0;
    if (r[0] == '-' || r[0] == '+')
        neg = r[0] == '-', i = 1;
    if (i == rlen)
        return "rank is not an integer";
    long long v = 0;
    for (; i < rlen; i++) {
        if (r[i] < '0' || r[i] > '9')
            return "rank is not an integer";
        v = v * 10 + (r[i] - '0');
        if (v > (long long)INT_MAX + 1)
            return "rank out of range (an int)";
    }
    if (neg)
        v = -v;
    if (v > INT_MAX || v < INT_MIN)
        return "rank out of range (an int)";
    *out = (int)v;
    return NULL;
}

static const char *parse_entry(const char *p, size_t n, struct fsafe__lock_spec *out)
{
    /* Split at ':' into up to three fields; the first may carry "@library". */
    const char *field[3];
    size_t flen[3] = {0, 0, 0};
    int nf = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != ':')
            continue;
        if (nf == 3)
            return "too many ':' fields (expected symbol[+offset][@library][:kind[:rank]])";
        field[nf] = p + start;
        flen[nf] = i - start;
        nf++;
        start = i + 1;
    }

    const char *sym = field[0], *at = memchr(sym, '@', flen[0]);
    const char *why = parse_symbol(sym, at ? (size_t)(at - sym) : flen[0], out);
    if (why)
        return why;
    out->library[0] = '\0';
    if (at && (why = parse_library(at + 1, flen[0] - (size_t)(at + 1 - sym), out)) != NULL)
        return why;
    out->kind = FSAFE_MUTEX;
    if (nf >= 2 && flen[1] && (why = parse_kind(field[1], flen[1], &out->kind)) != NULL)
        return why;
    out->rank = 0;
    if (nf == 3 && flen[2] && (why = parse_rank(field[2], flen[2], &out->rank)) != NULL)
        return why;
    return NULL;
}

int fsafe__locks_parse(const char *spec, int (*on_entry)(const struct fsafe__lock_spec *, void *),
                       void (*on_error)(const char *entry, size_t len, const char *why, void *),
                       void *arg)
{
    int count = 0;
    if (!spec)
        return 0;
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && is_blank(*b))
            b++;
        while (e > b && is_blank(e[-1]))
            e--;
        if (e > b) {
            struct fsafe__lock_spec s;
            const char *why = parse_entry(b, (size_t)(e - b), &s);
            if (why) {
                if (on_error)
                    on_error(b, (size_t)(e - b), why, arg);
            } else {
                count++;
                if (on_entry && on_entry(&s, arg) != 0)
                    return count;
            }
        }
        if (*end == '\0')
            return count;
        p = end + 1;
    }
}

/* ---- loaded objects ------------------------------------------------------------ */
/*
 * Objects are found with dl_iterate_phdr and their symbols read from their
 * files (elfsym.c), never with dlopen: libfsafe is linked -z initfirst, so at
 * start-up this runs before libc's own initialiser, and a dlopen then makes
 * the loader run the initialisers of the library's dependencies, libc's among
 * them, with the argument count, argv and environment libc has not set up yet
 * (0, NULL, NULL): the program would start with no environment and no name.
 * dl_iterate_phdr runs no initialiser.  It takes the loader's list lock, so
 * none of this may run on the fork path.
 */
struct obj {
    uintptr_t base;
    char *path;   /* the file to read; "/proc/self/exe" for the program */
    char *name;   /* for messages */
    char *soname; /* DT_SONAME, or NULL */
    int is_main;
};
struct objs {
    struct obj *v;
    size_t n, cap;
};

/* DT_SONAME of an object, from its dynamic section in memory, or NULL. */
static const char *soname_of(uintptr_t base, const ElfW(Dyn) *dyn)
{
    uintptr_t strtab = 0;
    size_t off = (size_t)-1;
    for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_STRTAB)
            strtab = dyn->d_un.d_ptr;
        else if (dyn->d_tag == DT_SONAME)
            off = dyn->d_un.d_val;
    }
    if (!strtab || off == (size_t)-1)
        return NULL;
    if (strtab < base) /* the loader relocates d_ptr in place on most targets, not all */
        strtab += base;
    return (const char *)strtab + off;
}

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int snap_cb(struct dl_phdr_info *pi, size_t size, void *arg)
{
    (void)size;
    struct objs *s = arg;
    const ElfW(Dyn) *dyn = NULL;
    int loads = 0;
    for (int i = 0; i < pi->dlpi_phnum; i++) {
        if (pi->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(pi->dlpi_addr + pi->dlpi_phdr[i].p_vaddr);
        loads += pi->dlpi_phdr[i].p_type == PT_LOAD;
    }
    if (!loads)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 32;
        struct obj *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return 1;
        s->v = v, s->cap = cap;
    }
    const char *nm = pi->dlpi_name ? pi->dlpi_name : "";
    struct obj *o = &s->v[s->n];
    o->is_main = s->n == 0 && nm[0] == '\0';
    if (!o->is_main && nm[0] == '\0')
        return 0;
    o->base = pi->dlpi_addr;
    o->path = dup_str(o->is_main ? "/proc/self/exe" : nm);
    o->soname = dup_str(soname_of(pi->dlpi_addr, dyn));
    if (o->is_main) {
        char exe[4096];
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[k > 0 ? k : 0] = '\0';
        const char *b = strrchr(exe, '/');
        o->name = dup_str(b ? b + 1 : k > 0 ? exe : "the program");
    } else {
        const char *b = strrchr(nm, '/');
        o->name = dup_str(b ? b + 1 : nm);
    }
    if (!o->path || !o->name) {
        free(o->path), free(o->name), free(o->soname);
        return 1;
    }
    s->n++;
    return 0;
}

static __attribute__((unused)) void snap_free(struct objs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].path), free(s->v[i].name), free(s->v[i].soname);
    free(s->v);
    s->v = NULL, s->n = s->cap = 0;
}

static void snap_take(struct objs *s)
{
    s->v = NULL, s->n = s->cap = 0;
    dl_iterate_phdr(snap_cb, s);
}

static int seen_in(const struct objs *s, const struct obj *o)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (s->v[i].base == o->base && strcmp(s->v[i].path, o->path) == 0)
            return 1;
    return 0;
}

/* The loaded object called `name`: its path, the file name of its path, or its
 * DT_SONAME, as dlopen(name, RTLD_NOLOAD) would match it. */
static const struct obj *find_library(const struct objs *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct obj *o = &s->v[i];
        if ((!o->is_main && strcmp(o->path, name) == 0) || strcmp(o->name, name) == 0 ||
            (o->soname && strcmp(o->soname, name) == 0))
            return o;
    }
    return NULL;
}

/* ---- resolution and registration ------------------------------------------- */
enum { PENDING, REGISTERED, REFUSED };

struct lent {
    struct fsafe__lock_spec s;
    void *addr;   /* REGISTERED: where */
    int state;
    int late;     /* registered in a library loaded after start-up */
    int told;     /* the "not found yet" message was given */
};

static struct lent *ents;
static size_t nents;
/* Guards ents and the hooks' work.  Never held while calling the real
 * dlopen/dlclose: a library's constructor may call dlopen while the loader's
 * lock is held, and its hook then waits for this one. */
static pthread_mutex_t lmu = PTHREAD_MUTEX_INITIALIZER;
static AO_t hooks_on;       /* entries pending or registered late: the hooks have work */
static AO_t hooks_disabled; /* a child whose parent was inside a hook */
static struct objs seen;    /* the objects of the previous pass */
static char *(*demangle)(const char *, char *, size_t *, int *); /* libstdc++'s, if loaded */

static const char *kind_name(int kind)
{
    return kind == FSAFE_RWLOCK     ? "rwlock"
           : kind == FSAFE_SPINLOCK ? "spin"
           : kind == FSAFE__SPEC_LLL ? "lll"
                                     : "mutex";
}

static size_t kind_size(int kind)
{
    return kind == FSAFE_RWLOCK       ? sizeof(pthread_rwlock_t)
           : kind == FSAFE_SPINLOCK   ? sizeof(pthread_spinlock_t)
           : kind == FSAFE__SPEC_LLL ? sizeof(int)
                                      : sizeof(pthread_mutex_t);
}

/*
 * The kind "lll": glibc's internal low-level lock (__libc_lock_define,
 * lll_lock in sysdeps/nptl/lowlevellock.h), a bare int that libc's own code
 * takes inline, so no wrapper ever sees it.  Its protocol: 0 free, 1 held, 2
 * held with a waiter asleep on the word (a private futex); the holder's
 * release exchanges in 0 and wakes one sleeper if the old value was 2.  The
 * fork takes it as libc does (compare-and-swap 0 to 1, else exchange in 2
 * and sleep until a release wakes it) and releases it as libc does, so that
 * a libc thread that went to sleep on it meanwhile is woken; the child
 * stores 0.
 *
 * The word records no owner, so the fork cannot tell its own thread's hold
 * from another's.  Hence the bounds: in a process with one thread a held
 * word can only be the forker's own (a fork from a signal handler that
 * interrupted libc): not taken, and left as it is in the child, as glibc's
 * fork leaves it.  With threads, the wait ends after FSAFE_AUTO_WAIT_MS (a
 * glibc hold of these leaf locks lasts microseconds; a longer one is the
 * forker's own, or, before glibc 2.36, a __cxa_finalize waiting for the
 * atfork lock that glibc holds around a fork's handlers, when fsafe's walk
 * runs in its atfork handler): not taken, and the fork goes on.  And the
 * forking thread's own calls into libc from another library's atfork
 * prepare handler, which auto mode sees at its gates (atexit, dlclose),
 * first give the held ones back (fsafe__locks_give_back): so without auto
 * mode an lll entry is not taken at all.
 */
static int lll_try(void *w)
{
    int zero = 0;
    return __atomic_compare_exchange_n((int *)w, &zero, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)
               ? 0
               : EBUSY;
}

/* Whether this process has one thread now (a fork from a signal handler
 * then interrupted this very thread).  glibc's flag says so without a
 * system call, but it stays 0 once a thread has existed, and glibc before
 * 2.32 has none: then /proc/self/task's link count (2 + threads).  stat is
 * async-signal-safe. */
static int one_thread_now(void)
{
#ifdef __GLIBC__
    if (fsafe__gl_single_threaded() == 1)
        return 1;
#endif
    struct stat st;
    return stat("/proc/self/task", &st) == 0 && st.st_nlink == 3;
}

static int lll_take_(void *w)
{
    static int told;
    if (!fsafe__cfg.auto_attached || fsafe__cfg.auto_mode == 0) {
        /* Without auto mode's gates nothing gives the lock back to another
         * library's atfork handler that calls atexit inside the fork. */
        if (!told++)
            fsafe__msg("FSAFE_LOCKS: entries of kind lll are taken only under auto mode "
                       "(fsafe-run without --no-auto, FSAFE_AUTO not 0): not taken");
        return EPERM;
    }
    if (lll_try(w) == 0)
        return 0;
    if (one_thread_now())
        return EDEADLK; /* this thread's own hold */
    /* glibc's second step: exchange in 2 (taken if it was 0) and sleep until
     * the holder's release wakes a sleeper, so that the fork gets its turn
     * among libc's waiters; at most FSAFE_AUTO_WAIT_MS in all. */
    uint64_t limit = (uint64_t)fsafe__cfg.auto_wait_ms * 1000000u;
    uint64_t t0 = fsafe__now_ns();
    for (;;) {
        if (__atomic_exchange_n((int *)w, 2, __ATOMIC_ACQUIRE) == 0)
            return 0;
        uint64_t dt = fsafe__now_ns() - t0;
        if (dt >= limit)
            return ETIMEDOUT;
        uint64_t left = limit - dt < 10000000u ? limit - dt : 10000000u;
        struct timespec ts = {0, (long)left};
        syscall(SYS_futex, (int *)w, FUTEX_WAIT_PRIVATE, 2, &ts, NULL, 0);
    }
}

static int lll_take(void *w) /* errno stays the program's */
{
    int saved = errno;
    int r = lll_take_(w);
    errno = saved;
    return r;
}

static void lll_release(void *w)
{
    if (__atomic_exchange_n((int *)w, 0, __ATOMIC_RELEASE) > 1)
        syscall(SYS_futex, (int *)w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void lll_child(void *w) /* async-signal-safe: one store */
{
    *(volatile int *)w = 0;
}

/* No try_acquire: the walk then calls lll_take, which bounds its own wait. */
static const struct fsafe_lock_ops lll_ops = {lll_take, NULL, lll_release, lll_child};

void fsafe__locks_give_back(void)
{
    fsafe__walk_give_back_ops(&lll_ops);
}

/* glibc's own objects, the only code that takes an "lll" lock. */
static int glibc_object(const char *soname)
{
    static const char *const prefix[] = {"libc.so.",    "ld-linux",      "ld64.so.",
                                         "libpthread.so.", "librt.so.",   "libanl.so.",
                                         "libresolv.so.",  "libdl.so.",   "libnss_",
                                         "libm.so.",       NULL};
    for (int i = 0; soname && prefix[i]; i++)
        if (strncmp(soname, prefix[i], strlen(prefix[i])) == 0)
            return 1;
    return 0;
}

/* The entry as the user wrote it, for messages; a C++ name also demangled. */
static void spec_text(const struct fsafe__lock_spec *s, char *buf, size_t size)
{
    char off[24] = "";
    if (s->has_offset)
        snprintf(off, sizeof off, "+%lu", s->offset);
    int n = snprintf(buf, size, "%s%s%s%s", s->symbol, off, s->library[0] ? "@" : "", s->library);
    if (demangle && strncmp(s->symbol, "_Z", 2) == 0 && n > 0 && (size_t)n < size) {
        int st = 0;
        char *d = demangle(s->symbol, NULL, NULL, &st);
        if (d && st == 0)
            snprintf(buf + n, size - (size_t)n, " (%s)", d);
        free(d);
    }
}

/* 1 if addr..addr+len lies in one writable mapping (/proc/self/maps), else 0.
 * A lock in read-only memory would make the fork fault when it takes it. */
static int writable(const void *addr, size_t len)
{
    char perms[4];
    uintptr_t end;
    int r = fsafe__maps_lookup(addr, perms, &end);
    if (r == -2)
        return 1; /* cannot tell: trust the symbol table */
    return r == 0 && perms[1] == 'w' && (uintptr_t)addr + len <= end;
}

/* What a lookup found, for one entry. */
struct found {
    const struct obj *obj;
    struct fsafe__elf_def d;
};

/* Looks for s in the objects of cur (only those not in `old`, when given).
 * Returns 1 with *f, 0 when not found (why in *why), -1 after a message. */
/* symbol@library: that library's definition (or the program's copy of it).
 * Returns as lookup does. */
static int lookup_in(const struct fsafe__lock_spec *s, const char *text, const struct objs *cur,
                     struct found *f, char *why, size_t whysize)
{
    struct fsafe__elf_def d;
    const struct obj *o = find_library(cur, s->library);
    if (!o) {
        snprintf(why, whysize, "library '%s' is not loaded", s->library);
        return 0;
    }
    int r = fsafe__elf.find(o->path, o->base, s->symbol, &d);
    if (r == FSAFE__ELF_ABSENT) {
        fsafe__msg("FSAFE_LOCKS: %s: symbol not found in '%s'; not registered", text, s->library);
        return -1;
    }
    if (r == FSAFE__ELF_STRIPPED) {
        fsafe__msg("FSAFE_LOCKS: %s: symbol not found in '%s': the file is stripped (no "
                   ".symtab) and its debug file %s is not installed, so only exported names "
                   "can be found; not registered",
                   text, s->library, d.debug_file);
        return -1;
    }
    if (r == FSAFE__ELF_UNREADABLE) {
        fsafe__msg("FSAFE_LOCKS: %s: cannot read the ELF file %s; not registered", text, o->path);
        return -1;
    }
    if (d.count > 1) {
        fsafe__msg("FSAFE_LOCKS: %s: '%s' defines %d different objects of that name (static "
                   "in several source files); it cannot be told which; not registered",
                   text, s->library, d.count);
        return -1;
    }
    f->obj = o, f->d = d;
    /* A copy relocation moves an exported object into the program, and the
     * library's code then uses that copy: prefer it. */
    struct fsafe__elf_def m;
    if (d.exported && !o->is_main && cur->n && cur->v[0].is_main &&
        fsafe__elf.find(cur->v[0].path, cur->v[0].base, s->symbol, &m) == FSAFE__ELF_FOUND &&
        m.exported && m.type == STT_OBJECT)
        f->obj = &cur->v[0], f->d = m;
    return 1;
}

static int lookup(const struct fsafe__lock_spec *s, const char *text, const struct objs *cur,
                  const struct objs *old, struct found *f, char *why, size_t whysize)
{
    why[0] = '\0';
    if (s->library[0])
        return lookup_in(s, text, cur, f, why, whysize);
    /* A bare name: an exported definition as the loader finds it (the first in
     * load order), else the one object that defines it locally. */
    struct fsafe__elf_def d;
    const struct obj *loc = NULL, *stripped = NULL;
    struct fsafe__elf_def locd;
    int nloc = 0, nstripped = 0;
    char where[200] = "";
    for (size_t i = 0; i < cur->n; i++) {
        const struct obj *o = &cur->v[i];
        if (old && seen_in(old, o))
            continue;
        int r = fsafe__elf.find(o->path, o->base, s->symbol, &d);
        if (r == FSAFE__ELF_STRIPPED && nstripped++ == 0)
            stripped = o;
        if (r != FSAFE__ELF_FOUND)
            continue;
        if (d.exported) {
            f->obj = o, f->d = d;
            return 1;
        }
        if (nloc == 0)
            loc = o, locd = d;
        size_t w = strlen(where);
        if (w + strlen(o->name) + 3 < sizeof where)
            snprintf(where + w, sizeof where - w, "%s%s", w ? ", " : "", o->name);
        nloc += d.count;
    }
    if (nloc == 1) {
        f->obj = loc, f->d = locd;
        return 1;
    }
    if (nloc > 1) {
        fsafe__msg("FSAFE_LOCKS: %s: a local (static or hidden) name in several places (%s); "
                   "name one as %s@library; not registered",
                   text, where, s->symbol);
        return -1;
    }
    if (nstripped)
        snprintf(why, whysize,
                 "%d of the objects searched are stripped with no debug file installed (%s "
                 "among them): a non-exported name there cannot be found",
                 nstripped, stripped->name);
    else
        snprintf(why, whysize, "no object's symbol table defines it");
    return 0;
}

/* The functions through which code takes a lock of this kind: an object
 * whose dynamic symbol table names none of them cannot take one. */
static const char *const *kind_calls(int kind)
{
    static const char *const mutex[] = {"pthread_mutex_", "pthread_cond_", "mtx_", "cnd_", NULL};
    static const char *const rwlock[] = {"pthread_rwlock_", NULL};
    static const char *const spin[] = {"pthread_spin_", NULL};
    return kind == FSAFE_RWLOCK ? rwlock : kind == FSAFE_SPINLOCK ? spin : mutex;
}

/* Checks what f found for s; the lock's address, or NULL after one message. */
static void *check(const struct fsafe__lock_spec *s, const char *text, const struct found *f)
{
    size_t ks = kind_size(s->kind);
    const struct fsafe__elf_def *d = &f->d;
    if (d->type == STT_FUNC || d->type == STT_GNU_IFUNC) {
        fsafe__msg("FSAFE_LOCKS: %s: the symbol is a function, not a lock; not registered", text);
        return NULL;
    }
    if (d->type == STT_TLS) {
        fsafe__msg("FSAFE_LOCKS: %s: the symbol is thread-local, one object per thread, not "
                   "one lock; not registered", text);
        return NULL;
    }
    if (d->size && !s->has_offset && d->size < ks) {
        fsafe__msg("FSAFE_LOCKS: %s: the object is %lu bytes, too small for a %s (%lu); "
                   "not registered",
                   text, (unsigned long)d->size, kind_name(s->kind), (unsigned long)ks);
        return NULL;
    }
    if (d->size && !s->has_offset && d->size > ks) {
        fsafe__msg("FSAFE_LOCKS: %s: the object is %lu bytes, larger than a %s (%lu): it is not "
                   "a lock but may hold one; name the lock inside it by its byte offset, "
                   "%s+OFFSET; not registered",
                   text, (unsigned long)d->size, kind_name(s->kind), (unsigned long)ks, s->symbol);
        return NULL;
    }
    if (d->size && s->has_offset && s->offset + ks > d->size) {
        fsafe__msg("FSAFE_LOCKS: %s: a %s (%lu bytes) at offset %lu does not fit in the object "
                   "(%lu bytes); not registered",
                   text, kind_name(s->kind), (unsigned long)ks, s->offset,
                   (unsigned long)d->size);
        return NULL;
    }
    if (s->kind == FSAFE__SPEC_LLL && !glibc_object(f->obj->soname)) {
        fsafe__msg("FSAFE_LOCKS: %s: the lll kind is glibc's internal lock, and %s is not one "
                   "of glibc's libraries (libc.so.6, ld-linux, libpthread, librt, ...); not "
                   "registered",
                   text, f->obj->name);
        return NULL;
    }
    void *a = (void *)(d->addr + s->offset);
    size_t align = s->kind == FSAFE_SPINLOCK    ? _Alignof(pthread_spinlock_t)
                   : s->kind == FSAFE_RWLOCK  ? _Alignof(pthread_rwlock_t)
                   : s->kind == FSAFE__SPEC_LLL ? _Alignof(int)
                                                : _Alignof(pthread_mutex_t);
    if ((uintptr_t)a % align) {
        fsafe__msg("FSAFE_LOCKS: %s: the address %p is not aligned as a %s (%lu bytes): not a "
                   "lock of that kind; not registered",
                   text, a, kind_name(s->kind), (unsigned long)align);
        return NULL;
    }
    if (!writable(a, ks)) {
        fsafe__msg("FSAFE_LOCKS: %s: the object at %p is not in writable memory; not registered",
                   text, a);
        return NULL;
    }
    const char *why = fsafe__lock_implausible(a, s->kind);
    if (why) {
        fsafe__msg("FSAFE_LOCKS: %s: the bytes at %p in %s are not a %s (%s); not registered",
                   text, a, f->obj->name, kind_name(s->kind), why);
        return NULL;
    }
    /* A lock of another kind can look like an unlocked pthread lock: a futex
     * word followed by zeros (Rust's std::sync::Mutex, GLib's GMutex,
     * abseil's absl::Mutex).  Taking it as a mutex would write glibc's owner
     * and user count into the bytes after the word, the data it guards.  A
     * name local to its object can be taken only by that object's code, so
     * if the object calls no function of the kind, it is not such a lock.
     * (An exported name may be taken by any object's code: not decidable.) */
    if (s->kind != FSAFE__SPEC_LLL && !d->exported && fsafe__elf.names_any(f->obj->path, f->obj->base, kind_calls(s->kind)) == 0) {
        fsafe__msg("FSAFE_LOCKS: %s: the name is local to %s, which calls no %s function (its "
                   "dynamic symbol table names none of %s*), so no code takes it as a glibc %s: "
                   "it is a lock of another kind (a futex word, such as Rust's "
                   "std::sync::Mutex, GLib's GMutex or abseil's absl::Mutex) or no lock; not "
                   "registered",
                   text, f->obj->name, kind_name(s->kind), kind_calls(s->kind)[0],
                   kind_name(s->kind));
        return NULL;
    }
    return a;
}

/* One pass over the entries.  startup: the first, in the constructor.  old:
 * the objects a bare name was already looked for in.  Caller holds lmu. */
static void resolve_pending(const struct objs *cur, const struct objs *old, int startup)
{
    for (size_t i = 0; i < nents; i++) {
        struct lent *e = &ents[i];
        if (e->state != PENDING)
            continue;
        char text[400], why[300];
        struct found f;
        spec_text(&e->s, text, sizeof text);
        int r = lookup(&e->s, text, cur, e->s.library[0] ? NULL : old, &f, why, sizeof why);
        if (r < 0) {
            e->state = REFUSED;
            continue;
        }
        if (r == 0) {
            /* Quiet for a library not loaded yet: a plugin or an extension module
             * is normal.  A bare name is said once, with why. */
            if (startup && !e->s.library[0])
                fsafe__msg("FSAFE_LOCKS: %s: symbol not found in the program or the libraries "
                           "loaded at startup (%s); it will be looked for in libraries loaded "
                           "later",
                           text, why);
            else if (startup && fsafe__cfg.verbose)
                fsafe__msg("FSAFE_LOCKS: %s: %s yet; it will be registered when it is", text, why);
            continue;
        }
        void *a = check(&e->s, text, &f);
        if (!a) {
            e->state = REFUSED;
            continue;
        }
        char name[160]; /* the registry keeps the first FSAFE_NAME_MAX - 1 bytes */
        if (e->s.has_offset)
            snprintf(name, sizeof name, "%s+%lu", e->s.symbol, e->s.offset);
        else
            snprintf(name, sizeof name, "%s", e->s.symbol);
        int rr = e->s.kind == FSAFE__SPEC_LLL
                     ? fsafe__registry_add_ops(a, &lll_ops, e->s.rank, name)
                     : fsafe__registry_add_lock(a, e->s.kind, e->s.rank, name);
        if (rr == 0 || rr == EEXIST) {
            e->state = REGISTERED, e->addr = a, e->late = !startup;
            if (rr == 0 && !startup)
                e->addr = a;
            if (fsafe__cfg.verbose)
                fsafe__msg("FSAFE_LOCKS: %s '%s' (%s, rank %d) at %p in %s%s",
                           rr == 0 ? "registered" : "already registered:", name,
                           kind_name(e->s.kind), e->s.rank, a, f.obj->name,
                           startup ? "" : " (loaded after startup)");
            if (rr == EEXIST)
                e->addr = NULL; /* not ours to unregister */
        } else {
            fsafe__msg("FSAFE_LOCKS: %s: registration failed (error %d)", text, rr);
            e->state = REFUSED;
        }
    }
    int work = 0;
    for (size_t i = 0; i < nents; i++)
        work |= ents[i].state == PENDING || (ents[i].state == REGISTERED && ents[i].late);
    AO_store_release(&hooks_on, (AO_t)work);
}

static void report_bad(const char *entry, size_t len, const char *why, void *arg)
{
    (void)arg;
    /* Garbage may hold any byte: show at most 80, control bytes as '?'. */
    char shown[84];
    size_t n = len < 80 ? len : 80;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)entry[i];
        shown[i] = c < ' ' || c == 0x7f ? '?' : (char)c;
    }
    if (len > n)
        memcpy(shown + n, "...", 3), n += 3;
    shown[n] = '\0';
    fsafe__msg("FSAFE_LOCKS: ignoring entry '%s': %s", shown, why);
}

static int count_one(const struct fsafe__lock_spec *s, void *arg)
{
    (void)s;
    ++*(size_t *)arg;
    return 0;
}

static int store_one(const struct fsafe__lock_spec *s, void *arg)
{
    size_t *i = arg;
    ents[*i].s = *s;
    ents[*i].state = PENDING;
    ++*i;
    return 0;
}

/* In a child: a hook that was running in another thread of the parent left
 * lmu held and the entries half-updated.  The child then stops resolving. */
static void atfork_child(void)
{
    if (pthread_mutex_trylock(&lmu) == 0) {
        pthread_mutex_unlock(&lmu);
    } else {
        pthread_mutex_init(&lmu, NULL);
        AO_store_release(&hooks_disabled, 1);
    }
    fsafe__elf.postfork_child(); /* registered only with the reader loaded */
}


void fsafe__locks_env_register(void)
{
    if (!fsafe__cfg.locks)
        return;
    /* Without the reader (libfsafe-elf.so not preloaded or linked), as in a
     * build without FSAFE_LOCKS (locks_none.c): one line, and nothing else,
     * now or for libraries loaded later (the dlopen hooks stay off).  It
     * cannot be loaded here: a dlopen in this initfirst constructor would
     * start libc with no environment. */
    if (!fsafe__elf.find || !fsafe__elf.names_any || !fsafe__elf.postfork_child) {
        if (fsafe__cfg.locks[0])
            fsafe__msg("FSAFE_LOCKS is read by libfsafe-elf.so, which is not loaded: ignored "
                       "(fsafe-run loads it; with LD_PRELOAD, list libfsafe-elf.so first)");
        return;
    }
    size_t n = 0;
    fsafe__locks_parse(fsafe__cfg.locks, count_one, report_bad, &n);
    if (n == 0 || !(ents = calloc(n, sizeof *ents)))
        return;
    size_t i = 0;
    fsafe__locks_parse(fsafe__cfg.locks, store_one, NULL, &i);
    nents = i;
    demangle = (char *(*)(const char *, char *, size_t *, int *))dlsym(RTLD_DEFAULT,
                                                                        "__cxa_demangle");
    pthread_atfork(NULL, NULL, atfork_child);
    pthread_mutex_lock(&lmu);
    snap_take(&seen);
    resolve_pending(&seen, NULL, 1);
    pthread_mutex_unlock(&lmu);
}

/* ---- libraries loaded and unloaded later ------------------------------------ */
/* After a dlopen: entries waiting for a library, and bare names not found so
 * far, are looked for in the objects loaded since the last pass. */
static void after_load(void)
{
    struct objs cur;
    snap_take(&cur); /* the loader's list lock, before lmu: never the other way */
    pthread_mutex_lock(&lmu);
    resolve_pending(&cur, &seen, 0);
    snap_free(&seen);
    seen = cur;
    pthread_mutex_unlock(&lmu);
}

/* Before a dlclose: nothing tells which objects it will unmap (the handle's
 * count, its dependencies), so every lock registered in a library loaded
 * after start-up is unregistered; after_load() registers those still loaded
 * again.  A fork in between does not take them. */
static void before_unload(void)
{
    pthread_mutex_lock(&lmu);
    for (size_t i = 0; i < nents; i++) {
        struct lent *e = &ents[i];
        if (e->state == REGISTERED && e->late) {
            if (e->addr)
                fsafe__registry_remove(e->addr);
            e->state = PENDING, e->addr = NULL, e->late = 0;
        }
    }
    /* Objects unloaded now may come back: look in every object again. */
    snap_free(&seen);
    pthread_mutex_unlock(&lmu);
}

static int hooks_active(void)
{
    return AO_load_acquire(&hooks_on) && !AO_load_acquire(&hooks_disabled);
}

/* The hooks, for whichever fsafe library interposes dlopen and dlclose:
 * libfsafe.so's own wrappers (core/interpose.c), or auto mode's gated ones
 * (auto/libc.c, through the services of src/common/contract.h).  errno is
 * left as the real call set it. */
int fsafe__locks_dl_watch(void)
{
    return hooks_active();
}

void fsafe__locks_dl_loaded(void)
{
    int saved = errno;
    after_load();
    errno = saved;
}

void fsafe__locks_dl_unloading(void)
{
    int saved = errno;
    before_unload();
    errno = saved;
}
