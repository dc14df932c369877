/* SPDX-License-Identifier: MIT */
/*
 * Messages, time and thread ids.  Everything here is async-signal-safe: it may
 * run in the child of a multithreaded parent or in a signal handler, so it
 * formats into a stack buffer and writes with write(2); no malloc, no stdio.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

uint64_t fsafe__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

pid_t fsafe__gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

struct out {
    char *buf;
    size_t size, len; /* len may exceed size: the text is then truncated */
};

static void put_c(struct out *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void put_s(struct out *o, const char *s)
{
    if (!s)
        s = "(null)";
    while (*s)
        put_c(o, *s++);
}

static void put_u(struct out *o, unsigned long long v, unsigned base, int min_digits)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n < min_digits)
        tmp[n++] = '0';
    while (n)
        put_c(o, tmp[--n]);
}

static void put_i(struct out *o, long long v)
{
    if (v < 0) {
        put_c(o, '-');
        put_u(o, 0ull - (unsigned long long)v, 10, 1);
    } else {
        put_u(o, (unsigned long long)v, 10, 1);
    }
}

/* A printf subset: %s %c %d %i %u %x %p %%, with l/ll/z length modifiers and a
 * 0-padded width for %u and %x ("%03u").  Returns the untruncated length. */
int fsafe__format(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = {buf, size, 0};
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            put_c(&o, *p);
            continue;
        }
        p++;
        int width = 0, longs = 0;
        while (*p >= '0' && *p <= '9')
            width = width * 10 + (*p++ - '0');
        while (*p == 'l' || *p == 'z')
            longs += *p == 'z' ? 2 : 1, p++;
        switch (*p) {
        case 's':
            put_s(&o, va_arg(ap, const char *));
            break;
        case 'c':
            put_c(&o, (char)va_arg(ap, int));
            break;
        case 'd':
        case 'i':
            put_i(&o, longs >= 2 ? va_arg(ap, long long) : longs ? va_arg(ap, long) : va_arg(ap, int));
            break;
        case 'u':
        case 'x':
            put_u(&o,
                  longs >= 2 ? va_arg(ap, unsigned long long)
                  : longs    ? va_arg(ap, unsigned long)
                             : va_arg(ap, unsigned),
                  *p == 'x' ? 16 : 10, width);
            break;
        case 'p':
            put_s(&o, "0x");
            put_u(&o, (uintptr_t)va_arg(ap, void *), 16, 1);
            break;
        case '%':
            put_c(&o, '%');
            break;
        case '\0':
            p--;
            break;
        default:
            put_c(&o, '%');
            put_c(&o, *p);
        }
    }
    if (size)
        o.buf[o.len < size ? o.len : size - 1] = '\0';
    return (int)o.len;
}

void fsafe__msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fsafe__vmsg(fmt, ap);
    va_end(ap);
}

void fsafe__vmsg(const char *fmt, va_list ap)
{
    char buf[1024];
    int saved = errno;
    memcpy(buf, "fsafe: ", 7);
    int n = fsafe__format(buf + 7, sizeof buf - 8, fmt, ap);
    size_t len = 7 + ((size_t)n < sizeof buf - 9 ? (size_t)n : sizeof buf - 9);
    buf[len++] = '\n';
    int fd = fsafe__cfg.log_fd;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    errno = saved;
}
