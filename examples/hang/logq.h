/* SPDX-License-Identifier: MIT */
/* liblogq: a tiny logging library that knows nothing of fsafe (see logq.c). */
#ifndef LOGQ_H
#define LOGQ_H
void logq_start(void);            /* starts the background flusher thread */
void logq_write(const char *msg); /* appends one line to the queue */
#endif
