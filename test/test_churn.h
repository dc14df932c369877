/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the churn tests.  t_ntask() counts /proc/self/task with raw
 * open + getdents64 (no opendir: it mallocs), so the child of a multithreaded
 * fork may call it.
 */
#ifndef FSAFE_TEST_CHURN_H
#define FSAFE_TEST_CHURN_H

#include "common.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/syscall.h>

struct t_dirent64 {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

/* Number of tasks (threads) of this process, or -1. Async-signal-safe. */
static inline int t_ntask(void)
{
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[4096] __attribute__((aligned(8)));
    int n = 0;
    long r;
    while ((r = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
        for (long off = 0; off < r;) {
            struct t_dirent64 *d = (struct t_dirent64 *)(buf + off);
            if (d->name[0] != '.')
                n++;
            off += d->reclen;
        }
    close(fd);
    return r < 0 ? -1 : n;
}

#endif
