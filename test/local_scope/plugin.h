/* SPDX-License-Identifier: MIT */
/* What test_local_scope's plugins export (host.c). */
#ifndef FSAFE_TEST_LOCAL_SCOPE_PLUGIN_H
#define FSAFE_TEST_LOCAL_SCOPE_PLUGIN_H
#include <time.h>
#ifdef __cplusplus
extern "C" {
#endif
/* The build hides symbols by default (the top CMakeLists.txt). */
#define PLUGIN_EXPORT __attribute__((visibility("default")))
/* A symbol of the library the plugin brings, not interposed by fsafe. */
PLUGIN_EXPORT extern const char plugin_probe[];
/* Starts threads that take the plugin's lock in a loop; 0 on success. */
PLUGIN_EXPORT int plugin_start(void);
/* Uses the plugin's library (in the parent and in a child): 0 when it
 * worked, with every lock taken within 1 s. */
PLUGIN_EXPORT int plugin_check(void);
/* Stops and joins the threads of plugin_start, if any. */
PLUGIN_EXPORT void plugin_stop(void);
#ifdef __cplusplus
}
#endif

/* Milliseconds on the monotonic clock (plugins' 1 s bounds). */
static inline long plugin_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}
#endif
