/* SPDX-License-Identifier: MIT */
/*
 * Promela model of fsafe's register/unregister protocol racing with the fork
 * walk (src/core/registry.c, src/core/walk.c, the fork side of src/core/fork.c).  Checked by
 * spin in CI (test/reliability.cmake, "model.registry", through
 * test/model_check.sh):
 *     spin -a registry.pml && gcc -O2 -DSAFETY -DCOLLAPSE -o pan pan.c && ./pan
 * It must never be out of step with the C: each inline below names the C
 * function it mirrors.
 *
 * The protocol: the walk reads a snapshot of records (one per lock here),
 * rebuilt under the writer lock at the start of a walk when the store
 * changed; unregister marks its record dead and, if a walk is active and may
 * hold the lock, takes a ticket and waits (without the writer lock) until
 * the walk acknowledges it (ack_seq) or ends (fork_epoch).  The walk
 * acknowledges at its polls, after letting go of every dead lock it holds.
 *
 * Checked (assertions, plus spin's invalid end states for deadlock):
 *   P1 a lock the walk acquires is released exactly once in the parent (also
 *      when the walk aborts or backs off and gives everything back), and reset
 *      exactly once in the child if it was held across the real fork;
 *   P2 once unregister has returned, fsafe never touches that lock again;
 *   P3 a lock registered before the (last) walk began, whose unregister did
 *      not start before the real fork, is held across the real fork;
 *   P4 no deadlock: every process reaches its end (registrars and forker block
 *      on each other through the writer lock, the user locks, another
 *      library's lock that its atfork prepare handler takes, ticket waits, and
 *      a thread that nests the locks against their ranks);
 *   P5 every ticket is acknowledged or its walk has ended once every thread
 *      has finished (no unregister left waiting).
 *
 * Not modelled: the store's memory (entries are fixed per lock here; a
 * re-registration gets no record until the next rebuild, as in the C), lock
 * kinds (one mutual-exclusion lock per record, never held by the forker
 * itself: no CALLER exceptions), the child's fix-up, and signals.  Nor the
 * light walk of a single-threaded process (walk.c): it is a full walk in which
 * every free mutex's attempt came out NONE before walk_pos passed it (exc 0
 * reads as NONE there), and no unregister can run beside it unless an ops
 * callback starts a thread, after which the walk is given back and redone in
 * full.  The gate
 * has one forker, so the walk's abort for another forker is a
 * nondeterministic choice while it waits with a lock held, at most ABORTS
 * times per fork.  The order back-off (after 20 ms in the C) is taken here
 * only when the holder of the awaited lock waits for a lock the walk holds,
 * the case it exists for (the abort above covers giving back at any time).
 *
 * Seeded bugs, to show the model catches them (README, reliability):
 *   -DBUG_NO_PENDING_WAIT     unregister does not wait for a walk that may
 *                             hold the lock (P2 fails)
 *   -DBUG_NO_POLL             the walk never polls while it waits for a lock,
 *                             nor at its end (deadlock)
 *   -DBUG_WAIT_HOLDING_MUTEX  unregister keeps the writer lock while it waits
 *                             (deadlock: the forker waits in an atfork handler
 *                             for a lock whose holder waits for the writer lock)
 *   -DBUG_ABORT_KEEPS_LOCKS   an aborted walk ends its epoch without giving
 *                             back what it took (P1 fails)
 *   -DBUG_ACK_BEFORE_RELEASE  a poll acknowledges before it lets go of the
 *                             dead locks (P2 fails)
 *   -DBUG_NO_REBUILD          the walk uses the snapshot as it is, stale or
 *                             not (P3 fails)
 *   -DBUG_NO_ORDER_BACKOFF    the walk never gives back for a lock whose
 *                             holder nests against the ranks (deadlock)
 */

#define NLOCKS 2
#ifndef FORKS
#define FORKS 1   /* forks by the forking thread */
#endif
#ifndef ABORTS
#define ABORTS 1  /* walk aborts (another forker waits) per fork */
#endif
#ifndef R1
#define R1 2      /* register/unregister rounds of each registering thread */
#endif
#ifndef R2
#define R2 1
#endif
#ifndef R3
#define R3 1
#endif

#define EXC_HELD 0  /* walk.c FSAFE__EXC_DFLT in a full walk: HELD */
#define EXC_NONE 2
#define FORKER 9    /* owner id of the forker in lock[], libmx, reg_mutex */

byte fork_epoch;          /* walk.c fork_epoch: odd during a walk */
byte unreg_seq, ack_seq;  /* walk.c: tickets taken / acknowledged */
bool stale;               /* walk.c snap_stale */
byte reg_mutex;           /* registry_store.c store_mutex: 0 free, else owner */
bool registered[NLOCKS];  /* in the store (hash and ordered list) */
bool has_rec[NLOCKS];     /* the snapshot has a record for the lock */
bool dead[NLOCKS];        /* that record's dead byte */
bool ent_rec[NLOCKS];     /* the lock's current entry is that record's (rec_of) */
byte exc[NLOCKS];         /* the record's exc byte (walker-only writes) */
byte walk_pos;            /* records [0, walk_pos) done */
byte lock[NLOCKS];        /* the user's lock: 0 free, else owner */
byte libmx;               /* another library's lock (not registered), taken by
                           * its atfork prepare handler: 0 free, else owner */
byte wants[10];           /* ghost: the lock (+1) each thread blocks on, for
                           * the order back-off's guard */

/* ghosts for the properties */
bool unreg_returned[NLOCKS]; /* P2: unregister returned, lock not registered again since */
byte unreg_active[NLOCKS];   /* P3: unregisters under way */
bool unreg_since[NLOCKS];    /* P3: an unregister started since the walk began */
bool walking;                /* P3: from the walk's start to the real fork */
bool reg_done[NLOCKS];       /* P3: registration has returned, no unregister finished since */
byte held_cnt;               /* walk.c held_cnt */

/* ---- the user's lock, touched by fsafe only in these -------------------------- */
inline fsafe_lock_release(i)   /* fsafe__lock_postfork_parent() */
{
    assert(!unreg_returned[i]);           /* P2 */
    assert(lock[i] == FORKER);            /* P1: released once, only if ours */
    lock[i] = 0
}

/* fsafe__walk_poll(): let go of every held lock whose record is dead, then
 * acknowledge every ticket taken so far.  k, t are the caller's locals. */
inline walk_poll()
{
    if
    :: unreg_seq == ack_seq
    :: else ->
        t = unreg_seq;
#ifdef BUG_ACK_BEFORE_RELEASE
        ack_seq = t;
#endif
        k = 0;
        do
        :: k < walk_pos ->
            if
            :: exc[k] == EXC_HELD && dead[k] ->
                fsafe_lock_release(k);
                atomic { exc[k] = EXC_NONE; held_cnt-- }
            :: else
            fi;
            k++
        :: else -> break
        od;
        k = 0;
#ifndef BUG_ACK_BEFORE_RELEASE
        ack_seq = t;
#endif
        t = 0
    fi
}

/* release_held(): newest first */
inline release_held()
{
    k = walk_pos;
    do
    :: k > 0 ->
        k--;
        if
        :: exc[k] == EXC_HELD && has_rec[k] -> fsafe_lock_release(k)
        :: else
        fi
    :: else -> break
    od
}

/* end_epoch(): clear the exceptions, then walk_pos, then the epoch. */
inline end_epoch()
{
    atomic {
        k = 0;
        do
        :: k < NLOCKS -> exc[k] = EXC_HELD; k++
        :: else -> break
        od;
        k = 0;
        held_cnt = 0
    };
    walk_pos = 0;
    fork_epoch++                          /* now even */
}

/* ---- the writer lock ---------------------------------------------------------- */
inline writer_lock(me)
{
    atomic { reg_mutex == 0 -> reg_mutex = me }
}
inline writer_unlock()
{
    reg_mutex = 0
}

/* ---- fsafe_register_lock(): register_entry() ----------------------------------- */
inline do_register(me, i)
{
    writer_lock(me);
    if
    :: registered[i] -> skip                /* EEXIST */
    :: else ->
        /* fsafe__store_link and fsafe__walk_invalidate: writer-only data and
         * the stale flag, seen by the walk only after the writer lock */
        atomic {
            unreg_returned[i] = false;
            registered[i] = true;
            ent_rec[i] = false;             /* snap_gen = 0 */
            reg_done[i] = true;
            stale = true
        }
    fi;
    writer_unlock()
}

/* ---- fsafe_unregister_lock() ------------------------------------------------------ */
/* ticket, ep, a are the caller's locals, 0 on entry (reset on the way out). */
inline do_unregister(me, i)
{
    writer_lock(me);
    if
    :: atomic { !registered[i] -> skip }    /* ENOENT */
    :: atomic {
           registered[i] ->
           unreg_active[i]++; unreg_since[i] = unreg_since[i] || walking;
           /* fsafe__store_unlink, fsafe__walk_invalidate */
           registered[i] = false;
           stale = true
       };
        /* fsafe__walk_retire() */
        if
        :: ent_rec[i] ->
            dead[i] = true;                 /* then AO_nop_full */
            ep = fork_epoch;
            if
            :: ep % 2 == 1 ->
                /* early out: the walk is past the record without holding it */
                a = walk_pos;
                if
                :: a > i && exc[i] == EXC_NONE && fork_epoch == ep -> skip
                :: else -> atomic { unreg_seq++; ticket = unreg_seq }
                fi
            :: else
            fi
        :: else ->
            /* no record of this entry; an older dead record of the same
             * lock may still have an unregister waiting on it */
            ep = fork_epoch;
            if
            :: ep % 2 == 1 && unreg_seq != ack_seq -> atomic { unreg_seq++; ticket = unreg_seq }
            :: else
            fi
        fi;
        ent_rec[i] = false;
#ifndef BUG_NO_PENDING_WAIT
        if
        :: ticket != 0 ->
#ifndef BUG_WAIT_HOLDING_MUTEX
            writer_unlock();
#endif
            /* fsafe__walk_wait() */
            (fork_epoch != ep || ack_seq >= ticket);
#ifndef BUG_WAIT_HOLDING_MUTEX
            writer_lock(me)
#endif
        :: else
        fi;
#endif
        atomic {
            /* (registered again meanwhile by another thread, or being
             * unregistered again by one: fsafe may still take it for that
             * registration, until that unregister returns) */
            unreg_returned[i] = !registered[i] && unreg_active[i] == 1;
            reg_done[i] = false; unreg_active[i]--;
            ticket = 0; ep = 0; a = 0
        }
    fi;
    writer_unlock()
}

/* ---- a registering thread ----------------------------------------------------------- */
/* Registers, uses and unregisters its lock.  The first also holds the other
 * lock while it unregisters (so the walk, waiting for that lock, waits on a
 * thread that waits for the walk), and nests its own lock inside the other
 * once, against the ranks (the order back-off); the second holds libmx while
 * it registers (so the forker, waiting for libmx in an atfork handler where
 * it cannot poll, waits on a thread that waits for the writer lock). */
proctype registrar(byte me; byte mine; byte other; bool hold_lib; byte rounds)
{
    byte ticket, ep, a, r;
    do
    :: r < rounds ->
        if
        :: hold_lib ->
            atomic { libmx == 0 -> libmx = me };
            do_register(me, mine);
            libmx = 0
        :: else ->
            do_register(me, mine)
        fi;
        atomic { lock[mine] == 0 -> lock[mine] = me };
        lock[mine] = 0;
        if
        :: other != mine ->
            wants[me] = other + 1;
            atomic { lock[other] == 0 -> lock[other] = me; wants[me] = 0 };
            if
            :: r == 0 && other > mine ->
                /* nested against the ranks: other (higher rank), then mine */
                wants[me] = mine + 1;
                atomic { lock[mine] == 0 -> lock[mine] = me; wants[me] = 0 };
                lock[mine] = 0
            :: else
            fi;
            do_unregister(me, mine);
            lock[other] = 0
        :: else ->
            do_unregister(me, mine)
        fi;
        r++
    :: else -> break
    od
}

/* ---- the forker: fsafe_fork() -> fsafe__walk_prefork() ... end_epoch() ------- */
proctype forker()
{
    byte i, j, k, t, n, aborts;
    bool ok, gave_up, aborted, order, stable[NLOCKS];
    byte reset[NLOCKS];
    n = 0;
    do
    :: n < FORKS ->
        aborts = 0;
walk:   /* fsafe__walk_prefork() */
        atomic {
            fork_epoch++;                   /* now odd; a full barrier */
            i = 0;
            do
            :: i < NLOCKS ->
                stable[i] = reg_done[i] && unreg_active[i] == 0;
                i++
            :: else -> break
            od;
            walking = true;
            i = 0
        };
        /* snap_refresh(): rebuild under the writer lock if the store changed */
#ifndef BUG_NO_REBUILD
        if
        :: stale ->
            writer_lock(FORKER);
            atomic {
                if
                :: stale ->
                    stale = false;
                    i = 0;
                    do
                    :: i < NLOCKS ->
                        has_rec[i] = registered[i];
                        dead[i] = false;
                        ent_rec[i] = registered[i];
                        i++
                    :: else -> break
                    od;
                    i = 0
                :: else
                fi
            };
            writer_unlock()
        :: else
        fi;
#endif
        do
        :: i < NLOCKS ->
            if
            :: !has_rec[i] -> exc[i] = EXC_NONE; goto next
            :: dead[i] -> exc[i] = EXC_NONE; goto next
            :: else
            fi;
            /* fsafe__lock_acquire(r, abandon_wait): trylock, else wait, and
             * each timed wait that expires calls abandon_wait() */
            gave_up = false;
            do
            :: atomic { lock[i] == 0 -> assert(!unreg_returned[i]); lock[i] = FORKER };
               break
#ifndef BUG_NO_POLL
            :: atomic { lock[i] != 0 && unreg_seq != ack_seq } ->
               /* abandon_wait(): the outcome can only change when a ticket
                * is waiting (or on an abort or back-off, below) */
               walk_poll();
               if
               :: dead[i] -> gave_up = true; break
               :: else
               fi
#endif
            :: atomic { lock[i] != 0 && aborts < ABORTS && held_cnt > 0 } ->
               /* abandon_wait(): polls, then another thread waits at the gate */
#ifndef BUG_NO_POLL
               walk_poll();
#endif
               aborts++; aborted = true; gave_up = true; break
#ifndef BUG_NO_ORDER_BACKOFF
            :: atomic { lock[i] != 0 && lock[i] != FORKER && held_cnt > 0 &&
                        wants[lock[i]] != 0 && lock[wants[lock[i]] - 1] == FORKER } ->
               /* abandon_wait(): after 20 ms with others held, the holder
                * waits for a lock the walk holds */
#ifndef BUG_NO_POLL
               walk_poll();
#endif
               if
               :: dead[i] -> skip           /* acknowledged: hands off */
               :: else -> order = true
               fi;
               gave_up = true; break
#endif
            od;
            if
            :: gave_up && order ->
                /* order_backoff(): give back everything, wait for lock i
                 * holding nothing (still in the epoch: an unregister of it
                 * waits), then start again */
                release_held();
                atomic {
                    k = 0;
                    do
                    :: k < i -> exc[k] = EXC_NONE; k++
                    :: else -> break
                    od;
                    k = 0;
                    held_cnt = 0
                };
                if
                :: dead[i]                      /* checked before the wait */
                :: else ->
                do
                :: atomic { lock[i] == 0 -> assert(!unreg_returned[i]); lock[i] = FORKER };
                   fsafe_lock_release(i);
                   break
#ifndef BUG_NO_POLL
                :: atomic { lock[i] != 0 && unreg_seq != ack_seq } ->
                   walk_poll();
                   if
                   :: dead[i] -> break
                   :: else
                   fi
#endif
                od
                fi;
                aborted = true
            :: else
            fi;
            if
            :: gave_up ->
                if
                :: aborted ->
#ifndef BUG_ABORT_KEEPS_LOCKS
                    if
                    :: !order -> release_held()
                    :: else
                    fi;
#endif
                    end_epoch();
                    atomic {
                        i = 0;
                        do
                        :: i < NLOCKS -> assert(lock[i] != FORKER); unreg_since[i] = false; i++   /* P1 */
                        :: else -> break
                        od;
                        walking = false;
                        aborted = false; order = false; gave_up = false; ok = false
                    };
                    goto walk
                :: else
                fi;
                exc[i] = EXC_NONE;
                goto next
            :: else
            fi;
            held_cnt++;
next:       atomic { walk_pos = i + 1; i++ }
        :: else -> break
        od;
        /* Tickets taken while the walk went on without waiting. */
#ifndef BUG_NO_POLL
        walk_poll();
#endif

        /* Another library's atfork prepare handler, on the forking thread:
         * it takes its own lock (a plain wait: fsafe cannot poll there), then
         * registers a lock (writer_lock() polls when fsafe__walk_is_self()). */
        atomic { libmx == 0 -> libmx = FORKER };
        do
        :: atomic { reg_mutex == 0 -> reg_mutex = FORKER }; break
        :: atomic { reg_mutex != 0 && unreg_seq != ack_seq } -> walk_poll()
        od;
        writer_unlock();

        /* The real fork.  P3, then the child: fsafe__walk_postfork_child(). */
        atomic {
            i = 0;
            do
            :: i < NLOCKS ->
                ok = i < walk_pos && exc[i] == EXC_HELD && has_rec[i];
                assert(!(stable[i] && !unreg_since[i]) || ok);   /* P3 */
                if
                :: ok ->
                    assert(!unreg_returned[i]);
                    assert(lock[i] == FORKER);   /* P1: reset only if ours, */
                    reset[i]++;
                    assert(reset[i] == 1)        /* and once */
                :: else
                fi;
                stable[i] = false;
                unreg_since[i] = false;
                reset[i] = 0;
                i++
            :: else -> break
            od;
            walking = false;
            ok = false
        };
        /* The parent: fsafe__walk_postfork_parent() = release_held(), end_epoch();
         * then the other library's parent handler. */
        release_held();
        end_epoch();
        libmx = 0;
        /* P1, per fork: every acquisition released once in the parent. */
        atomic {
            i = 0;
            do
            :: i < NLOCKS -> assert(lock[i] != FORKER); i++
            :: else -> break
            od
        };
        n++
    :: else -> break
    od
}

init
{
    atomic {
        run forker();
        run registrar(1, 0, 1, false, R1);   /* its own lock, while holding the other */
        run registrar(2, 1, 1, true, R2);    /* the other lock, registered holding libmx */
#if R3 > 0
        run registrar(3, 0, 0, false, R3)    /* the same lock as the first: EEXIST / ENOENT */
#endif
    }
    ;
    (_nr_pr == 1) -> assert(fork_epoch % 2 == 0)   /* P5: every walk ended */
}
