/* SPDX-License-Identifier: MIT */
/* A test library whose locks nobody can name: a static mutex, a heap rwlock
 * and a static spinlock, each with a worker thread that keeps it busy. */
#ifndef AUTO_LIB_H
#define AUTO_LIB_H
#ifdef __cplusplus
extern "C" {
#endif
/* What a worker holds, and how: */
enum autolib_what { AUTOLIB_MUTEX, AUTOLIB_RWLOCK_WRITE, AUTOLIB_RWLOCK_READ, AUTOLIB_SPIN };
/* Starts a worker that takes the lock, holds it for hold_ms, releases it and
 * pauses 1 ms, forever; returns once the worker holds it for the first time. */
void autolib_start(enum autolib_what what, long hold_ms);
/* Non-zero while a worker holds the lock (for a fork to land inside). */
int autolib_busy(void);
/* What a child calls: takes the lock exclusively (an rwlock for writing),
 * counts, releases.  Returns the count. */
long autolib_call(void);
#ifdef __cplusplus
}
#endif
#endif
