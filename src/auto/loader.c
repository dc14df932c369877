/* SPDX-License-Identifier: MIT */
/*
 * glibc's loader locks under auto mode: where dl_load_write_lock and
 * dl_load_lock are (read from _rtld_global, never guessed), auto mode's fork
 * taking dl_load_lock once every other thread is quiet, and the child's
 * fix-up of both.  Below the lock tracking (track.c asks whether a thread is
 * inside the loader) and the libc gates (libc.c counts dl_iterate_phdr
 * callbacks in fsafe__in_iterate); calls only svc.c.  fsafe__loader_postfork_child
 * runs in the child of a multithreaded parent: async-signal-safe calls only.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "auto.h"

/* This thread's dl_iterate_phdr calls in progress (libc.c's interposer): in
 * the child, whether the forker itself holds dl_load_write_lock (a fork from
 * a callback). */
__thread int fsafe__in_iterate __attribute__((tls_model("initial-exec")));

typedef int (*iterate_cb)(struct dl_phdr_info *, size_t, void *);

/* ---- dl_load_write_lock ------------------------------------------------------------ */
static pthread_mutex_t *write_lock; /* NULL when it could not be found */

/*
 * Both probes look for a recursive mutex in _rtld_global that this thread
 * holds inside a loader call and not outside.  The mutexes are found once,
 * by their kind word alone (recursive, as glibc's loader locks are made),
 * before either probe: each probe then reads only those, not every word of
 * _rtld_global again (four scans of it were about 13,000 instructions of
 * every process's start-up: issue 26).  A kind word can be any field that
 * happens to hold 1; the ownership test in owned_by() sorts them out.  More
 * candidates than MAX_CAND: no probe (the locks stay unknown, as when
 * _rtld_global cannot be read).
 */
#define MAX_CAND 64
static pthread_mutex_t *cand[MAX_CAND];
static int ncand = -1; /* -1: not found (yet), or too many */

static void find_candidates(const char *base, size_t size)
{
    int n = 0;
#ifdef __GLIBC__
    for (size_t off = 0; off + sizeof(pthread_mutex_t) <= size; off += sizeof(long)) {
        pthread_mutex_t *m = (pthread_mutex_t *)(void *)(base + off);
        if ((fsafe__gl_mutex_kind(m) & FSAFE__GL_KIND_LOCAL) != PTHREAD_MUTEX_RECURSIVE_NP)
            continue;
        if (n == MAX_CAND)
            return; /* ncand stays -1 */
        cand[n++] = m;
    }
#else
    (void)base, (void)size;
#endif
    ncand = n;
}

/* The candidates that thread tid holds now. */
static int owned_by(pid_t tid, pthread_mutex_t **out, int max)
{
    int n = 0;
#ifdef __GLIBC__
    for (int i = 0; i < ncand; i++) {
        pthread_mutex_t *m = cand[i];
        if (*fsafe__gl_mutex_owner(m) == tid && *fsafe__gl_mutex_word(m) != 0 &&
            fsafe__gl_mutex_count(m) >= 1 &&
            (fsafe__gl_mutex_kind(m) & FSAFE__GL_KIND_LOCAL) == PTHREAD_MUTEX_RECURSIVE_NP) {
            if (n < max)
                out[n] = m;
            n++;
        }
    }
#else
    (void)tid, (void)out, (void)max;
#endif
    return n;
}

struct probe {
    int on; /* started, not yet finished */
    pid_t tid;
    pthread_mutex_t *before[8];
    int nbefore;
    pthread_mutex_t *found;
};

static int probe_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info, (void)size;
    struct probe *p = data;
    pthread_mutex_t *now[8];
    int n = owned_by(p->tid, now, 8), fresh = 0;
    if (n > 8)
        return 1;
    for (int i = 0; i < n; i++) {
        int old = 0;
        for (int j = 0; j < p->nbefore && j < 8; j++)
            old |= p->before[j] == now[i];
        if (!old) {
            p->found = now[i];
            fresh++;
        }
    }
    if (fresh != 1)
        p->found = NULL; /* not sure which: leave it alone */
    return 1;            /* once is enough */
}

/* Starts a probe of ld.so's _rtld_global: the candidates this thread holds
 * now.  Returns 0, or -1 if _rtld_global cannot be read. */
static int probe_start(struct probe *p)
{
    static int looked;
    if (!looked) {
        looked = 1;
        void *at = dlsym(RTLD_DEFAULT, "_rtld_global");
        Dl_info di;
        const ElfW(Sym) *sym = NULL;
        int (*addr1)(const void *, Dl_info *, void **, int) =
            NEXT(int (*)(const void *, Dl_info *, void **, int), "dladdr1");
        if (!at || !addr1(at, &di, (void **)&sym, RTLD_DL_SYMENT) || !sym ||
            sym->st_size < sizeof(pthread_mutex_t))
            return -1;
        find_candidates(at, sym->st_size);
    }
    if (ncand < 0)
        return -1;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 30)
    pid_t tid = gettid(); /* (syscall() is this library's own, watch.c: a first
                           * call through it resolves the real one) */
#else
    pid_t tid = (pid_t)syscall(SYS_gettid);
#endif
    *p = (struct probe){.on = 1, .tid = tid};
    p->nbefore = owned_by(p->tid, p->before, 8);
    return 0;
}

/* Finds dl_load_write_lock: the one recursive mutex in _rtld_global that a
 * dl_iterate_phdr callback holds.  Parent only. */
static void find_write_lock(void)
{
    struct probe p;
    if (probe_start(&p) != 0)
        return;
    int (*iter)(iterate_cb, void *) = NEXT(int (*)(iterate_cb, void *), "dl_iterate_phdr");
    iter(probe_cb, &p);
    write_lock = p.found;
}

/* ---- dl_load_lock ------------------------------------------------------------------ */
/*
 * glibc's fork re-initialises dl_load_lock in the child (2.36
 * posix/fork.c) without taking it in the parent.  A thread inside dlopen or
 * dlclose holds it while it changes the link map, so a fork then gives the
 * child a half-changed map, and the child's next dlopen aborts on
 * dl-open.c's assertion that _r_debug's r_state is RT_CONSISTENT (issue 25:
 * two threads dlopen and dlclose libm.so.6 by name, 35% of children died).
 * The loader gate cannot cover a bare name (its call must stay a tail call,
 * above), nor the lazy binder, which takes the lock to add a dependency.
 * So auto mode's fork takes dl_load_lock itself, once the wait found every
 * other thread quiet, and lets go after the fork; a thread that holds it is
 * never parked at a tracked lock (a constructor that locks runs on).
 *
 * Its address: the one recursive mutex in _rtld_global that this thread
 * holds inside dlsym (which takes it around the lookup) and not outside,
 * read from the resolver of an IFUNC symbol of this library that dlsym
 * runs (glibc's dl-sym.c calls resolvers of the symbols it returns).
 */
static pthread_mutex_t *load_lock; /* NULL when it could not be found */
static struct probe load_probe;
static int load_taken; /* the forker took it for this fork */

typedef void (*probe_fn)(void);
static void ldprobe_body(void)
{
}

__attribute__((no_sanitize_address, no_sanitize("thread"))) static probe_fn ldprobe_resolve(void)
{
    struct probe *p = &load_probe;
    if (p->on)
        probe_cb(NULL, 0, p);
    return ldprobe_body;
}

FSAFE_EXPORT void fsafe__ldprobe(void) __attribute__((ifunc("ldprobe_resolve")));

static void find_load_lock(void)
{
    if (probe_start(&load_probe) != 0)
        return;
    void *sym = dlsym(RTLD_DEFAULT, "fsafe__ldprobe");
    if (!sym) {
        /* Loaded RTLD_LOCAL: look it up in this library itself. */
        Dl_info di;
        void *h = dladdr((void *)find_load_lock, &di) && di.dli_fname
                      ? NEXT(void *(*)(const char *, int), "dlopen")(di.dli_fname,
                                                                     RTLD_LAZY | RTLD_NOLOAD)
                      : NULL;
        if (h) {
            sym = dlsym(h, "fsafe__ldprobe");
            NEXT(int (*)(void *), "dlclose")(h);
        }
    }
    if (sym && load_probe.found != write_lock)
        load_lock = load_probe.found;
    load_probe.on = 0;
}

int fsafe__loader_holds(pid_t tid)
{
#ifdef __GLIBC__
    pthread_mutex_t *m = load_lock;
    return m && AO_int_load((const unsigned *)fsafe__gl_mutex_owner(m)) == (unsigned)tid;
#else
    (void)tid;
    return 0;
#endif
}

int fsafe__loader_take(pid_t *holder)
{
#ifdef __GLIBC__
    pthread_mutex_t *m = load_lock;
    *holder = 0;
    if (!m || load_taken)
        return 0;
    pid_t me = (pid_t)syscall(SYS_gettid);
    pid_t owner = (pid_t)AO_int_load((const unsigned *)fsafe__gl_mutex_owner(m));
    /* A fork from a dlopen constructor, a dlclose destructor or a
     * dl_iterate_phdr callback: other threads' loader calls wait for this
     * thread, not the other way round. */
    if (owner == me || fsafe__in_iterate > 0)
        return 0;
    if (fsafe__real_mutex_trylock(m) != 0) {
        *holder = owner;
        return -1;
    }
    load_taken = 1;
#else
    *holder = 0;
#endif
    return 0;
}

void fsafe__loader_release(void)
{
    if (load_taken) {
        load_taken = 0;
        fsafe__real_mutex_unlock(load_lock);
    }
}

/*
 * The real functions behind the gates are found at their first call
 * (fsafe__next_sym), not here: dlsym for all of them cost every process
 * about 100,000 instructions before main (issue 26), and most programs call
 * a few.  A first call in the child of a fork runs dlsym there; glibc's
 * fork re-initialises the loader's lock and malloc's in the child (and auto
 * mode's fork takes the loader's lock across it), so that lookup finds
 * them free.
 */
void fsafe__loader_init(void)
{
    find_write_lock();
    find_load_lock();
}

/* Async-signal-safe: plain loads and stores, and gettid. */
void fsafe__loader_postfork_child(void)
{
#ifdef __GLIBC__
    if (load_taken) {
        /* glibc re-initialised it already (2.36); should a release not, the
         * forker's hold by its old thread id would lock every dlopen out. */
        static const pthread_mutex_t fresh = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
        if (*fsafe__gl_mutex_word(load_lock) != 0)
            memcpy(load_lock, &fresh, sizeof fresh);
        load_taken = 0;
    }
    pthread_mutex_t *m = write_lock;
    if (!m || *fsafe__gl_mutex_word(m) == 0)
        return;
    pid_t me = (pid_t)syscall(SYS_gettid);
    if (*fsafe__gl_mutex_owner(m) == me)
        return;
    if (fsafe__in_iterate > 0) {
        /* The forker's own hold (a fork from a callback): the callback's
         * return releases it, as the child's thread. */
        *fsafe__gl_mutex_owner(m) = me;
    } else {
        /* Held by a thread that does not exist here. */
        static const pthread_mutex_t fresh = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
        memcpy(m, &fresh, sizeof fresh);
    }
#endif
}
