/* SPDX-License-Identifier: MIT */
/*
 * The fork walk: the rank-ordered snapshot it reads, taking every lock before
 * the real fork, releasing them in the parent, re-initialising them in the
 * child, and the handshake that lets an unregister wait for the walk.
 * Below fork.c, above registry_store.c and lockops.c; calls neither registry.c nor
 * fork.c.  The child half is async-signal-safe and writes no registry page
 * on the common path.
 *
 * Protocol (model: doc/model/registry.pml).  The walk reads a dense array of 16-byte
 * records, rebuilt under the writer lock at the start of a walk when writers
 * changed the store since the last one, and otherwise never written by the
 * walk.  Per lock the walk pays the lock itself and one store to walk_pos.
 * Unregister sets its record's dead byte; a walk that starts after that (the
 * epoch increment is a full barrier, Dekker with unregister's) skips it.  An
 * unregister that finds a walk active takes a ticket and waits, without the
 * writer lock, until the walk ends or acknowledges the ticket; the walk
 * acknowledges only at a poll, after it has let go of every dead lock it
 * holds, and polls whenever it waits for a lock.  So unregister never waits
 * on a walk that waits for it, and once it returns the walk never touches
 * the lock again.
 *
 * In a process that has never had a second thread (glibc's
 * __libc_single_threaded) no lock can be held by anyone but the forker, and
 * nothing can take a free one before the fork: the walk takes only what it
 * must (locks that look held, and ops locks), its default for a record
 * becomes NONE instead of HELD, and a free mutex is not even written to, so
 * neither process copies its page.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#if !defined(AO_HAVE_char_load) || !defined(AO_HAVE_char_store_release)
#error "fsafe needs AO_char_load and AO_char_store_release"
#endif

struct snap {
    size_t bytes; /* of the mapping */
    size_t n;
    uint32_t gen;
    uint32_t *exc_idx; /* forker-only: records whose exc is set this walk */
    struct fsafe__rec rec[];
};

static AO_t snap_pub;     /* struct snap *: replaced by the walk, under the writer lock */
static AO_t snap_stale;   /* writers changed the store since snap_pub was built */
static uint32_t snap_gen; /* (wraps after 2^32 rebuilds; 0 is skipped) */

static AO_t fork_epoch; /* odd while a walk is active */
static AO_t unreg_seq;  /* tickets taken by unregisters that wait for a walk */
static AO_t ack_seq;    /* the walk has acted on every ticket up to this one */

/* Forker-only, except that the child of a fork that bypassed the gate while
 * another thread walked reads walk_snap and walk_pos (reset_orphaned): a lock
 * is counted in walk_pos (store_release) only once it is held. */
static AO_t walk_snap; /* struct snap * of this walk, or 0 */
static AO_t walk_pos;  /* records [0, walk_pos) are done */
static size_t exc_n;
static size_t held_cnt; /* records in [0, walk_pos) held as taken */
/* How a record with exc DFLT is held by this walk: HELD, or NONE in a light
 * walk.  Written before walk_pos first counts a record of the walk. */
static unsigned char walk_dflt = FSAFE__EXC_HELD;
static AO_t walker; /* thread pointer of the walking thread, 0 if none */
static int walk_complete; /* every lock is taken; the real fork is next */

/* ---- orders learned from conflicts ------------------------------------------ */
/*
 * A walk that gave its locks back because a thread held a later lock while
 * it waited for an earlier one (order_backoff) learns that the program takes
 * the later one first.  If the retry took the ranks' order again, another
 * thread nesting the same way would meet it in the same conflict, and could
 * forever (issue 25: three threads nesting B then A kept a fork backing off
 * every 20 ms).  So every later walk takes learned[k].first before
 * learned[k].then, whatever their ranks, for the life of the process (a
 * child inherits it).  Keyed by lock address: the same lock registered
 * again keeps its place.  Written by the walking thread, read by snap_build
 * under the writer lock, which the walking thread then holds.
 */
#define MAX_LEARNED 32
static struct {
    const void *first, *then;
} learned[MAX_LEARNED];
static unsigned nlearned;

/* Records that first must come before then.  Returns 0, or -1 when the table
 * is full (the walk retries in the old order, as before issue 25). */
static int learn(const void *first, const void *then)
{
    unsigned k;
    for (k = 0; k < nlearned; k++)
        if ((learned[k].first == then && learned[k].then == first) ||
            (learned[k].first == first && learned[k].then == then))
            break; /* the opposite order learned before gives way to the newer */
    if (k == nlearned) {
        if (nlearned == MAX_LEARNED)
            return -1;
        nlearned++;
    }
    learned[k].first = first;
    learned[k].then = then;
    AO_store_release(&snap_stale, 1); /* the retry's snapshot takes the new order */
    return 0;
}

static size_t order_find(const uint32_t *order, size_t n, const void *lock)
{
    for (size_t i = 0; i < n; i++)
        if (fsafe__store_entry(order[i])->lock == lock)
            return i;
    return n;
}

/* Moves each learned first just before its then, where the ranks put it
 * after.  Repeats while a move undid another (a chain of inversions), at
 * most MAX_LEARNED times; any order is safe, the learned one only avoids
 * waiting. */
static void learned_order(uint32_t *order, size_t n)
{
    for (unsigned pass = 0; pass < MAX_LEARNED; pass++) {
        int moved = 0;
        for (unsigned k = 0; k < nlearned; k++) {
            size_t f = order_find(order, n, learned[k].first);
            size_t t = order_find(order, n, learned[k].then);
            if (f == n || t == n || f < t)
                continue;
            uint32_t x = order[f];
            memmove(&order[t + 1], &order[t], (f - t) * sizeof order[0]);
            order[t] = x;
            moved = 1;
        }
        if (!moved)
            return;
    }
}

/* ---- snapshot ------------------------------------------------------------ */
void fsafe__walk_invalidate(void)
{
    AO_store_release(&snap_stale, 1);
}

static struct snap *cur_snap(void)
{
    return (struct snap *)AO_load_acquire(&snap_pub);
}

/* Writer lock held: the record of e in the current snapshot, or NULL. */
static struct fsafe__rec *rec_of(const struct fsafe__entry *e)
{
    struct snap *s = cur_snap();
    if (!s || e->snap_gen != s->gen || e->rec >= s->n)
        return NULL;
    return &s->rec[e->rec];
}

/* Builds the snapshot from the ordered list.  Writer lock held.  Returns 0,
 * or ENOMEM (the old snapshot stays, and stays stale). */
static int snap_build(void)
{
    AO_store(&snap_stale, 0);
    size_t n = 0;
    for (struct fsafe__entry *e = fsafe__store_first(); e; e = (struct fsafe__entry *)e->next)
        n++;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t bytes = sizeof(struct snap) + n * (sizeof(struct fsafe__rec) + sizeof(uint32_t));
    bytes = (bytes + page - 1) / page * page;
    struct snap *s = fsafe__map_zeroed(bytes);
    if (!s) {
        AO_store_release(&snap_stale, 1);
        return ENOMEM;
    }
    s->bytes = bytes;
    if (++snap_gen == 0)
        snap_gen = 1;
    s->gen = snap_gen;
    s->exc_idx = (uint32_t *)&s->rec[n];
    /* The walk's order, in exc_idx until a walk uses it: by rank, then as
     * conflicts taught (learned_order). */
    uint32_t *order = s->exc_idx;
    size_t i = 0;
    for (struct fsafe__entry *e = fsafe__store_first(); e; e = (struct fsafe__entry *)e->next)
        order[i++] = e->index;
    learned_order(order, n);
    for (i = 0; i < n; i++) {
        struct fsafe__entry *e = fsafe__store_entry(order[i]);
        struct fsafe__rec *r = &s->rec[i];
        r->lock = e->lock;
        r->entry = e->index;
        r->kind = (unsigned char)e->kind;
        r->mem = (unsigned char)e->mem;
        e->rec = (uint32_t)i;
        e->snap_gen = s->gen;
    }
    s->n = n;
    struct snap *old = cur_snap();
    AO_store_release(&snap_pub, (AO_t)s);
    if (old) /* only the walk reads records outside the writer lock, and it is here */
        munmap(old, old->bytes);
    return 0;
}

/* At the start of a walk: bring the snapshot up to date if writers changed
 * the store.  Waits for a writer that is inside (writers hold the lock for
 * bounded steps and never wait for a walk while holding it).  When this very
 * thread is inside a writer (a fork from a signal handler that interrupted
 * register or unregister), the walk uses the snapshot as it is. */
static void snap_refresh(void)
{
    if (!AO_load_acquire(&snap_stale))
        return;
    struct timespec ts = {0, 20 * 1000};
    int r;
    while ((r = fsafe__store_trylock()) == EBUSY)
        nanosleep(&ts, NULL);
    if (r != 0)
        return;
    if (AO_load_acquire(&snap_stale))
        snap_build();
    fsafe__store_unlock();
}

/* ---- exceptions: records in [0, walk_pos) not held as the walk's default ---- */
static unsigned char how_of(const struct fsafe__rec *r)
{
    unsigned char x = AO_char_load(&r->exc);
    return x != FSAFE__EXC_DFLT ? x : walk_dflt;
}

/* The same, for an unregister deciding the walk is done with r's lock: an
 * acquire load, paired with exc_set's release, so that the walk's last use of
 * the lock (fsafe__walk_poll's unlock of a dead record, before it sets NONE)
 * happens before the caller frees or destroys it.  (ThreadSanitizer reported
 * the unlock and a pthread_rwlock_destroy as a race in the stress run: the
 * relaxed load gave no order, on a weakly ordered CPU either.) */
static unsigned char how_of_acquire(const struct fsafe__rec *r)
{
    unsigned char x = AO_char_load_acquire(&r->exc);
    return x != FSAFE__EXC_DFLT ? x : walk_dflt;
}

static void exc_set(struct snap *s, size_t i, unsigned char how)
{
    struct fsafe__rec *r = &s->rec[i];
    if (r->exc == FSAFE__EXC_DFLT) {
        if (how == walk_dflt)
            return;
        s->exc_idx[exc_n++] = (uint32_t)i;
    }
    AO_char_store_release(&r->exc, how); /* unregister reads it */
}

/* A light walk holds only what its exceptions list: walk those alone. */
static int light(void)
{
    return walk_dflt == FSAFE__EXC_NONE;
}

int fsafe__walk_was_light(void)
{
    return light();
}

static int single_threaded(void)
{
    return fsafe__gl_single_threaded() == 1;
}

/* A light walk of only free mutexes takes nothing and leaves nothing for the
 * child to reset: the fork can skip the protocol (the gate, the signal mask,
 * and every write to fsafe's own pages, each of which would cost a
 * copy-on-write fault in both processes).  Reads only; one thread, so no
 * writer can change the snapshot meanwhile (a signal handler's
 * registration marks it stale first). */
FSAFE_FORK_PATH int fsafe__walk_unneeded(void)
{
    if (!single_threaded() || AO_load_acquire(&snap_stale) || (AO_load_acquire(&fork_epoch) & 1))
        return 0;
    struct snap *s = cur_snap();
    size_t n = s ? s->n : 0;
    for (size_t i = 0; i < n; i++) {
        const struct fsafe__rec *r = &s->rec[i];
        if (!AO_char_load(&r->dead) &&
            (r->kind != FSAFE_MUTEX || !fsafe__mutex_looks_free(r->lock)))
            return 0;
    }
    return 1;
}

/* ---- unregister's side of the handshake -------------------------------------- */
int fsafe__walk_is_self(void)
{
    return AO_load_acquire(&walker) == fsafe__self_id();
}

/*
 * Writer lock held, e already unlinked from the store: marks e's record dead.
 * Returns 0 if no walk can touch e's lock any more, else a ticket to pass to
 * fsafe__walk_wait (after dropping the writer lock).
 */
uint64_t fsafe__walk_retire(const struct fsafe__entry *e, AO_t *epoch)
{
    struct fsafe__rec *r = rec_of(e);
    if (!r) {
        /* Registered after the snapshot: no walk sees this entry.  But the
         * same lock may have an older, dead record that an unregister still
         * waits on (unregistered, registered again and unregistered again
         * meanwhile): then wait for the same acknowledgement. */
        AO_t ep = AO_load_acquire(&fork_epoch);
        *epoch = ep;
        if ((ep & 1) && AO_load_acquire(&unreg_seq) != AO_load_acquire(&ack_seq))
            return AO_fetch_and_add_full(&unreg_seq, 1) + 1;
        return 0;
    }
    AO_char_store_release(&r->dead, 1);
    AO_nop_full(); /* the dead mark before the epoch read (Dekker with the walk) */
    AO_t ep = AO_load_acquire(&fork_epoch);
    *epoch = ep;
    if ((ep & 1) == 0)
        return 0;
    /* A walk the lock's record is behind, that neither holds it nor left it
     * to the caller, will not touch it again (exc is written before walk_pos
     * counts the record; end_epoch resets exc before it clears walk_pos). */
    size_t i = (size_t)(r - cur_snap()->rec);
    if (AO_load_acquire(&walk_snap) == (AO_t)cur_snap() && i < AO_load_acquire(&walk_pos) &&
        how_of_acquire(r) == FSAFE__EXC_NONE && AO_load_acquire(&fork_epoch) == ep)
        return 0;
    return AO_fetch_and_add_full(&unreg_seq, 1) + 1;
}

/* Waits until the walk of epoch has ended or acknowledged ticket. */
void fsafe__walk_wait(uint64_t ticket, AO_t epoch)
{
    struct timespec ts = {0, 50 * 1000};
    for (;;) {
        if (fsafe__walk_is_self())
            fsafe__walk_poll(); /* unregister from this thread's own fork's handler */
        if (AO_load_acquire(&fork_epoch) != epoch || AO_load_acquire(&ack_seq) >= ticket)
            return;
        nanosleep(&ts, NULL);
    }
}

/* ---- the walk ---------------------------------------------------------------- */
/* Walker: lets go of every held lock whose record is dead, then acknowledges
 * every ticket taken so far. */
void fsafe__walk_poll(void)
{
    AO_t t = AO_load_acquire(&unreg_seq);
    if (t == AO_load_acquire(&ack_seq))
        return;
    struct snap *s = (struct snap *)walk_snap;
    size_t pos = s ? walk_pos : 0;
    for (size_t i = 0; i < pos; i++) {
        struct fsafe__rec *r = &s->rec[i];
        unsigned char how = how_of(r);
        if (how != FSAFE__EXC_NONE && AO_char_load(&r->dead)) {
            if (how == FSAFE__EXC_HELD) {
                fsafe__lock_postfork_parent(r);
                held_cnt--;
            }
            exc_set(s, i, FSAFE__EXC_NONE); /* (a caller's hold: no reset in the child) */
        }
    }
    AO_store_release(&ack_seq, t);
}

/* Why the walk gave up: another thread waits to fork (ABORT_GATE), or a lock
 * stayed busy while the walk held others (ABORT_ORDER, see order_backoff). */
enum { ABORT_NONE, ABORT_GATE, ABORT_ORDER };
static int walk_aborted;
static int (*gate_contended)(void);
#define BACKOFF_AFTER_NS (5 * 1000 * 1000u)
/* How long the walk waits for one lock while it holds others before it gives
 * everything back (issue 12.5).  20 ms: two of lockops' wait slices, far above
 * any critical section that does not itself wait, and short enough that a
 * conflict costs a fork little.  0 turns the back-off off (tests only). */
static uint64_t order_backoff_ns = 20 * 1000 * 1000u;
static uint64_t order_waited_ns; /* the wait that made the walk give up */

void fsafe__registry_set_order_backoff_ms(unsigned ms)
{
    order_backoff_ns = (uint64_t)ms * 1000000u;
}

static int abandon_wait(const struct fsafe__rec *r, uint64_t waited_ns)
{
    fsafe__walk_poll();
    /* First: once a poll has acknowledged its unregister, the lock is not
     * to be touched again, not even by the order back-off's wait. */
    if (AO_char_load(&r->dead))
        return 1;
    if (waited_ns >= BACKOFF_AFTER_NS && gate_contended && gate_contended()) {
        walk_aborted = ABORT_GATE;
        return 1;
    }
    if (order_backoff_ns && waited_ns >= order_backoff_ns && held_cnt > 0) {
        walk_aborted = ABORT_ORDER;
        order_waited_ns = waited_ns;
        return 1;
    }
    return 0;
}

/* While the walk waits for a lock and holds nothing: only an unregister of
 * that lock, or another forker, ends the wait early. */
static int abandon_free_wait(const struct fsafe__rec *r, uint64_t waited_ns)
{
    fsafe__walk_poll();
    if (waited_ns >= BACKOFF_AFTER_NS && gate_contended && gate_contended())
        return 1;
    return AO_char_load(&r->dead);
}

/* The lock the walk most likely waits on a thread for, of those it holds
 * before record want_i: the newest one another thread waits for (glibc
 * mutexes show waiters), else the newest.  NULL if it holds none. */
static const struct fsafe__rec *conflict_other(struct snap *s, size_t want_i, int *known)
{
    const struct fsafe__rec *other = NULL;
    *known = 0;
    for (size_t i = want_i; i-- > 0 && !*known;) {
        const struct fsafe__rec *r = &s->rec[i];
        if (how_of(r) != FSAFE__EXC_HELD)
            continue;
        *known = fsafe__lock_has_waiters(r->lock, r->kind) > 0;
        if (*known || !other)
            other = r;
    }
    return other;
}

/* Pairs already reported by this process: (held lock, awaited lock). */
#define MAX_PAIRS 64
static const void *pair_seen[MAX_PAIRS][2];
static unsigned npairs;
static pid_t pairs_pid;

/* One line per pair and process, saying what the walk learned. */
static void report_conflict(const struct fsafe__rec *want, const struct fsafe__rec *other,
                            int known, int learned_it, uint64_t waited_ns)
{
    pid_t pid = getpid();
    if (pairs_pid != pid) {
        pairs_pid = pid;
        npairs = 0;
    }
    for (unsigned i = 0; i < npairs; i++)
        if (pair_seen[i][0] == other->lock && pair_seen[i][1] == want->lock)
            return;
    if (npairs == MAX_PAIRS)
        return;
    pair_seen[npairs][0] = other->lock;
    pair_seen[npairs][1] = want->lock;
    npairs++;
    const struct fsafe__entry *we = fsafe__store_entry(want->entry);
    const char *wn = fsafe__entry_name(we);
    const struct fsafe__entry *oe = fsafe__store_entry(other->entry);
    const char *on = fsafe__entry_name(oe);
    char did[2 * FSAFE_NAME_MAX + 64] = " and retried";
    if (learned_it)
        snprintf(did, sizeof did, ", and from now on it takes '%s' before '%s' in this process",
                 wn, on);
    fsafe__msg("lock order conflict: fork waited %lu ms for '%s' (rank %d) while holding '%s' "
               "(rank %d)%s; it gave its locks back%s.  A thread that takes '%s' before '%s' "
               "needs it ranked lower",
               (unsigned long)(waited_ns / 1000000u), wn, we->rank, on, oe->rank,
               known ? ", which another thread waits for" : "", did, wn, on);
}

static void release_held(struct snap *s)
{
    /* Newest first: the reverse of the acquisition order.  exc_idx lists
     * records in walk order. */
    if (light()) {
        for (size_t k = exc_n; k-- > 0;)
            if (s->rec[s->exc_idx[k]].exc == FSAFE__EXC_HELD)
                fsafe__lock_postfork_parent(&s->rec[s->exc_idx[k]]);
        return;
    }
    for (size_t i = walk_pos; i-- > 0;)
        if (how_of(&s->rec[i]) == FSAFE__EXC_HELD)
            fsafe__lock_postfork_parent(&s->rec[i]);
}

/* Ends the walk's epoch: clears this walk's exceptions; any unregister
 * waiting on it may proceed. */
static void end_epoch(void)
{
    struct snap *s = (struct snap *)walk_snap;
    for (size_t k = 0; s && k < exc_n; k++)
        AO_char_store_release(&s->rec[s->exc_idx[k]].exc, FSAFE__EXC_DFLT);
    exc_n = 0;
    held_cnt = 0;
    walk_complete = 0;
    AO_store_release(&walk_pos, 0);
    AO_store_release(&walk_snap, 0);
    AO_store_release(&walker, 0);
    AO_fetch_and_add_full(&fork_epoch, 1); /* now even */
}

/*
 * The walk waited too long for record i while holding others: the ranks may
 * contradict the order in which the program nests these locks (a thread holds
 * i's lock and waits for one the walk holds).  As folly's AtFork does: give
 * back everything, wait for i's lock to come free holding nothing, and let
 * the caller start again.  The epoch stays open while the walk waits, so an
 * unregister of that lock still waits for the walk to let go.
 */
static void order_backoff(struct snap *s, size_t i, uint64_t waited_ns)
{
    int known;
    const struct fsafe__rec *other = conflict_other(s, i, &known);
    if (other)
        report_conflict(&s->rec[i], other, known, learn(s->rec[i].lock, other->lock) == 0,
                        waited_ns);
    for (size_t k = i; k-- > 0;)
        if (how_of(&s->rec[k]) == FSAFE__EXC_HELD) {
            fsafe__lock_postfork_parent(&s->rec[k]);
            exc_set(s, k, FSAFE__EXC_NONE);
        }
    held_cnt = 0;
    if (!AO_char_load(&s->rec[i].dead) &&
        fsafe__lock_acquire(&s->rec[i], abandon_free_wait) == FSAFE__HOW_ACQUIRED)
        fsafe__lock_postfork_parent(&s->rec[i]);
}

/* One record of a walk that is not a free plain mutex: returns 0, or -1 when
 * the walk gave everything back (walk_aborted says why). */
static int walk_slow(struct snap *s, size_t i)
{
    struct fsafe__rec *r = &s->rec[i];
    int how = fsafe__lock_acquire(r, light() && r->kind != FSAFE__KIND_OPS ? NULL : abandon_wait);
    if (how == FSAFE__HOW_ACQUIRED) {
        held_cnt++;
        exc_set(s, i, FSAFE__EXC_HELD);
    } else if (how == FSAFE__HOW_CALLER) {
        exc_set(s, i, FSAFE__EXC_CALLER);
    } else if (walk_aborted) {
        if (walk_aborted == ABORT_ORDER)
            order_backoff(s, i, order_waited_ns);
        else
            release_held(s);
        return -1;
    } else {
        exc_set(s, i, FSAFE__EXC_NONE);
    }
    return 0;
}

long fsafe__walk_prefork(int (*contended)(void))
{
    gate_contended = contended;
    AO_store_release(&walker, fsafe__self_id());
    AO_fetch_and_add_full(&fork_epoch, 1); /* now odd; a full barrier */
    snap_refresh();
    struct snap *s = cur_snap();
    int lite = single_threaded();
    walk_dflt = lite ? FSAFE__EXC_NONE : FSAFE__EXC_HELD;
    AO_store_release(&walk_snap, (AO_t)s);
    walk_aborted = ABORT_NONE;
    held_cnt = 0;
    size_t n = s ? s->n : 0;
    for (size_t i = 0; i < n; i++) {
        struct fsafe__rec *r = &s->rec[i];
        if (AO_char_load(&r->dead)) {
            exc_set(s, i, FSAFE__EXC_NONE);
        } else if (r->kind == FSAFE_MUTEX && (lite ? fsafe__mutex_looks_free(r->lock)
                                                   : pthread_mutex_trylock(r->lock) == 0)) {
            held_cnt += !lite; /* (light: left alone; no one else can take it) */
        } else if (walk_slow(s, i) != 0) {
            end_epoch(); /* (not counted: the walk starts again) */
            return -1;
        }
        AO_store_release(&walk_pos, i + 1);
    }
    long taken = (long)held_cnt;
    /* Unregisters that arrived while the walk went on without waiting. */
    fsafe__walk_poll();
    if (lite && !single_threaded()) {
        /* An ops callback started a thread: walk again, in full. */
        release_held(s);
        end_epoch();
        return -1;
    }
    walk_complete = 1;
    return taken;
}

/* The forking thread's own lock call on a registered mutex the finished walk
 * holds (another library's atfork prepare handler, seen by auto mode's
 * interposer): from now on it is the caller's, which releases or
 * re-initialises it in its own parent and child handlers. */
int fsafe__walk_handover(const void *lock)
{
    struct snap *s = (struct snap *)walk_snap;
    if (!walk_complete || !s || AO_load(&walker) != fsafe__self_id())
        return 0;
    for (size_t i = 0; i < walk_pos; i++)
        if (s->rec[i].lock == lock && s->rec[i].kind == FSAFE_MUTEX &&
            how_of(&s->rec[i]) == FSAFE__EXC_HELD) {
            exc_set(s, i, FSAFE__EXC_NONE);
            return 1;
        }
    return 0;
}

/* The forking thread's own call into code that may take the ops locks of
 * table `ops` that the finished walk holds: they are released now and left
 * alone after the fork (the child may then find one held, as without the
 * registration).  Returns how many. */
int fsafe__walk_give_back_ops(const struct fsafe_lock_ops *ops)
{
    struct snap *s = (struct snap *)walk_snap;
    int n = 0;
    if (!walk_complete || !s || AO_load(&walker) != fsafe__self_id())
        return 0;
    for (size_t i = 0; i < walk_pos; i++) {
        struct fsafe__rec *r = &s->rec[i];
        if (r->kind != FSAFE__KIND_OPS || how_of(r) != FSAFE__EXC_HELD)
            continue;
        const struct fsafe_lock_ops *o = fsafe__entry_ops(fsafe__store_entry(r->entry));
        if (o->acquire != ops->acquire || o->release_parent != ops->release_parent)
            continue;
        o->release_parent(r->lock);
        exc_set(s, i, FSAFE__EXC_NONE);
        n++;
    }
    return n;
}

void fsafe__walk_postfork_parent(void)
{
    struct snap *s = (struct snap *)walk_snap;
    if (s)
        release_held(s);
    end_epoch();
}

/* A plain mutex the walk took is reset inline: pinned to one CPU, the
 * child's reset of 4096 mutexes takes 45 us inline and 50 us through
 * fsafe__lock_postfork_child.  (The parent's release showed no such difference:
 * it goes through fsafe__lock_postfork_parent.) */
static void reset_one(const struct fsafe__rec *r, unsigned char how, int orphaned)
{
    if (how == FSAFE__EXC_HELD) {
        if (r->kind == FSAFE_MUTEX && !(r->mem & FSAFE__MEM_SHARED) &&
            fsafe__mutex_reset_plain(r->lock) == 0)
            return;
        fsafe__lock_postfork_child(r, FSAFE__HOW_ACQUIRED, orphaned);
    } else if (how == FSAFE__EXC_CALLER) {
        fsafe__lock_postfork_child(r, FSAFE__HOW_CALLER, orphaned);
    }
}

static void reset_held(struct snap *s, size_t n, int orphaned)
{
    if (light()) {
        for (size_t k = 0; k < exc_n; k++)
            if (s->exc_idx[k] < n)
                reset_one(&s->rec[s->exc_idx[k]], s->rec[s->exc_idx[k]].exc, orphaned);
        return;
    }
    for (size_t i = 0; i < n; i++)
        reset_one(&s->rec[i], how_of(&s->rec[i]), orphaned);
}

void fsafe__walk_postfork_child(void)
{
    struct snap *s = (struct snap *)walk_snap;
    if (s)
        reset_held(s, walk_pos, 0);
    end_epoch();
}

/* The walking thread does not exist in this child: its locks, and its own
 * earlier holds, have no owner here.  Reset them unlocked. */
void fsafe__walk_postfork_child_orphaned(void)
{
    if ((AO_load_acquire(&fork_epoch) & 1) == 0)
        return; /* it had not started walking, or had finished */
    struct snap *s = (struct snap *)AO_load_acquire(&walk_snap);
    if (s)
        reset_held(s, AO_load_acquire(&walk_pos), 1);
    end_epoch();
}

/* Child, every fork: no unregister survives to wait, no walk of another
 * thread survives to end.  Reads before writing: a quiet registry costs the
 * child no copy-on-write fault. */
FSAFE_FORK_PATH void fsafe__walk_postfork_child_fixup(void)
{
    if (fsafe__store_postfork_child())
        AO_store_release(&snap_stale, 1); /* a writer vanished: rebuild before use */
    AO_t t = AO_load_acquire(&unreg_seq);
    if (AO_load_acquire(&ack_seq) != t)
        AO_store_release(&ack_seq, t);
    if (AO_load_acquire(&fork_epoch) & 1)
        end_epoch();
}
