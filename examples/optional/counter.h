/* SPDX-License-Identifier: MIT */
/*
 * libfsafe-counter: an example library that uses fsafe only when it is present.
 * A global lock guards a counter that a background worker bumps all the time.
 */
#ifndef FSAFE_COUNTER_H
#define FSAFE_COUNTER_H

/* Starts the worker and registers the lock with fsafe if fsafe is loaded.
 * Returns 0, or an errno value from pthread_create. */
int counter_start(void);
/* What fsafe_opt_register_lock() returned: 0 (registered) or ENOSYS (fsafe is
 * absent).  -1 before counter_start(). */
int counter_fsafe_status(void);
/* Reads the counter under the lock, giving up after timeout_ms.  Returns 0 and
 * stores the value, or ETIMEDOUT.  Usable in a forked child. */
int counter_read(long timeout_ms, unsigned long *value);

#endif
