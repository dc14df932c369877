/* SPDX-License-Identifier: MIT */
/*
 * Ruby C extension FsafeDemo: a native pthread (not a Ruby thread; it never
 * touches the VM) takes and releases a lock in a loop, holding it most of the
 * time, and FsafeDemo.take takes the same lock.  The lock is registered with
 * fsafe through the optional API, so one source builds two ways: with
 * FSAFE_OPTIONAL (no -lfsafe: fsafe only if preloaded) and linked -lfsafe.
 */
/* ruby.h first: its config.h defines _GNU_SOURCE. */
#include <ruby.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <fsafe.h>

static pthread_mutex_t demo_lock = PTHREAD_MUTEX_INITIALIZER;
static int demo_registration = -1;
static int demo_started;

/* 2 ms held, then taken again at once: a fork from any other thread almost
 * always finds the lock held, which is what a busy native library looks like.
 * The worker spins for the lock rather than sleeping in the kernel: a thread
 * that has just taken and released it (an os.register_at_fork "before"
 * callback does) would otherwise fork while the worker is still being woken,
 * and the child would not show the hang. */
static void *demo_worker(void *arg)
{
    (void)arg;
    struct timespec in = {0, 2000000};
    for (;;) {
        while (pthread_mutex_trylock(&demo_lock) != 0)
            sched_yield();
        nanosleep(&in, NULL);
        pthread_mutex_unlock(&demo_lock);
        sched_yield();
    }
    return NULL;
}

/* FsafeDemo.start: starts the native worker once. */
static VALUE demo_start(VALUE self)
{
    (void)self;
    if (!demo_started) {
        pthread_t t;
        int r = pthread_create(&t, NULL, demo_worker, NULL);
        if (r != 0)
            rb_syserr_fail(r, "pthread_create");
        pthread_detach(t);
        demo_started = 1;
    }
    return Qnil;
}

/* FsafeDemo.take(timeout_ms): true if the lock was taken (and released) within
 * the timeout, false if not: in a child that would be a hang. */
static VALUE demo_take(VALUE self, VALUE timeout_ms)
{
    (void)self;
    long ms = NUM2LONG(timeout_ms);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    if (pthread_mutex_timedlock(&demo_lock, &ts) != 0)
        return Qfalse;
    pthread_mutex_unlock(&demo_lock);
    return Qtrue;
}

/* FsafeDemo.registration: 0, or ENOSYS when fsafe is not in the process. */
static VALUE demo_registration_get(VALUE self)
{
    (void)self;
    return INT2NUM(demo_registration);
}

/* FsafeDemo.stats: [forks, forks_via_handler] from fsafe, or nil without it. */
static VALUE demo_stats(VALUE self)
{
    (void)self;
    struct fsafe_stats s;
    if (!fsafe_present() || fsafe_get_stats(&s, sizeof s) != 0)
        return Qnil;
    return rb_ary_new_from_args(2, ULL2NUM(s.forks), ULL2NUM(s.forks_via_handler));
}

__attribute__((visibility("default"))) void Init_fsafe_demo(void)
{
    /* Registered at load, before the worker can hold the lock. */
    demo_registration = fsafe_opt_register_lock(&demo_lock, FSAFE_MUTEX, 100, "ruby demo_lock");
    VALUE m = rb_define_module("FsafeDemo");
    rb_define_module_function(m, "start", demo_start, 0);
    rb_define_module_function(m, "take", demo_take, 1);
    rb_define_module_function(m, "registration", demo_registration_get, 0);
    rb_define_module_function(m, "stats", demo_stats, 0);
#ifdef FSAFE_OPTIONAL
    rb_define_const(m, "LINKED", Qfalse);
#else
    rb_define_const(m, "LINKED", Qtrue);
#endif
}
