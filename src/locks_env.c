/* SPDX-License-Identifier: MIT */
/*
 * FSAFE_LOCKS: registers, by symbol name, the locks of code that knows nothing
 * of fsafe.  The parser never allocates, never prints and accepts any bytes (a
 * fuzz target calls it).  Resolution runs once, at init, in the constructor:
 * never on the fork path, where dlopen/dlsym could wait for the loader lock.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <string.h>
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
            return "too many ':' fields (expected symbol[@library][:kind[:rank]])";
        field[nf] = p + start;
        flen[nf] = i - start;
        nf++;
        start = i + 1;
    }

    const char *sym = field[0], *at = memchr(sym, '@', flen[0]);
    size_t slen = at ? (size_t)(at - sym) : flen[0];
    if (slen == 0)
        return "empty symbol name";
    if (slen >= sizeof out->symbol)
        return "symbol name longer than 127 bytes";
    for (size_t i = 0; i < slen; i++)
        if (!sym_char(sym[i], i == 0))
            return "symbol name must be letters, digits, '_', '.' or '$', not starting with a digit";
    memcpy(out->symbol, sym, slen);
    out->symbol[slen] = '\0';

    out->library[0] = '\0';
    if (at) {
        const char *lib = at + 1;
        size_t llen = flen[0] - slen - 1;
        if (llen == 0)
            return "empty library name after '@'";
        if (llen >= sizeof out->library)
            return "library name longer than 255 bytes";
        for (size_t i = 0; i < llen; i++)
            if ((unsigned char)lib[i] <= ' ' || (unsigned char)lib[i] == 0x7f)
                return "library name contains a blank or a control character";
        memcpy(out->library, lib, llen);
        out->library[llen] = '\0';
    }

    out->kind = FSAFE_MUTEX;
    if (nf >= 2 && flen[1]) {
        const char *k = field[1];
        if (ieq(k, flen[1], "mutex"))
            out->kind = FSAFE_MUTEX;
        else if (ieq(k, flen[1], "rwlock"))
            out->kind = FSAFE_RWLOCK;
        else if (ieq(k, flen[1], "spin") || ieq(k, flen[1], "spinlock"))
            out->kind = FSAFE_SPINLOCK;
        else
            return "unknown kind (expected mutex, rwlock or spin)";
    }

    out->rank = 0;
    if (nf == 3 && flen[2]) {
        const char *r = field[2];
        size_t i = 0;
        int neg = 0;
        if (r[0] == '-' || r[0] == '+')
            neg = r[0] == '-', i = 1;
        if (i == flen[2])
            return "rank is not an integer";
        long long v = 0;
        for (; i < flen[2]; i++) {
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
        out->rank = (int)v;
    }
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

/* ---- resolution and registration ------------------------------------------- */
static const char *kind_name(int kind)
{
    return kind == FSAFE_RWLOCK ? "rwlock" : kind == FSAFE_SPINLOCK ? "spin" : "mutex";
}

static size_t kind_size(int kind)
{
    return kind == FSAFE_RWLOCK     ? sizeof(pthread_rwlock_t)
           : kind == FSAFE_SPINLOCK ? sizeof(pthread_spinlock_t)
                                    : sizeof(pthread_mutex_t);
}

/* The entry as the user wrote it, for messages. */
static void spec_text(const struct fsafe__lock_spec *s, char *buf, size_t size)
{
    size_t n = strlen(s->symbol);
    if (n >= size)
        n = size - 1;
    memcpy(buf, s->symbol, n);
    if (s->library[0] && n + 1 < size) {
        buf[n++] = '@';
        size_t l = strlen(s->library);
        if (l > size - 1 - n)
            l = size - 1 - n;
        memcpy(buf + n, s->library, l);
        n += l;
    }
    buf[n] = '\0';
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

static struct link_map *map_of(const void *addr, Dl_info *info, const ElfW(Sym) **sym)
{
    struct link_map *lm = NULL;
    *sym = NULL;
    if (!dladdr1(addr, info, (void **)&lm, RTLD_DL_LINKMAP))
        return NULL;
    if (!dladdr1(addr, info, (void **)sym, RTLD_DL_SYMENT))
        *sym = NULL;
    return lm;
}

/* The address the program's code uses for s, or NULL after one message. */
static void *resolve(const struct fsafe__lock_spec *s, const char *text)
{
    void *a;
    Dl_info info;
    const ElfW(Sym) *sym;
    if (s->library[0]) {
        void *h = dlopen(s->library, RTLD_NOW | RTLD_NOLOAD);
        if (!h) {
            fsafe__msg("FSAFE_LOCKS: %s: library '%s' is not loaded at startup (libraries "
                       "dlopen'ed later are not searched); not registered",
                       text, s->library);
            return NULL;
        }
        struct link_map *lib = NULL;
        dlinfo(h, RTLD_DI_LINKMAP, &lib);
        a = dlsym(h, s->symbol);
        struct link_map *lm = a ? map_of(a, &info, &sym) : NULL;
        /* A copy relocation moves the object into the main program, and the
         * library's code then uses that copy: prefer it. */
        void *d = dlsym(RTLD_DEFAULT, s->symbol);
        if (a && d && d != a) {
            struct link_map *dm = map_of(d, &info, &sym);
            if (dm && dm->l_prev == NULL)
                a = d, lm = dm;
        }
        dlclose(h); /* balances the RTLD_NOLOAD reference */
        if (a && lm != lib && lm && lm->l_prev != NULL) {
            map_of(a, &info, &sym);
            fsafe__msg("FSAFE_LOCKS: %s: the symbol is not defined in '%s' (found in %s); "
                       "not registered",
                       text, s->library, info.dli_fname ? info.dli_fname : "another object");
            return NULL;
        }
    } else {
        a = dlsym(RTLD_DEFAULT, s->symbol);
    }
    if (!a && s->library[0]) {
        fsafe__msg("FSAFE_LOCKS: %s: symbol not found in '%s'; not registered", text, s->library);
        return NULL;
    }
    if (!a) {
        fsafe__msg("FSAFE_LOCKS: %s: symbol not found in the program or the libraries loaded at "
                   "startup (it must be exported; libraries dlopen'ed later are not searched); "
                   "not registered",
                   text);
        return NULL;
    }
    if (map_of(a, &info, &sym) && sym && info.dli_saddr == a) {
        #if __ELF_NATIVE_CLASS == 64
        int t = ELF64_ST_TYPE(sym->st_info);
#else
        int t = ELF32_ST_TYPE(sym->st_info);
#endif
        if (t == STT_FUNC || t == STT_GNU_IFUNC) {
            fsafe__msg("FSAFE_LOCKS: %s: the symbol is a function, not a lock; not registered",
                       text);
            return NULL;
        }
        if (sym->st_size && sym->st_size < kind_size(s->kind)) {
            fsafe__msg("FSAFE_LOCKS: %s: the object is %lu bytes, too small for a %s (%lu); "
                       "not registered",
                       text, (unsigned long)sym->st_size, kind_name(s->kind),
                       (unsigned long)kind_size(s->kind));
            return NULL;
        }
    }
    if (!writable(a, kind_size(s->kind))) {
        fsafe__msg("FSAFE_LOCKS: %s: the object at %p is not in writable memory; not registered",
                   text, a);
        return NULL;
    }
    return a;
}

static int register_one(const struct fsafe__lock_spec *s, void *arg)
{
    (void)arg;
    char text[400];
    spec_text(s, text, sizeof text);
    void *a = resolve(s, text);
    if (!a)
        return 0;
    int r = fsafe_register_lock(a, s->kind, s->rank, s->symbol);
    if (r == 0) {
        if (fsafe__cfg.verbose) {
            Dl_info info;
            const char *where = dladdr(a, &info) && info.dli_fname && info.dli_fname[0]
                                    ? info.dli_fname
                                    : "the program";
            fsafe__msg("FSAFE_LOCKS: registered '%s' (%s, rank %d) at %p in %s", s->symbol,
                       kind_name(s->kind), s->rank, a, where);
        }
    } else if (r == EEXIST) {
        if (fsafe__cfg.verbose)
            fsafe__msg("FSAFE_LOCKS: %s at %p is already registered", text, a);
    } else {
        fsafe__msg("FSAFE_LOCKS: %s: registration failed (error %d)", text, r);
    }
    return 0;
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

void fsafe__locks_env_register(void)
{
    if (fsafe__cfg.locks)
        fsafe__locks_parse(fsafe__cfg.locks, register_one, report_bad, NULL);
}
