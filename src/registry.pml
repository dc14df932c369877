/* SPDX-License-Identifier: MIT */
/*
 * Promela model of fsafe's register/unregister protocol racing with fork
 * (src/registry.c, the fork side of src/fork.c).  Checked by spin in CI
 * (test/reliability.cmake, "model.registry", through test/model_check.sh):
 *     spin -a registry.pml && gcc -O2 -DSAFETY -DCOLLAPSE -o pan pan.c && ./pan
 * It must never be out of step with the C: each inline below names the C
 * function it mirrors, and the state word is encoded exactly as in registry.c:
 * (epoch << 4) | PENDING | status.
 *
 * Checked (assertions, plus spin's invalid end states for deadlock):
 *   P1 a lock the forker acquires is released exactly once in the parent (also
 *      when the walk aborts and gives everything back), and reset exactly once
 *      in the child if it was held across the real fork;
 *   P2 once unregister has returned, fsafe never touches that lock again;
 *   P3 a lock registered before the (last) walk began, whose unregister did
 *      not start before the real fork, is held across the real fork;
 *   P4 no deadlock: every process reaches its end (registrars and forker block
 *      on each other through reg_mutex, the user locks, another library's lock
 *      that its atfork prepare handler takes, and PENDING waits).
 *   P5 pending_count is back to 0 once every thread has finished: an
 *      unregister that waits, finds the lock registered again and claimed by
 *      the next walk, and sets PENDING a second time must not count it twice
 *      (it did, until the model found it: -DBUG_DOUBLE_COUNT).
 *
 * Not modelled: the order list's memory (entries are fixed per lock here, so
 * limbo and entry reuse are not checked: test_stress and ASan cover those; a
 * re-registration reuses the lock's state word, so an unregister still
 * waiting on the old entry may wait longer here than in the C), the held
 * buffer's capacity (locks registered during a walk are skipped there),
 * ranks (the walk goes in index order), lock kinds (one mutual-exclusion lock
 * per entry, always HOW_ACQUIRED: the forker never holds a registered lock
 * itself; ops without try_acquire are not modelled), the child's registry
 * fix-up, and signals.  The gate has one forker, so the walk's abort (another
 * thread waits at the gate) is a nondeterministic choice while the forker
 * waits for a lock with another lock already held, at most ABORTS times per
 * fork.  BUG_NO_POLL also drops the walk's final poll.  (The forker blocking
 * on reg_mutex in the atfork handler, once a real bug and a seeded one, no
 * longer deadlocks: no writer waits for the fork while it holds reg_mutex.)
 *
 * Seeded bugs, to show the model catches them (README, reliability):
 *   -DBUG_NO_PENDING_WAIT     unregister does not wait for a fork that holds
 *                             the lock: it marks it DEAD and returns (P2 fails)
 *   -DBUG_NO_POLL             the forker never polls pending entries while it
 *                             waits for a lock (deadlock)
 *   -DBUG_WAIT_HOLDING_MUTEX  unregister keeps reg_mutex while it waits for
 *                             the forker (deadlock: the forker waits in an
 *                             atfork handler for a lock whose holder waits
 *                             for reg_mutex)
 *   -DBUG_ABORT_KEEPS_LOCKS   an aborted walk ends its epoch without giving
 *                             back what it took (P1 fails)
 */

#define NLOCKS 2
#ifndef FORKS
#define FORKS 1   /* forks by the forking thread */
#endif
#ifndef ABORTS
#define ABORTS 1  /* walk aborts per fork */
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
#define ST_RELEASED 4
#define ST_PENDING 8
#define STATUS(w) ((w) & 7)
#define EPOCH(w) ((w) / 16)
#define MAKE(ep, st) ((ep) * 16 + (st))

#define FORKER 9 /* owner id of the forker in lock[] and libmx */

byte fork_epoch;          /* registry.c fork_epoch: odd during a walk */
byte pending_count;       /* registry.c pending_count */
byte state[NLOCKS];       /* *fsafe__entry.st */
bool linked[NLOCKS];      /* reachable from the order list (order_insert/unlink) */
bool registered[NLOCKS];  /* in the hash table (writer-only) */
byte reg_mutex;           /* 0 free, else owner */
byte lock[NLOCKS];        /* the user's lock: 0 free, else owner */
byte libmx;               /* another library's lock (not registered), taken by
                           * its atfork prepare handler: 0 free, else owner */

/* forker-local, made global for the end-of-fork checks */
byte hslot[NLOCKS];       /* held->slot[k]: entry index + 1; 0 once released (ptr == NULL) */
byte held_n;              /* held_n */

/* ghosts for the properties */
bool unreg_returned[NLOCKS]; /* P2: unregister returned, lock not registered again since */
byte unreg_active[NLOCKS];   /* P3: unregisters under way (they no longer exclude each other) */
bool unreg_since[NLOCKS];    /* P3: an unregister started since the walk began */
bool walking;                /* P3: from the walk's start to the real fork */
bool reg_done[NLOCKS];       /* P3: registration has returned, no unregister finished since */

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
#define CLAIMED_NOW(w, ep) (((ep) % 2 == 1) && EPOCH(w) == (ep) && STATUS(w) == ST_CLAIMED)

/* ---- the user's lock, touched by fsafe only in these two ---------------------- */
inline fsafe_lock_release(i)   /* fsafe__lock_release_parent() */
{
    assert(!unreg_returned[i]);           /* P2 */
    assert(lock[i] == FORKER);            /* P1: released once, only if ours */
    lock[i] = 0
}

/* mark_released(): CLAIMED -> RELEASED, keeping PENDING (a CAS loop in the C;
 * one atomic step here, since the loop only retries) */
inline mark_released(i)
{
    atomic {
        w = state[i];
        state[i] = (w & ~7) | ST_RELEASED
    }
}

/* fsafe__registry_poll_pending(): let go of every held entry whose unregister
 * waits.  k, j are the caller's locals. */
inline poll_pending()
{
    if
    :: pending_count == 0
    :: else ->
        k = 0;
        do
        :: k < held_n ->
            if
            :: hslot[k] != 0 && (state[hslot[k] - 1] & ST_PENDING) ->
                j = hslot[k] - 1;
                fsafe_lock_release(j);
                hslot[k] = 0;
                mark_released(j)
            :: else
            fi;
            k++
        :: else -> break
        od;
        j = 0
    fi
}

/* release_held(): newest first */
inline release_held()
{
    k = held_n;
    do
    :: k > 0 ->
        k--;
        if
        :: hslot[k] != 0 -> fsafe_lock_release(hslot[k] - 1)
        :: else
        fi
    :: else -> break
    od
}

/* end_epoch(): every CLAIMED/RELEASED entry is LIVE again.  (Clearing the
 * slots is not in the C, where held_n = 0 hides them; it keeps the model's
 * state small.) */
inline end_epoch()
{
    atomic {
        k = 0;
        do
        :: k < NLOCKS -> hslot[k] = 0; k++
        :: else -> break
        od;
        k = 0;
        held_n = 0
    };
    fork_epoch++                          /* now even */
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
        /* AO_store_release(e->st, ST_LIVE).  (A new entry in the C; here the
         * lock's one state word, so a forker still standing on the old entry
         * may claim it: the lock counts as registered again from here.) */
        atomic { unreg_returned[i] = false; state[i] = ST_LIVE };
        /* order_insert (store_release pred->next: the publication point);
         * hput_raw is writer-only, so it goes in the same step */
        atomic {
            linked[i] = true;
            registered[i] = true;
            reg_done[i] = true
        }
    fi;
    writer_unlock()
}

/* ---- fsafe_unregister_lock() ------------------------------------------------------ */
/* Steps that touch only writer-only data (registered[], the hash table) are
 * folded into the neighbouring step: no other thread can see them in between.
 * counted, started, w, ep, ok are false/0 on entry (reset on the way out). */
inline do_unregister(me, i)
{
    writer_lock(me);
    do
    :: atomic { !registered[i] -> w = 0 }; break   /* hfind: ENOENT (also after a wait) */
    :: atomic {
           registered[i] ->
           if
           :: !started -> started = true; unreg_active[i]++; unreg_since[i] = unreg_since[i] || walking
           :: else
           fi;
           w = state[i]
       };
        ep = fork_epoch;
        if
#ifndef BUG_NO_PENDING_WAIT
        :: CLAIMED_NOW(w, ep) ->
            if
            :: !(w & ST_PENDING) ->
                cas(state[i], w, w | ST_PENDING, ok);
                if
#ifdef BUG_DOUBLE_COUNT
                :: ok -> pending_count++; counted = true   /* on every PENDING set */
#else
                :: ok ->                    /* AO_fetch_and_add_full, once per call (P5) */
                    if
                    :: !counted -> pending_count++
                    :: else
                    fi;
                    counted = true
#endif
                :: else                     /* continue */
                fi
            :: else -> ok = true
            fi;
            if
            :: ok ->
#ifndef BUG_WAIT_HOLDING_MUTEX
                writer_unlock();
#endif
                /* wait_for_forker() */
                (!CLAIMED_NOW(state[i], fork_epoch));
#ifndef BUG_WAIT_HOLDING_MUTEX
                writer_lock(me);
#endif
                ok = false
            :: else
            fi
            /* continue: look the lock up again */
#endif
        :: else ->
            /* Not this fork's: DEAD wins against any later claim. */
            cas(state[i], w, ST_DEAD, ok);
            if
            :: ok ->
                /* *slot = TOMB (writer-only) and order_unlink (store_release) */
                atomic {
                    registered[i] = false;
                    linked[i] = false;
                    unreg_returned[i] = true; reg_done[i] = false
                };
                break
            :: else
            fi
        fi
    od;
    atomic {
        if
        :: counted -> pending_count--       /* AO_fetch_and_add_full(-1) */
        :: else
        fi;
        if
        :: started -> unreg_active[i]--
        :: else
        fi;
        counted = false; started = false; w = 0; ep = 0; ok = false
    };
    writer_unlock()
}

/* ---- a registering thread ----------------------------------------------------------- */
/* Registers, uses and unregisters its lock.  The first also holds the other
 * lock while it unregisters (so the forker, waiting for that lock, waits on a
 * thread that waits for the forker); the second holds libmx while it registers
 * (so the forker, waiting for libmx in an atfork handler where it cannot poll,
 * waits on a thread that waits for reg_mutex). */
proctype registrar(byte me; byte mine; byte other; bool hold_lib; byte rounds)
{
    byte w, ep, r;
    bool ok, counted, started;
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

/* ---- the forker: fsafe_fork() -> fsafe__registry_acquire_all() ... end_epoch() ------- */
proctype forker()
{
    byte i, j, k, w, ep, n, aborts;
    bool ok, gave_up, aborted, stable[NLOCKS];
    byte reset[NLOCKS];
    n = 0;
    do
    :: n < FORKS ->
        aborts = 0;
walk:   /* fsafe__registry_acquire_all() */
        atomic {
            fork_epoch++;                   /* now odd */
            ep = fork_epoch;
            held_n = 0;
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
        do
        :: i < NLOCKS ->
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
            /* fsafe__lock_acquire(e, abandon_wait): trylock, else wait, and
             * each timed wait that expires calls abandon_wait() */
            gave_up = false;
            do
            :: atomic { lock[i] == 0 -> assert(!unreg_returned[i]); lock[i] = FORKER };
               break
#ifndef BUG_NO_POLL
            :: atomic { lock[i] != 0 && pending_count > 0 } ->
               /* abandon_wait(): the outcome can only change when something
                * is pending (or when it aborts, below) */
               poll_pending();
               if
               :: (state[i] & ST_PENDING) -> gave_up = true; break
               :: else
               fi
#endif
            :: atomic { lock[i] != 0 && aborts < ABORTS && held_n > 0 } ->
               /* abandon_wait(): polls, then another thread waits at the gate
                * (only with something held: an abort that holds nothing gives
                * nothing back, and ends the epoch as a finished fork does) */
#ifndef BUG_NO_POLL
               poll_pending();
#endif
               aborts++; aborted = true; gave_up = true; break
            od;
            if
            :: gave_up ->
                mark_released(i);
                if
                :: aborted ->
                    /* give everything back, end the epoch; protocol_walk()
                     * backs off and walks again */
#ifndef BUG_ABORT_KEEPS_LOCKS
                    release_held();
#endif
                    end_epoch();
                    atomic {
                        i = 0;
                        do
                        :: i < NLOCKS -> assert(lock[i] != FORKER); unreg_since[i] = false; i++   /* P1 */
                        :: else -> break
                        od;
                        walking = false;
                        aborted = false; gave_up = false; w = 0; ep = 0; ok = false
                    };
                    goto walk
                :: else
                fi;
                goto next
            :: else
            fi;
            /* The entry stays CLAIMED while held: held->slot[held_n++] */
            atomic { hslot[held_n] = i + 1; held_n++ };
next:       atomic { w = 0; i++ }
        :: else -> break
        od;
        /* Unregisters that arrived while the walk went on without waiting. */
#ifndef BUG_NO_POLL
        poll_pending();
#endif

        /* Another library's atfork prepare handler, on the forking thread:
         * it takes its own lock (a plain wait: fsafe cannot poll there), then
         * registers a lock (writer_lock() when fsafe__in_fork_self()). */
        atomic { libmx == 0 -> libmx = FORKER };
        do
        :: atomic { reg_mutex == 0 -> reg_mutex = FORKER }; break
        :: atomic { reg_mutex != 0 && pending_count > 0 } -> poll_pending()
        od;
        writer_unlock();

        /* The real fork.  P3, then the child: fsafe__registry_reset_child(). */
        atomic {
            i = 0;
            do
            :: i < NLOCKS ->
                ok = false;
                k = 0;
                do
                :: k < held_n -> ok = ok || hslot[k] == i + 1; k++
                :: else -> break
                od;
                assert(!(stable[i] && !unreg_since[i]) || ok);   /* P3 */
                stable[i] = false;
                unreg_since[i] = false;
                i++
            :: else -> break
            od;
            k = 0;
            do
            :: k < held_n ->
                if
                :: hslot[k] != 0 ->
                    assert(!unreg_returned[hslot[k] - 1]);
                    assert(lock[hslot[k] - 1] == FORKER);   /* P1: reset only if ours, */
                    reset[hslot[k] - 1]++;
                    assert(reset[hslot[k] - 1] == 1)         /* and once */
                :: else
                fi;
                k++
            :: else -> break
            od;
            i = 0;
            do
            :: i < NLOCKS -> reset[i] = 0; i++
            :: else -> break
            od;
            walking = false;
            ok = false
        };
        /* The parent: fsafe__registry_release_parent() = release_held(), end_epoch();
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
    (_nr_pr == 1) -> assert(pending_count == 0)   /* P5 */
}
