/* SPDX-License-Identifier: MIT */
/*
 * Declarations shared between fsafe's source files (fsafe__ prefix).  Nothing
 * here is exported: the library is built with hidden visibility and only
 * FSAFE_API functions and fork() leave it.
 */
#ifndef FSAFE_INTERNAL_H
#define FSAFE_INTERNAL_H

#define AO_REQUIRE_CAS
#include <atomic_ops.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#include "fsafe.h"

#if !defined(AO_HAVE_compare_and_swap_full) || !defined(AO_HAVE_load_acquire) ||                 \
    !defined(AO_HAVE_store_release) || !defined(AO_HAVE_fetch_and_add_full) ||                   \
    !defined(AO_HAVE_nop_full)
#error "fsafe needs AO_compare_and_swap_full, AO_load_acquire, AO_store_release, AO_fetch_and_add_full and AO_nop_full"
#endif

#define FSAFE_EXPORT __attribute__((visibility("default")))
/* The few functions every fork runs, even with nothing registered, live
 * together in .text.hot: a child faults in file-backed text pages one by one,
 * so one page instead of several is measurably cheaper per fork. */
#define FSAFE_FORK_PATH __attribute__((hot, noinline))

/* ---- config.c: the FSAFE_* option table, read once ------------------------ */
struct fsafe__config {
    int verbose;       /* FSAFE_VERBOSE */
    int stats;         /* FSAFE_STATS */
    long warn_ms;      /* FSAFE_WARN_MS, 0 = off */
    int flush;         /* FSAFE_FLUSH */
    int warn_threads;  /* FSAFE_WARN_THREADS */
    int churn;         /* FSAFE_CHURN: count, or FSAFE_CHURN_AUTO */
    int log_fd;        /* FSAFE_LOG_FD, default 2 */
    const char *locks; /* FSAFE_LOCKS, NULL = unset (points into environ) */
    int auto_mode;     /* FSAFE_AUTO: 1 on, 0 off, -1 unset (on when libfsafe-auto is loaded) */
    long auto_wait_ms; /* FSAFE_AUTO_WAIT_MS: bound on fork's wait for tracked locks */
    int auto_keep;     /* FSAFE_AUTO_ON_TIMEOUT=keep: leave still-held locks as they are */
};
extern struct fsafe__config fsafe__cfg;
void fsafe__config_init(void);
void fsafe__config_set_envp(char **envp); /* from the constructor's arguments */
/* Parsers shared with tests and the fuzzer: 0 on success, -1 on a bad value. */
int fsafe__parse_bool(const char *s, int *out);
int fsafe__parse_long(const char *s, long min, long max, long *out);
int fsafe__parse_churn(const char *s, int *out);

/* ---- diag.c: messages through write(2), no malloc, no stdio --------------- */
/* Formats %s %d %u %ld %lu %llu %x %p and %%; always prefixes "fsafe[PID]: " and
 * ends the line.  Async-signal-safe.  Falls back to a private duplicate of the
 * log descriptor (fsafe__diag_init) when the program has closed it. */
void fsafe__msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* At init only: reads the program's name; keep_fd: duplicate the log fd. */
void fsafe__diag_init(int keep_fd);
const char *fsafe__prog_name(void); /* "?" when unknown; set at init */
int fsafe__format(char *buf, size_t size, const char *fmt, va_list ap);
uint64_t fsafe__now_ns(void);
pid_t fsafe__gettid(void);

/* ---- locks_env.c: FSAFE_LOCKS, locks registered by symbol name ------------- */
/* One parsed entry of FSAFE_LOCKS: symbol[@library][:kind[:rank]] (README). */
struct fsafe__lock_spec {
    char symbol[128];  /* NUL-terminated, at most 127 bytes */
    char library[256]; /* "" when no @library was given */
    int kind;          /* FSAFE_MUTEX (default), FSAFE_RWLOCK or FSAFE_SPINLOCK */
    int rank;          /* default 0 */
};
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
/* Resolves and registers FSAFE_LOCKS; once, at init, after fsafe__init is done. */
void fsafe__locks_env_register(void);

/* ---- stats.c: FSAFE_STATS at exit ------------------------------------------ */
void fsafe__stats_setup(void); /* at init: remembers which process prints */
void fsafe__threads_check(void); /* FSAFE_WARN_THREADS, before a fork (forker only) */

/* ---- registry.c: the lock registry ------------------------------------------ */
enum fsafe__how {
    FSAFE__HOW_NONE = 0,     /* not taken */
    FSAFE__HOW_ACQUIRED = 1, /* taken by fork: release in parent, reset in child */
    FSAFE__HOW_CALLER = 2,   /* already held by the forking thread: left to it */
};

#define FSAFE__KIND_OPS 4      /* registered with fsafe_register_ops() */
#define FSAFE__MEM_SHARED 0x1  /* the lock word is shared with the child */

struct fsafe__entry {
    /* First cache line: what the fork walk, the parent's release and the
     * child's reset read.  None of it is written on the fork path: every write
     * to a registry page after a fork is a page fault, so the per-fork state
     * lives in dense arrays instead (the state words, and the held list). */
    AO_t *st;                        /* this entry's state word (registry.c) */
    AO_t next;                       /* order list; fork-visible, store_release */
    void *lock;
    unsigned short kind;             /* FSAFE_MUTEX, FSAFE_RWLOCK, FSAFE_SPINLOCK, KIND_OPS */
    unsigned short mem;              /* FSAFE__MEM_* */
    int rank;
    uint32_t index;                  /* slot number, for the held list's capacity */
    /* Written by the forker only when it had to wait. */
    unsigned char warned;            /* FSAFE_WARN_MS said so for this wait */
    uint64_t max_wait_ns;            /* written only when fork had to wait */
    /* Colder: writers, ops, messages. */
    struct fsafe__entry *prev;       /* writer-only */
    struct fsafe__entry *aux_next;   /* writer-only: free list and limbo */
    AO_t limbo_epoch;                /* writer-only */
    struct fsafe_lock_ops ops;       /* KIND_OPS only */
    char name[FSAFE_NAME_MAX];
} __attribute__((aligned(64)));

void fsafe__registry_child_fixup(void);
/* Fork side: take every live lock in rank order; release them again. */
/* Returns 0, or -1 when it gave everything back because another thread waits
 * at the fork gate (the caller backs off and walks again). */
int fsafe__registry_acquire_all(void);
void fsafe__registry_release_parent(void);
void fsafe__registry_reset_child(void);
/* Child of a fork that bypassed the gate while another thread held it. */
void fsafe__registry_reset_orphaned(void);
uint64_t fsafe__registry_count(void);
/* Calls fn for each registered entry (writer lock held); for stats at exit. */
void fsafe__registry_foreach(void (*fn)(const struct fsafe__entry *, void *), void *arg);
/* Called by a waiting forker: releases entries whose unregister is pending. */
void fsafe__registry_poll_pending(void);

/* ---- lockops.c: per-kind acquire / release / reset ----------------------- */
/* Returns FSAFE__HOW_*; NONE when the lock could not or need not be taken.
 * Polls while it waits; abandons the wait when abandon(e) returns non-zero. */
int fsafe__lock_acquire(struct fsafe__entry *e, int (*abandon)(struct fsafe__entry *, uint64_t));
/*
 * One lock the fork holds, as the held list records it: everything the parent
 * and the child need, so that neither touches the registry entry after the
 * fork (a dense array reads fast in a child whose caches are cold).
 */
struct fsafe__held {
    void *ptr;              /* the lock; for KIND_OPS, the entry */
    uint32_t index;         /* the entry's slot number */
    unsigned short kind;    /* FSAFE_MUTEX ... FSAFE__KIND_OPS */
    unsigned char how;      /* FSAFE__HOW_ACQUIRED or FSAFE__HOW_CALLER (one hold) */
    unsigned char mem;      /* FSAFE__MEM_* */
};
void fsafe__lock_release_parent(const struct fsafe__held *h);
/* Async-signal-safe.  orphaned: the holder of the caller's holds is gone. */
void fsafe__lock_reset_child(const struct fsafe__held *h, int orphaned);
int fsafe__lock_mem_shared(const void *lock, int kind); /* asks /proc/self/maps */

/* ---- maps.c: /proc/self/maps without malloc --------------------------------- */
/* 0 with the mapping's "rwxp" permissions and its end address; -1 when no
 * mapping holds addr, -2 when /proc/self/maps cannot be read. */
int fsafe__maps_lookup(const void *addr, char perms[4], uintptr_t *end);

/* ---- fork.c -------------------------------------------------------------- */
void fsafe__init(void);
/* Non-zero while the calling thread runs fsafe's fork protocol. */
int fsafe__in_fork_self(void);
int fsafe__gate_contended(void); /* another thread waits to fork */
extern struct fsafe_stats fsafe__stats; /* updated by the forker only */

/* ---- ext: the auto library's hooks (libfsafe-auto.so, src/auto_*.c) ---------- */
/*
 * libfsafe-auto.so links against libfsafe.so and attaches to its fork path
 * through fsafe__ext_attach(), the one private entry point libfsafe.so exports
 * (it is not in fsafe.h).  The hooks run on the fork-gate owner's thread:
 * prepare before the registry walk (wrapper and atfork paths alike), parent
 * after the registry's release, child after the registry's reset (async-signal-
 * safe calls only).  The services let the auto library use libfsafe's config,
 * messages and lock resets without a second copy of them.
 */
#define FSAFE__EXT_ABI 1
struct fsafe__ext_ops {
    int abi; /* FSAFE__EXT_ABI */
    /* 0, or -1 when it gave up (and undid itself) for a thread waiting at the
     * fork gate; the forker then backs off and calls it again. */
    int (*prepare)(void);
    void (*abort)(void); /* undoes a prepare that returned 0 */
    pid_t (*real_fork)(void); /* libc's fork, as the auto library finds it */
    void (*parent)(void);
    void (*child)(void);
};
struct fsafe__ext_services {
    const struct fsafe__config *cfg;
    void (*vmsg)(const char *fmt, va_list ap);
    /* Re-initialises a lock of kind FSAFE_MUTEX/RWLOCK/SPINLOCK unlocked, with
     * its attributes; async-signal-safe.  Leaves process-shared memory alone. */
    void (*reset_unlocked)(void *lock, int kind);
    int (*mem_shared)(const void *lock, int kind);
    uint64_t (*now_ns)(void);
    int (*gate_contended)(void); /* another thread waits to fork */
};
/* Returns 0, or -1 when another library is already attached or the ABI differs. */
FSAFE_EXPORT int fsafe__ext_attach(const struct fsafe__ext_ops *ops, struct fsafe__ext_services *out);
void fsafe__vmsg(const char *fmt, va_list ap);

/* ---- churn.c: throwaway threads ------------------------------------------ */
void fsafe__churn_before_fork(void);
int fsafe__churn_effective(void); /* the count that will be used, 0 = off */

#endif /* FSAFE_INTERNAL_H */
