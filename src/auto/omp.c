/* SPDX-License-Identifier: MIT */
/*
 * OpenMP's thread pool in the child of a fork (issue 24), GNU libgomp.
 *
 * libgomp keeps, for each thread that starts a parallel region, a pool of
 * worker threads that wait on a barrier between regions (GCC 12's libgomp:
 * team.c, config/posix/pool.h; the pool hangs off that thread's own state).
 * libgomp has no fork handler.  In the child the pool's record is copied but
 * its threads do not exist, so the child's first parallel region with more
 * than one thread hands its work to threads that are gone and waits on the
 * barrier forever.  (LLVM's libomp re-creates its pool in the child; PyTorch
 * answers the same problem for its own pool by running on one thread.)
 *
 * Auto mode asks libgomp for teams of one thread there: in the child of a
 * thread that started a parallel region in the parent, every entry point
 * that starts a region gets a num_threads of 1.  libgomp's team start
 * returns before it looks at the pool when the team has one thread, and its
 * team end frees such a team without the pool; the region runs on the
 * child's thread, omp_get_num_threads() says 1 inside it, and results do
 * not change (an OpenMP program's results may not depend on the team size).
 * A child of a thread that never started a region (its pool does not exist)
 * is left alone: libgomp starts a fresh pool there, in parallel.  The parent
 * is never changed.
 *
 * The entry points are those GCC emits (libgomp_g.h): GOMP_parallel and its
 * loop, sections and reductions forms (GCC >= 4.9), and the *_start forms of
 * older binaries, whose region ends at GOMP_parallel_end.  num_threads is the
 * third argument of each.  Not covered: `teams` on the host (GOMP_teams_reg
 * starts fresh threads of its own, so it needs nothing), a fork from inside a
 * parallel region (the child's thread is then a member of a team whose other
 * members are gone: its next barrier cannot complete), and LLVM's libomp
 * (__kmpc_fork_call), which needs nothing.
 */
#include "auto.h"

#include <atomic_ops.h>
#include <unistd.h>

/* Whether this thread has started a parallel region (it may own a pool);
 * the child inherits the forker's. */
static __thread int started __attribute__((tls_model("initial-exec")));
/* Set in the child when the forker had started one: every team has one
 * thread from then on, in its children too. */
static int one_thread;

void fsafe__omp_postfork_child(void)
{
    if (!started || one_thread)
        return;
    one_thread = 1;
    if (fsafe__svc.cfg && fsafe__svc.cfg->verbose)
        fsafe__amsg("child %d: OpenMP (libgomp): the forking thread's pool has no threads here; "
                    "parallel regions run on one thread",
                    (int)getpid());
}

/* num_threads as the caller asked, or 1 where the pool's threads are gone. */
static inline unsigned team_size(unsigned asked)
{
    started = 1;
    return one_thread ? 1u : asked;
}

typedef void (*omp_fn)(void *);

/* OMP_REGION(name, (parameters), (arguments)): a void entry point whose
 * third parameter is num_threads, passed on as team_size(num_threads). */
#define OMP_REGION(name, params, args)                                                             \
    FSAFE_EXPORT void name params                                                                  \
    {                                                                                              \
        static AO_t real_;                                                                         \
        FSAFE__NEXT_IN(&real_, void(*) params, #name) args;                                        \
    }
#define OMP_HEAD omp_fn fn, void *data, unsigned num_threads
#define OMP_ARGS fn, data, team_size(num_threads)

/* GCC >= 4.9: the region ends inside the call. */
OMP_REGION(GOMP_parallel, (OMP_HEAD, unsigned flags), (OMP_ARGS, flags))
OMP_REGION(GOMP_parallel_sections, (OMP_HEAD, unsigned count, unsigned flags),
           (OMP_ARGS, count, flags))
#define OMP_LOOP(kind)                                                                             \
    OMP_REGION(GOMP_parallel_loop_##kind,                                                          \
               (OMP_HEAD, long start, long end, long incr, long chunk, unsigned flags),            \
               (OMP_ARGS, start, end, incr, chunk, flags))
#define OMP_LOOP_RUNTIME(kind)                                                                     \
    OMP_REGION(GOMP_parallel_loop_##kind,                                                          \
               (OMP_HEAD, long start, long end, long incr, unsigned flags),                        \
               (OMP_ARGS, start, end, incr, flags))
OMP_LOOP(static)
OMP_LOOP(dynamic)
OMP_LOOP(guided)
OMP_LOOP(nonmonotonic_dynamic)
OMP_LOOP(nonmonotonic_guided)
OMP_LOOP_RUNTIME(runtime)
OMP_LOOP_RUNTIME(nonmonotonic_runtime)
OMP_LOOP_RUNTIME(maybe_nonmonotonic_runtime)

/* Older binaries: the caller runs its share, then GOMP_parallel_end. */
OMP_REGION(GOMP_parallel_start, (OMP_HEAD), (OMP_ARGS))
OMP_REGION(GOMP_parallel_sections_start, (OMP_HEAD, unsigned count), (OMP_ARGS, count))
#define OMP_LOOP_START(kind)                                                                       \
    OMP_REGION(GOMP_parallel_loop_##kind##_start,                                                  \
               (OMP_HEAD, long start, long end, long incr, long chunk),                            \
               (OMP_ARGS, start, end, incr, chunk))
OMP_LOOP_START(static)
OMP_LOOP_START(dynamic)
OMP_LOOP_START(guided)
OMP_REGION(GOMP_parallel_loop_runtime_start, (OMP_HEAD, long start, long end, long incr),
           (OMP_ARGS, start, end, incr))

/* The one that returns a value (task reductions, GCC >= 9). */
FSAFE_EXPORT unsigned GOMP_parallel_reductions(omp_fn fn, void *data, unsigned num_threads,
                                               unsigned flags)
{
    static AO_t real_;
    return FSAFE__NEXT_IN(&real_, unsigned (*)(omp_fn, void *, unsigned, unsigned),
                          "GOMP_parallel_reductions")(OMP_ARGS, flags);
}
