/* SPDX-License-Identifier: MIT */
/*
 * Promela model of fsafe's register/unregister protocol racing with fork
 * (src/registry.c, the fork side of src/fork.c).  Checked by spin in CI
 * (test/reliability.cmake, "model.registry"):
 *     spin -a registry.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan
 * It must never be out of step with the C: each inline below names the C
 * function it mirrors, and the state word is encoded exactly as in registry.c:
 * (epoch << 4) | PENDING | status.
 *
 * Checked (assertions, plus spin's invalid end states for deadlock):
 *   P1 a lock the forker acquires is released exactly once in the parent, and
 *      reset exactly once in the child if it was held across the real fork;
 *   P2 once unregister has returned, fsafe never touches that lock again;
 *   P3 a lock registered before the fork began, whose unregister did not start
 *      before the real fork, is held across the real fork;
 *   P4 no deadlock: every process reaches its end (registrars and forker block
 *      on each other through reg_mutex, the user locks and PENDING waits).
 *
 * Not modelled: the order list's memory (entries are fixed per lock here, so
 * limbo and entry reuse are not checked: test_stress and ASan cover those),
 * ranks (the walk goes in index order), lock kinds (one mutual-exclusion lock
 * per entry; ops without try_acquire are not modelled), the child's registry
 * fix-up, and signals.
 *
 * Seeded bugs, to show the model catches them (README, reliability):
 *   -DBUG_NO_PENDING_WAIT  unregister does not wait for a fork that holds the
 *                          lock: it marks it DEAD and returns (P2 fails)
 *   -DBUG_NO_POLL          the forker never polls pending entries (deadlock)
 *   -DBUG_BLOCKING_WRITER  the forker's atfork-time registration blocks on
 *                          reg_mutex (the deadlock fixed in writer_lock)
 */

#define NLOCKS 2
#ifndef FORKS
#define FORKS 1   /* forks by the forking thread */
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

/* status values and bits: registry.c ST_* */
#define ST_FREE 0
#define ST_LIVE 1
#define ST_DEAD 2
#define ST_CLAIMED 3
#define ST_HELD 4
#define ST_RELEASED 5
#define ST_PENDING 8
#define STATUS(w) ((w) & 7)
#define EPOCH(w) ((w) / 16)
#define MAKE(ep, st) ((ep) * 16 + (st))

#define FORKER 9 /* owner id of the forker in lock[] */

byte fork_epoch;          /* registry.c fork_epoch: odd during a walk */
byte pending_count;       /* registry.c pending_count */
byte state[NLOCKS];       /* fsafe__entry.state */
bool linked[NLOCKS];      /* reachable from the order list (order_insert/unlink) */
bool registered[NLOCKS];  /* in the hash table (writer-only) */
byte reg_mutex;           /* 0 free, else owner */
byte lock[NLOCKS];        /* the user's lock: 0 free, else owner */

/* forker-local, made global for the end-of-fork checks */
bool held[NLOCKS];        /* on the held stack (held_top) */
bool how_acq[NLOCKS];     /* entry->how == ACQUIRED */
byte acq[NLOCKS], rel_parent[NLOCKS], rel_child[NLOCKS];

/* ghosts for the properties */
bool unreg_returned[NLOCKS]; /* P2: unregister returned, lock not registered again since */
bool unreg_started[NLOCKS];  /* P3: an unregister is under way */
byte unreg_count[NLOCKS];    /* P3: unregisters started so far */
bool reg_done[NLOCKS];       /* P3: registration has returned */

/* ---- atomics: AO_compare_and_swap_full ------------------------------------- */
inline cas(word, expect, new, ok)
{
    atomic {
        if
        :: word == expect -> word = new; ok = true
        :: else -> ok = false
        fi
    }
}

/* claimed_by_current_fork() */
#define CLAIMED_NOW(w, ep) (((ep) % 2 == 1) && EPOCH(w) == (ep) && \
                            (STATUS(w) == ST_CLAIMED || STATUS(w) == ST_HELD))

/* ---- the user's lock, touched by fsafe only in these two ---------------------- */
inline fsafe_lock_release(i)   /* fsafe__lock_release_parent() */
{
    assert(!unreg_returned[i]);           /* P2 */
    assert(lock[i] == FORKER);            /* P1: released once, only if ours */
    lock[i] = 0;
    rel_parent[i]++
}

/* mark_released(): CLAIMED/HELD -> RELEASED, keeping PENDING */
inline mark_released(i)
{
    do
    :: atomic {
           w = state[i];
           state[i] = (w & ~7) | ST_RELEASED
       };
       break
    od
}

/* fsafe__registry_poll_pending() */
inline poll_pending()
{
    if
    :: pending_count == 0
    :: else ->
        j = 0;
        do
        :: j < NLOCKS ->
            if
            :: held[j] && (state[j] & ST_PENDING) ->
                held[j] = false;
                if
                :: how_acq[j] -> fsafe_lock_release(j)
                :: else
                fi;
                mark_released(j)
            :: else
            fi;
            j++
        :: else -> break
        od
    fi
}

/* ---- the writer lock: writer_lock() / writer_unlock() ------------------------- */
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
        unreg_returned[i] = false;
        state[i] = ST_LIVE;                 /* AO_store_release(&e->state, ST_LIVE) */
        linked[i] = true;                   /* order_insert: store_release pred->next */
        registered[i] = true;               /* hput_raw */
        reg_done[i] = true
    fi;
    writer_unlock()
}

/* ---- fsafe_unregister_lock() ------------------------------------------------------ */
inline do_unregister(me, i)
{
    writer_lock(me);
    if
    :: !registered[i] -> skip               /* ENOENT */
    :: else ->
        unreg_started[i] = true;
        unreg_count[i]++;
        reg_done[i] = false;
        counted = false;
        do
        :: w = state[i]; ep = fork_epoch;
           if
#ifndef BUG_NO_PENDING_WAIT
           :: CLAIMED_NOW(w, ep) ->
               if
               :: !(w & ST_PENDING) ->
                   cas(state[i], w, w | ST_PENDING, ok);
                   if
                   :: ok -> pending_count++; counted = true
                   :: else
                   fi
               :: else -> ok = true
               fi;
               if
               :: ok ->
                   /* wait_for_forker() */
                   (!CLAIMED_NOW(state[i], fork_epoch))
               :: else
               fi
               /* continue */
#endif
           :: else ->
               /* Not this fork's: DEAD wins against any later claim. */
               cas(state[i], w, ST_DEAD, ok);
               if
               :: ok -> break
               :: else
               fi
           fi
        od;
        if
        :: counted -> pending_count--
        :: else
        fi;
        registered[i] = false;              /* *slot = TOMB */
        linked[i] = false;                  /* order_unlink */
        unreg_returned[i] = true;
        unreg_started[i] = false
    fi;
    writer_unlock()
}

/* ---- a registering thread ----------------------------------------------------------- */
/* Registers, uses and unregisters its lock; the second one also holds the
 * other lock while it calls into the registry (so the forker, waiting for
 * that lock, waits on a thread that waits on reg_mutex). */
proctype registrar(byte me; byte mine; byte other; byte rounds)
{
    byte w, ep, r;
    bool ok, counted;
    do
    :: r < rounds ->
        do_register(me, mine);
        atomic { lock[mine] == 0 -> lock[mine] = me };
        lock[mine] = 0;
        if
        :: other != mine ->
            atomic { lock[other] == 0 -> lock[other] = me };
            do_unregister(me, mine);
            lock[other] = 0
        :: else ->
            do_unregister(me, mine)
        fi;
        r++
    :: else -> break
    od
}

/* ---- the forker: fsafe__registry_acquire_all() ... end_epoch() ------------------------ */
proctype forker()
{
    byte i, j, w, ep, n;
    bool ok, gave_up, stable[NLOCKS];
    byte ucount[NLOCKS];
    n = 0;
    do
    :: n < FORKS ->
        /* walk: fsafe__registry_acquire_all() */
        atomic {
            fork_epoch++;                   /* now odd */
            ep = fork_epoch;
            i = 0;
            do
            :: i < NLOCKS ->
                stable[i] = reg_done[i] && !unreg_started[i];
                ucount[i] = unreg_count[i];
                i++
            :: else -> break
            od
        };
        i = 0;
        do
        :: i < NLOCKS ->
            held[i] = false; how_acq[i] = false;
            if
            :: !linked[i] -> goto next      /* not on the order list */
            :: else
            fi;
            w = state[i];
            do
            :: (STATUS(w) == ST_FREE || STATUS(w) == ST_DEAD || (w & ST_PENDING)) -> goto next
            :: else ->
                cas(state[i], w, MAKE(ep, ST_CLAIMED), ok);
                if
                :: ok -> break
                :: else -> w = state[i]
                fi
            od;
            /* fsafe__lock_acquire(e, abandon_wait): trylock, else poll */
            gave_up = false;
            do
            :: atomic { lock[i] == 0 -> assert(!unreg_returned[i]); lock[i] = FORKER };
               how_acq[i] = true; acq[i]++; break
#ifndef BUG_NO_POLL
            :: atomic { lock[i] != 0 && pending_count > 0 } ->
               /* waiter_tick(): each timed wait that expires polls; the
                * outcome can only change when something is pending */
               poll_pending();               /* abandon_wait() */
               if
               :: (state[i] & ST_PENDING) -> gave_up = true; break
               :: else
               fi
#endif
            od;
            if
            :: gave_up -> mark_released(i); goto next
            :: else
            fi;
            /* CLAIMED -> HELD, unless an unregister arrived meanwhile */
            do
            :: w = state[i];
               if
               :: (w & ST_PENDING) ->
                   fsafe_lock_release(i); mark_released(i); goto next
               :: else ->
                   cas(state[i], w, MAKE(ep, ST_HELD), ok);
                   if
                   :: ok -> break
                   :: else
                   fi
               fi
            od;
            held[i] = true;
next:       i++
        :: else -> break
        od;

        /* Another library's atfork prepare handler registers a lock on the
         * forking thread (writer_lock when fsafe__in_fork_self()). */
#ifndef BUG_BLOCKING_WRITER
        do
        :: atomic { reg_mutex == 0 -> reg_mutex = FORKER }; break
        :: atomic { reg_mutex != 0 && pending_count > 0 } -> poll_pending()
        od;
#else
        writer_lock(FORKER);
#endif
        writer_unlock();

        /* The real fork.  P3, then the child: fsafe__registry_reset_child(). */
        atomic {
            i = 0;
            do
            :: i < NLOCKS ->
                assert(!(stable[i] && unreg_count[i] == ucount[i]) || held[i]);   /* P3 */
                if
                :: held[i] -> assert(!unreg_returned[i]); rel_child[i]++
                :: else
                fi;
                i++
            :: else -> break
            od
        };
        /* The parent: fsafe__registry_release_parent(), then end_epoch(). */
        i = 0;
        do
        :: i < NLOCKS ->
            if
            :: held[i] && how_acq[i] -> fsafe_lock_release(i)
            :: else
            fi;
            held[i] = false;
            i++
        :: else -> break
        od;
        fork_epoch++;                       /* now even: the epoch has ended */
        /* P1, per fork: every acquisition released once in the parent. */
        i = 0;
        do
        :: i < NLOCKS -> assert(acq[i] == rel_parent[i]); i++
        :: else -> break
        od;
        n++
    :: else -> break
    od
}

init
{
    atomic {
        run forker();
        run registrar(1, 0, 1, R1);   /* its own lock, while holding the other */
        run registrar(2, 1, 1, R2);   /* the other lock */
#if R3 > 0
        run registrar(3, 0, 0, R3)    /* the same lock as the first: EEXIST / ENOENT */
#endif
    }
}
