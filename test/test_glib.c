/* SPDX-License-Identifier: MIT */
/*
 * GLib's locks in the child of a fork (issue 24; src/auto/glib.c).
 *
 *   test_glib CASE ok|hang
 *   mutex     GThreadPool workers take the program's GMutex in a loop
 *   rec       threads take a GRecMutex (twice) and a GRWLock for writing
 *   cond      threads wait on GConds with the program's GMutex (one never
 *             signalled, one with g_cond_wait_until timeouts, one signalled
 *             in a loop by a fourth thread)
 * The main thread forks FORKS times; each child must take every lock of its
 * case within 1 s (g_mutex_trylock, g_rec_mutex_trylock,
 * g_rw_lock_writer_trylock in a loop) and exit 0, or exits 3.  "ok" (under
 * auto mode): every child gets them; "hang" (without fsafe): some child
 * cannot.  The cond case has no "hang" twin: it checks that a thread in a
 * condition wait does not hold a fork up (CMake fails the "ok" runs on any
 * fsafe message, and a fork that waited for a waiter would print one).
 */
#include "common.h"

#include <glib.h>

#define FORKS 30
#define CHILD_MS 1000

static GMutex app_lock;
static GRecMutex rec_lock;
static GRWLock rw_lock;
static GMutex cond_lock;
static GCond never, ticking, timed;
static volatile int stop;

static void spin(void)
{
    for (volatile int k = 0; k < 200; k++) {
    }
}

static void pool_job(gpointer data, gpointer user)
{
    (void)data, (void)user;
    while (!stop) {
        g_mutex_lock(&app_lock);
        spin();
        g_mutex_unlock(&app_lock);
    }
}

static gpointer rec_thread(gpointer arg)
{
    (void)arg;
    while (!stop) {
        g_rec_mutex_lock(&rec_lock);
        g_rec_mutex_lock(&rec_lock);
        spin();
        g_rec_mutex_unlock(&rec_lock);
        g_rec_mutex_unlock(&rec_lock);
        g_rw_lock_writer_lock(&rw_lock);
        spin();
        g_rw_lock_writer_unlock(&rw_lock);
    }
    return NULL;
}

static gpointer never_waiter(gpointer arg)
{
    (void)arg;
    g_mutex_lock(&cond_lock);
    while (!stop)
        g_cond_wait(&never, &cond_lock);
    g_mutex_unlock(&cond_lock);
    return NULL;
}

static gpointer timed_waiter(gpointer arg)
{
    (void)arg;
    g_mutex_lock(&cond_lock);
    while (!stop)
        g_cond_wait_until(&timed, &cond_lock, g_get_monotonic_time() + 2000);
    g_mutex_unlock(&cond_lock);
    return NULL;
}

static gpointer tick_waiter(gpointer arg)
{
    (void)arg;
    g_mutex_lock(&cond_lock);
    while (!stop)
        g_cond_wait(&ticking, &cond_lock);
    g_mutex_unlock(&cond_lock);
    return NULL;
}

static gpointer ticker(gpointer arg)
{
    (void)arg;
    while (!stop) {
        g_mutex_lock(&cond_lock);
        g_cond_signal(&ticking);
        g_mutex_unlock(&cond_lock);
    }
    return NULL;
}

/* In the child: whether try() succeeds within CHILD_MS (write(2) only). */
static int within(gboolean (*try)(void))
{
    for (int ms = 0; ms < CHILD_MS; ms++) {
        if (try())
            return 1;
        t_sleep_ms(1);
    }
    return 0;
}

static gboolean try_app(void)
{
    if (!g_mutex_trylock(&app_lock))
        return 0;
    g_mutex_unlock(&app_lock);
    return 1;
}

static gboolean try_rec(void)
{
    if (!g_rec_mutex_trylock(&rec_lock))
        return 0;
    g_rec_mutex_unlock(&rec_lock);
    if (!g_rw_lock_writer_trylock(&rw_lock))
        return 0;
    g_rw_lock_writer_unlock(&rw_lock);
    return 1;
}

static gboolean try_cond(void)
{
    if (!g_mutex_trylock(&cond_lock))
        return 0;
    g_mutex_unlock(&cond_lock);
    return 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 3 || (strcmp(argv[2], "ok") != 0 && strcmp(argv[2], "hang") != 0)) {
        fprintf(stderr, "usage: %s mutex|rec|cond ok|hang\n", argv[0]);
        return 2;
    }
    const char *what = argv[1];
    int expect_hang = strcmp(argv[2], "hang") == 0;
    gboolean (*try)(void) = NULL;
    GThreadPool *pool = NULL;
    GThread *th[4];
    int nth = 0;
    if (strcmp(what, "mutex") == 0) {
        pool = g_thread_pool_new(pool_job, NULL, 2, TRUE, NULL);
        g_thread_pool_push(pool, GINT_TO_POINTER(1), NULL);
        g_thread_pool_push(pool, GINT_TO_POINTER(2), NULL);
        try = try_app;
    } else if (strcmp(what, "rec") == 0) {
        th[nth++] = g_thread_new("rec1", rec_thread, NULL);
        th[nth++] = g_thread_new("rec2", rec_thread, NULL);
        try = try_rec;
    } else if (strcmp(what, "cond") == 0 && !expect_hang) {
        th[nth++] = g_thread_new("never", never_waiter, NULL);
        th[nth++] = g_thread_new("timed", timed_waiter, NULL);
        th[nth++] = g_thread_new("tick", tick_waiter, NULL);
        th[nth++] = g_thread_new("ticker", ticker, NULL);
        try = try_cond;
    } else {
        fprintf(stderr, "%s: unknown case or expectation: %s %s\n", argv[0], what, argv[2]);
        return 2;
    }
    t_sleep_ms(50);
    int bad = 0, forks = 0;
    for (; forks < FORKS && !(expect_hang && bad); forks++) {
        pid_t c = fork();
        if (c < 0)
            FAIL("fork: %s", strerror(errno));
        if (c == 0)
            _exit(within(try) ? 0 : 3);
        int st = t_wait(c, 10 * CHILD_MS);
        if (st != 0) {
            bad++;
            printf("fork %d: child status %d\n", forks, st);
        }
        t_sleep_ms(2);
    }
    stop = 1;
    g_mutex_lock(&cond_lock);
    g_cond_broadcast(&never);
    g_cond_broadcast(&ticking);
    g_mutex_unlock(&cond_lock);
    for (int i = 0; i < nth; i++)
        g_thread_join(th[i]);
    if (pool)
        g_thread_pool_free(pool, FALSE, TRUE);
    printf("%s: %d forks, %d children could not take the lock(s)\n", what, forks, bad);
    if (expect_hang && !bad)
        FAIL("no child failed without fsafe: the test shows nothing");
    if (!expect_hang && bad)
        FAIL("%d of %d children could not take the lock(s)", bad, forks);
    return 0;
}
