/* SPDX-License-Identifier: MIT */
/*
 * POSIX semaphores used as locks (CPython's PyThread locks): placeholder.
 * fsafe__sem_child runs in the child: async-signal-safe calls only.
 */
#include "auto.h"

void fsafe__sem_init(void)
{
}

void fsafe__sem_child(void)
{
}
