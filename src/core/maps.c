/* SPDX-License-Identifier: MIT */
/*
 * Which mapping holds an address, from /proc/self/maps, read with a fixed
 * buffer and raw read(2): no malloc, no stdio.  Used at registration only
 * (is a lock's memory shared? writable?), never on the fork path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Parses "lo-hi perms ..." in [p, end); 1 if addr is in it (perms, hi set). */
static int match_line(const char *p, const char *end, uintptr_t addr, char perms[4],
                      uintptr_t *hi_out)
{
    uintptr_t lo = 0, hi = 0;
    int v;
    while (p < end && (v = hexval(*p)) >= 0)
        lo = lo * 16 + (uintptr_t)v, p++;
    if (p < end && *p == '-')
        p++;
    while (p < end && (v = hexval(*p)) >= 0)
        hi = hi * 16 + (uintptr_t)v, p++;
    if (addr < lo || addr >= hi || end - p < 5)
        return 0;
    memcpy(perms, p + 1, 4); /* p[0] is the blank before "rwxp" */
    *hi_out = hi;
    return 1;
}

int fsafe__maps_lookup(const void *addr, char perms[4], uintptr_t *end)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -2;
    char buf[4096];
    size_t have = 0;
    int found = 0;
    while (!found) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < have && !found; i++) {
            if (buf[i] != '\n')
                continue;
            found = match_line(buf + start, buf + i, (uintptr_t)addr, perms, end);
            start = i + 1;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
        if (have == sizeof buf)
            have = 0; /* an absurdly long line: drop it */
    }
    close(fd);
    return found ? 0 : -1;
}
