/* SPDX-License-Identifier: MIT */
/* A GLib plugin (libglib in its scope only): a GMutex, a futex word that
 * fsafe tracks by interposing g_mutex_lock/_unlock, taken by a thread in a
 * loop. */
#include "plugin.h"

#include <glib.h>

const char plugin_probe[] = "g_free";

static GMutex lock;
static gint stopping;
static GThread *worker;

static gpointer run(gpointer arg)
{
    (void)arg;
    while (!g_atomic_int_get(&stopping)) {
        g_mutex_lock(&lock);
        for (volatile int k = 0; k < 200; k++) {
        }
        g_mutex_unlock(&lock);
    }
    return NULL;
}

int plugin_start(void)
{
    worker = g_thread_new("busy", run, NULL);
    return worker ? 0 : 1;
}

int plugin_check(void)
{
    for (long end = plugin_ms() + 1000; !g_mutex_trylock(&lock);)
        if (plugin_ms() > end)
            return 1;
    g_mutex_unlock(&lock);
    g_mutex_lock(&lock);
    g_mutex_unlock(&lock);
    return 0;
}

void plugin_stop(void)
{
    g_atomic_int_set(&stopping, 1);
    if (worker)
        g_thread_join(worker);
}
