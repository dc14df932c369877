/* SPDX-License-Identifier: MIT */
/* A plugin the dlclose test loads and unloads: one exported mutex. */
#include <pthread.h>

__attribute__((visibility("default"))) pthread_mutex_t plugin_lock = PTHREAD_MUTEX_INITIALIZER;
