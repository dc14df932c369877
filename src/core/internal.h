/* SPDX-License-Identifier: MIT */
/*
 * Declarations shared between the files of libfsafe.so (src/core and
 * src/retrofit; fsafe__ prefix).  Nothing here is exported: the library is
 * built with hidden visibility and only FSAFE_API functions, fork() and the
 * interposers of src/core/fork.c leave it.  What libfsafe-auto.so may see is
 * in src/common/contract.h, which this header includes; the layers and the
 * order calls may run in are in src/README.md (checked by test/layers.sh).
 */
#ifndef FSAFE_INTERNAL_H
#define FSAFE_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#include "fsafe.h"
#include "contract.h"
#include "glibc.h"
#include "musl.h"

/* Everything declared below is this library's own: the compiler then reaches
 * another file's variable directly, not through the GOT (one instruction
 * fewer per access on a lock call's path; -fvisibility=hidden covers only
 * definitions). */
#pragma GCC visibility push(hidden)

/* ---- config.c: the FSAFE_* option table (struct fsafe__config), read once -- */
extern struct fsafe__config fsafe__cfg;
void fsafe__config_init(void);
void fsafe__config_set_envp(char **envp); /* from the constructor's arguments */
/* FSAFE_VERBOSE's first line: every setting, and the churn count in effect. */
void fsafe__config_show(int churn_effective);
/* Parsers shared with tests and the fuzzer: 0 on success, -1 on a bad value. */
int fsafe__parse_bool(const char *s, int *out);
int fsafe__parse_long(const char *s, long min, long max, long *out);
int fsafe__parse_churn(const char *s, int *out);

/* ---- diag.c: messages through write(2), no malloc, no stdio --------------- */
/* Formats %s %d %u %ld %lu %llu %x %p and %%; always prefixes "fsafe[PID]: " and
 * ends the line.  Async-signal-safe.  Falls back to a private duplicate of the
 * log descriptor (fsafe__diag_init) when the program has closed it. */
void fsafe__msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* At init only: want_name: reads the program's name (fsafe__prog_name; "?"
 * otherwise); keep_fd: duplicates the log fd. */
void fsafe__diag_init(int keep_fd, int want_name);
void fsafe__diag_set_log_fd(int fd); /* FSAFE_LOG_FD (default 2) */
const char *fsafe__prog_name(void); /* "?" when unknown; set at init */
int fsafe__format(char *buf, size_t size, const char *fmt, va_list ap);
uint64_t fsafe__now_ns(void);
pid_t fsafe__gettid(void);

/* ---- api.c ------------------------------------------------------------------ */
/* 1 in the copy of the core that is not the one acting (two are mapped:
 * libfsafe.so's and libfsafe-auto.so's; api.c says which acts). */
int fsafe__copy_dormant(void);

/* ---- locks_env.c: FSAFE_LOCKS, locks registered by symbol name ------------- */
/* One parsed entry of FSAFE_LOCKS: symbol[@library][:kind[:rank]] (README). */
struct fsafe__lock_spec {
    char symbol[128];  /* NUL-terminated, at most 127 bytes */
    char library[256]; /* "" when no @library was given */
    int kind;          /* FSAFE_MUTEX (default), FSAFE_RWLOCK, FSAFE_SPINLOCK or
                          FSAFE__SPEC_LLL */
    int rank;          /* default 0 */
    int has_offset;    /* symbol+OFFSET given (even +0) */
    unsigned long offset; /* bytes from the symbol's address, at most 0x7fffffff */
};
/* The spec's kind "lll": glibc's internal low-level lock (an int: 0 free, 1
 * held, 2 held with waiters; private futex), registered as an ops lock. */
#define FSAFE__SPEC_LLL 16
/*
 * Parses spec (NULL allowed; any bytes up to the terminating NUL).  Entries are
 * separated by ','; blanks around an entry are ignored, and so are empty
 * entries.  Calls on_entry for each valid entry (a non-zero return stops the
 * parse) and on_error for each invalid one, with the entry's bytes (not
 * NUL-terminated) and a static reason.  Either callback may be NULL.  Never
 * allocates and never prints; uses one struct fsafe__lock_spec of stack.
 * Returns the number of valid entries passed to on_entry.
 */
int fsafe__locks_parse(const char *spec, int (*on_entry)(const struct fsafe__lock_spec *, void *),
                       void (*on_error)(const char *entry, size_t len, const char *why, void *),
                       void *arg);
/* Resolves and registers FSAFE_LOCKS; once, at init, after fsafe__init is done.
 * Entries whose library is not loaded yet wait for a dlopen: whichever
 * library interposes dlopen and dlclose (core/interpose.c, or auto mode's
 * through the services) calls the three hooks below around them. */
void fsafe__locks_env_register(void);
/* 0 when the hooks have nothing to do (no entry waiting, none registered
 * late, or a child whose parent was inside one): the wrappers then pass
 * straight through. */
int fsafe__locks_dl_watch(void);
/* After a dlopen that returned a handle, and after every dlclose. */
void fsafe__locks_dl_loaded(void);
/* Before a dlclose. */
void fsafe__locks_dl_unloading(void);
/* On the forking thread, inside its fork, before it calls into libc from
 * another library's atfork handler: the walk gives back the "lll" locks it
 * holds (fsafe__walk_give_back_ops). */
void fsafe__locks_give_back(void);
/* 0 if the bytes at p plausibly hold an initialised lock of that kind (glibc's
 * layout), else a static reason.  Reads only. */
const char *fsafe__lock_implausible(const void *p, int kind);

/* ---- elfsym.c: symbol tables from the objects' files (libelf) -------------- */
enum {
    FSAFE__ELF_FOUND = 0,
    FSAFE__ELF_ABSENT,     /* the file's symbol tables do not define it */
    FSAFE__ELF_STRIPPED,   /* no .symtab and no debug file: only .dynsym was searched */
    FSAFE__ELF_UNREADABLE, /* the file cannot be opened or is not ELF */
};
struct fsafe__elf_def {
    uintptr_t addr;       /* run-time address (object base + st_value) */
    uint64_t size;        /* st_size */
    int type, bind;       /* STT_*, STB_* */
    int count;            /* distinct definitions of the name in the object */
    int exported;         /* defined in .dynsym, not local */
    int from_debug;       /* found in the separate debug file */
    char debug_file[96];  /* STRIPPED: the debug file looked for */
};
/*
 * The reader's entry points, defined in elfsym.c: libfsafe-elf.so (libfsafe.so
 * does not link libelf), or built into libfsafe.a.  Exported (default
 * visibility), so that libfsafe.so's weak references to them (elf_reader.c)
 * find them in libfsafe-elf.so.  libfsafe.so's other files call them only
 * through fsafe__elf below, never by name.
 */
#pragma GCC visibility push(default)
/* Looks name up in the object loaded from path at base (dlpi_addr; for the
 * program, path "/proc/self/exe").  Files are mapped once and cached.  Not for
 * the fork path: takes a mutex, may malloc and open files. */
int fsafe__elf_find(const char *path, uintptr_t base, const char *name, struct fsafe__elf_def *out);
/* Whether the object's dynamic symbol table names (imports or defines) a
 * symbol starting with one of prefixes (NULL-terminated): 1, 0, or -1 when
 * it cannot tell (unreadable, no .dynsym).  Same rules as fsafe__elf_find. */
int fsafe__elf_names_any(const char *path, uintptr_t base, const char *const *prefixes);
/*
 * Writes what addr is, for reports: "mylock+0x30 (libfoo.so.1)" for data,
 * "libfoo.so.1+0x1234 (func+0x12)" for code, from .symtab, .dynsym or the
 * debug file; else "libfoo.so.1+0x1234", else the raw address.  Returns the
 * length written (0 if nothing; truncated to size-1).  Thread-safe; not for the
 * fork path or a child.
 */
int fsafe__addr_describe(const void *addr, char *out, size_t size);
/* In a child: a cache left locked by a thread of the parent is abandoned. */
void fsafe__elf_postfork_child(void);
#pragma GCC visibility pop

/* ---- elf_reader.c: libfsafe.so's way to the reader ------------------------ */
struct fsafe__elf_reader {
    int (*find)(const char *path, uintptr_t base, const char *name, struct fsafe__elf_def *out);
    int (*names_any)(const char *path, uintptr_t base, const char *const *prefixes);
    int (*describe)(const void *addr, char *out, size_t size);
    void (*postfork_child)(void);
};
/* The functions above when the reader is loaded with libfsafe.so (preloaded
 * or linked: in the global scope at start-up), all NULL when it is not; bound
 * by the loader before any constructor runs, read-only after.  Every caller
 * checks.  In libfsafe.a, always the built-in reader. */
extern const struct fsafe__elf_reader fsafe__elf;
/* For reports that name addresses (auto mode's, in the parent after a fork):
 * fsafe__elf.describe, else libfsafe-elf.so loaded for it once, else the
 * exported name dladdr finds.  Same output and return as fsafe__addr_describe.
 * In the parent after a fork (other threads running again): never before
 * the fork or in a child. */
int fsafe__elf_describe(const void *addr, char *out, size_t size);

/* ---- stats.c: the counters, FSAFE_STATS at exit ------------------------------ */
extern struct fsafe_stats fsafe__stats; /* updated by the forker only */
/* fsafe_get_stats: the first size bytes of the counters, locks_registered filled in. */
void fsafe__stats_read(struct fsafe_stats *out, size_t size);
void fsafe__stats_setup(void); /* at init: remembers which process prints */
void fsafe__threads_check(void); /* FSAFE_WARN_THREADS, before a fork (forker only) */

/* ---- the registry: registry_store.c (entries), registry_intern.c (names),
 * walk.c (the fork walk), registry.c (the writers)
 * (The order files may call each other in: src/README.md, "Layers".) */
enum fsafe__how {
    FSAFE__HOW_NONE = 0,     /* not taken */
    FSAFE__HOW_ACQUIRED = 1, /* taken by fork: release in parent, reset in child */
    FSAFE__HOW_CALLER = 2,   /* already held by the forking thread: left to it */
};

#define FSAFE__KIND_OPS 4      /* registered with fsafe_register_ops() */
#define FSAFE__MEM_SHARED 0x1  /* the lock word is shared with the child */

/* Slots in chunks that double in size, never moved or unmapped (the entry
 * store, the intern tables): chunk k holds chunk0 << k slots, the first of
 * them slot number fsafe__chunk_first(k). */
static inline size_t fsafe__chunk_first(int k, size_t chunk0)
{
    return (chunk0 << k) - chunk0;
}
static inline int fsafe__chunk_of(uint64_t slot, size_t chunk0)
{
    return 63 - __builtin_clzll(slot / chunk0 + 1);
}

/* registry_intern.c: interned fixed-size blobs (names, ops tables); writer lock
 * held for all but fsafe__intern_at.  Id 0 is the all-zero blob. */
#define FSAFE__INTERN_CHUNK0 64
#define FSAFE__INTERN_NCHUNKS 26 /* up to 2^32 slots */
#define FSAFE__INTERN_MAX 64     /* largest blob */
#define FSAFE__INTERN_NOMEM UINT32_MAX
struct fsafe__intern {
    size_t size; /* of a blob, at most FSAFE__INTERN_MAX */
    void *chunk[FSAFE__INTERN_NCHUNKS];
    int nchunks;
    size_t used; /* slots handed out in the last chunk */
    uint32_t *bucket;
    size_t nbuckets, live;
    uint32_t free;
};
uint32_t fsafe__intern_get(struct fsafe__intern *t, const void *blob); /* or INTERN_NOMEM */
void fsafe__intern_put(struct fsafe__intern *t, uint32_t id);
const void *fsafe__intern_at(const struct fsafe__intern *t, uint32_t id);
void fsafe__intern_recount_begin(struct fsafe__intern *t);
void fsafe__intern_recount_ref(struct fsafe__intern *t, uint32_t id);
int fsafe__intern_recount_end(struct fsafe__intern *t);
void *fsafe__map_zeroed(size_t bytes); /* zeroed pages, or NULL */

/* One registered lock, writer-side (registry_store.c): 64 bytes.  The fork walk
 * reads its snapshot record instead, and comes here only when it has to wait,
 * warn or call an ops lock's callbacks. */
struct fsafe__entry {
    void *lock;
    AO_t next;                       /* ordered list; store_release (child's rebuild) */
    union {
        struct fsafe__entry *prev;   /* in the ordered list */
        struct fsafe__entry *free_next; /* on the free list */
    };
    /* Written by the forker only when it had to wait. */
    uint64_t max_wait_ns;
    int rank;
    uint32_t index;                  /* slot number (fsafe__store_entry) */
    uint32_t rec;                    /* its record in snapshot snap_gen (walk.c) */
    uint32_t snap_gen;               /* 0: in no snapshot */
    uint32_t name;                   /* fsafe__entry_name() */
    uint32_t ops;                    /* fsafe__entry_ops(); KIND_OPS only */
    unsigned char kind;              /* FSAFE_MUTEX, FSAFE_RWLOCK, FSAFE_SPINLOCK, KIND_OPS */
    unsigned char mem;               /* FSAFE__MEM_* */
    unsigned char warned;            /* FSAFE_WARN_MS said so for this wait */
    unsigned char unseen;            /* the child's rebuild: not (yet) found in the list */
};
/* The docs (src/README.md, test/bench/README.md) and the memory figures quote
 * these sizes; a field added must keep them or change them there too. */
_Static_assert(sizeof(struct fsafe__entry) == 64, "a registered lock's entry is 64 bytes");
const char *fsafe__entry_name(const struct fsafe__entry *e); /* any thread, e live */
const struct fsafe_lock_ops *fsafe__entry_ops(const struct fsafe__entry *e);

/* registry_store.c: all but fsafe__store_count and fsafe__store_entry need the
 * writer lock. */
int fsafe__store_lock(void);    /* 0, or ENOMEM (not held) */
int fsafe__store_trylock(void); /* 0, EBUSY, EDEADLK (this thread holds it) or ENOMEM */
void fsafe__store_unlock(void);
struct fsafe__entry *fsafe__store_find(const void *lock);
/* EEXIST, ENOMEM; name may be NULL, ops NULL but for KIND_OPS. */
int fsafe__store_add(struct fsafe__entry **out, void *lock, int rank, const char *name,
                     const struct fsafe_lock_ops *ops);
void fsafe__store_link(struct fsafe__entry *e);
void fsafe__store_unlink(struct fsafe__entry *e);
void fsafe__store_free(struct fsafe__entry *e);
struct fsafe__entry *fsafe__store_first(void); /* then (struct fsafe__entry *)e->next */
struct fsafe__entry *fsafe__store_entry(uint32_t index);
uint64_t fsafe__store_count(void);
int fsafe__store_postfork_child(void); /* non-zero: a writer was inside */

/* walk.c: a lock as the fork walk sees it, 16 bytes in a dense rank-ordered
 * array that the walk reads and, on the common path, never writes.  exc 0
 * means the walk's default: HELD in a full walk, NONE in a walk of a
 * single-threaded process (walk.c). */
enum { FSAFE__EXC_DFLT = 0, FSAFE__EXC_CALLER = 1, FSAFE__EXC_NONE = 2, FSAFE__EXC_HELD = 3 };
struct fsafe__rec {
    void *lock;          /* for KIND_OPS, the key */
    uint32_t entry;      /* the entry's slot number */
    unsigned char kind;
    unsigned char mem;
    unsigned char exc;   /* walker-only, this walk: FSAFE__EXC_* */
    unsigned char dead;  /* AO_char: set by unregister */
};
_Static_assert(sizeof(struct fsafe__rec) == 16, "a walk record is 16 bytes");
/* Fork side: takes every live lock in rank order.  Returns the number taken,
 * or -1 when it gave everything back (another thread waits at the fork gate,
 * as contended() says, or a lock's holder seemed to wait for one the walk
 * held): the caller backs off and walks again. */
long fsafe__walk_prefork(int (*contended)(void));
void fsafe__walk_postfork_parent(void);
/* 1 when the finished walk held mutex lock and hands it to the caller (the
 * forking thread's own lock call during the fork); 0 otherwise. */
int fsafe__walk_handover(const void *lock);
int fsafe__walk_give_back_ops(const struct fsafe_lock_ops *ops);
void fsafe__walk_postfork_child(void);
void fsafe__walk_postfork_child_orphaned(void); /* child of a fork that bypassed the gate */
void fsafe__walk_postfork_child_fixup(void);    /* child, every fork */
void fsafe__walk_poll(void);           /* walker: let go of unregistered locks */
int fsafe__walk_is_self(void);         /* the calling thread is walking */
/* The last walk ran in a single-threaded process: it took only the locks that
 * looked held (the forker's own) and ops locks; free mutexes stay untouched. */
int fsafe__walk_was_light(void);
/* Non-zero when a fork needs no walk at all: one thread, the snapshot up to
 * date, and every live record a mutex that looks free.  Reads only. */
int fsafe__walk_unneeded(void);
/* Writers (registry.c): */
void fsafe__walk_invalidate(void);     /* the store changed */
uint64_t fsafe__walk_retire(const struct fsafe__entry *e, AO_t *epoch);
void fsafe__walk_wait(uint64_t ticket, AO_t epoch);
/* Tests only: how long the walk waits for one lock while holding others before
 * it gives everything back (default 20; 0 = never). */
void fsafe__registry_set_order_backoff_ms(unsigned ms);

/* registry.c: fsafe_register_lock, fsafe_register_ops and
 * fsafe_unregister_lock after init (validation included; errnos as there). */
int fsafe__registry_add_lock(void *lock, int kind, int rank, const char *name);
int fsafe__registry_add_ops(void *key, const struct fsafe_lock_ops *ops, int rank,
                            const char *name);
int fsafe__registry_remove(void *lock);
uint64_t fsafe__registry_count(void);
/* Calls fn for each registered entry (writer lock held); for stats at exit. */
void fsafe__registry_foreach(void (*fn)(const struct fsafe__entry *, void *), void *arg);

/* ---- lockops.c: per-kind acquire / release / reset ----------------------- */

/* Returns FSAFE__HOW_*; NONE when the lock could not or need not be taken.
 * Polls while it waits; abandons the wait when abandon(r) returns non-zero.
 * abandon NULL: never waits (a process with one thread, where a lock held by
 * anyone but the caller cannot come free before the fork), except for an ops
 * lock, whose acquire callback blocks as it always does. */
int fsafe__lock_acquire(const struct fsafe__rec *r,
                        int (*abandon)(const struct fsafe__rec *, uint64_t waited_ns));

/* The walk's per-lock fast paths (fsafe__mutex_reset_plain,
 * fsafe__mutex_looks_free) are in glibc.h. */
void fsafe__lock_postfork_parent(const struct fsafe__rec *r);
/* Async-signal-safe.  how: FSAFE__HOW_ACQUIRED or FSAFE__HOW_CALLER;
 * orphaned: the holder of the caller's holds is gone. */
void fsafe__lock_postfork_child(const struct fsafe__rec *r, int how, int orphaned);
/* Async-signal-safe: a mutex, rwlock or spinlock re-initialised unlocked, with
 * its attributes (auto mode's child reset). */
void fsafe__lock_reset_unlocked(void *lock, int kind);
int fsafe__lock_mem_shared(const void *lock, int kind); /* asks /proc/self/maps */
/* 1 if another thread is known to wait for this lock (held by the caller),
 * 0 if not, -1 if the lock does not show it. */
int fsafe__lock_has_waiters(const void *lock, int kind);

/* ---- maps.c: /proc/self/maps without malloc --------------------------------- */
/* 0 with the mapping's "rwxp" permissions and its end address; -1 when no
 * mapping holds addr, -2 when /proc/self/maps cannot be read. */
int fsafe__maps_lookup(const void *addr, char perms[4], uintptr_t *end);

/* ---- api.c: the exported entry points ------------------------------------- */
/* Once, from the constructor or the first entry point called before it; every
 * other caller waits until it is done. */
void fsafe__init(void);

/* ---- fork.c: the fork path ------------------------------------------------ */
void fsafe__fork_setup(void); /* at init: the real fork, the atfork handlers */
pid_t fsafe__fork(void);      /* fsafe_fork() after init */
/* fsafe__ext_attach() after init (see src/common/contract.h). */
int fsafe__fork_attach(const struct fsafe__ext_ops *ops, struct fsafe__ext_services *out);
/* Non-zero while the calling thread runs fsafe's fork protocol. */
int fsafe__in_fork_self(void);
int fsafe__gate_contended(void); /* another thread waits to fork */

void fsafe__vmsg(const char *fmt, va_list ap);

/* ---- churn.c: throwaway threads ------------------------------------------ */
void fsafe__churn_before_fork(void);
int fsafe__churn_set(int count); /* fsafe_set_churn */
int fsafe__churn_effective(void); /* the count that will be used, 0 = off */

#pragma GCC visibility pop

#endif /* FSAFE_INTERNAL_H */
