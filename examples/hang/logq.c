/* SPDX-License-Identifier: MIT */
/*
 * liblogq: a logging library in the shape of many real ones.  Its queue is
 * guarded by a `static` mutex (no exported symbol, nothing registered), and a
 * background thread holds it while it "flushes" for 20 ms at a time.  A child
 * forked while the flusher holds it inherits it locked, with no thread left to
 * unlock it, and hangs in its first logq_write().
 */
#include "logq.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static char queue[4096];
static size_t queued;

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *flusher(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&queue_lock);
        pause_ms(20); /* writing the queue out to a slow disk */
        queued = 0;
        pthread_mutex_unlock(&queue_lock);
        pause_ms(1);
    }
    return NULL;
}

void logq_start(void)
{
    pthread_t t;
    pthread_create(&t, NULL, flusher, NULL);
    pthread_detach(t);
}

void logq_write(const char *msg)
{
    size_t n = strlen(msg);
    pthread_mutex_lock(&queue_lock);
    if (queued + n < sizeof queue) {
        memcpy(queue + queued, msg, n);
        queued += n;
    }
    pthread_mutex_unlock(&queue_lock);
}
