/* SPDX-License-Identifier: MIT */
/*
 * Messages, time and thread ids.  Everything but fsafe__diag_init is
 * async-signal-safe: it may run in the child of a multithreaded parent or in a
 * signal handler, so it formats into a stack buffer and writes with write(2);
 * no malloc, no stdio.  Every line is "fsafe[PID]: text".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
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
            put_i(&o, longs >= 2 ? va_arg(ap, long long)
                      : longs    ? va_arg(ap, long)
                                 : va_arg(ap, int));
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

/* Set once at init, read-only afterwards. */
static char prog[32] = "?"; /* the program's name, as ps shows it */
static int log_dup = -1;    /* private duplicate of the log descriptor, or -1 */
static int log_fd = 2;      /* FSAFE_LOG_FD, as config.c read it */

void fsafe__diag_set_log_fd(int fd)
{
    log_fd = fd;
}

/* The program's name from /proc/self/comm, and from argv[0] when the kernel
 * cut it at 15 bytes. */
static void read_name(void)
{
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, prog, sizeof prog - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n > 0 && prog[n - 1] == '\n')
        n--;
    prog[n > 0 ? n : 0] = '\0';
    /* The kernel keeps 15 bytes of the name: take the whole one from argv[0]
     * when it starts with those. */
    if (n == 15 && (fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC)) >= 0) {
        char arg0[256];
        ssize_t m = read(fd, arg0, sizeof arg0 - 1);
        close(fd);
        arg0[m > 0 ? m : 0] = '\0';
        const char *base = strrchr(arg0, '/');
        base = base ? base + 1 : arg0;
        size_t blen = strlen(base);
        if (blen > 15 && blen < sizeof prog && strncmp(base, prog, 15) == 0)
            memcpy(prog, base, blen + 1);
    }
    if (prog[0] == '\0')
        memcpy(prog, "?", 2);
}

/*
 * At init, in the process that read the configuration (never in a child):
 * the program's name from /proc/self/comm (program_invocation_short_name is
 * not set yet when an initfirst library's constructor runs) when want_name
 * is set (only the settings that print it need it: otherwise three system
 * calls and five first calls of libc functions in every process, issue 26),
 * and, when keep_fd is set, a private close-on-exec duplicate of the log
 * descriptor at a high number, so that a report at exit still gets out after
 * the program closed the descriptor (coreutils closes stderr before it
 * exits).
 */
void fsafe__diag_init(int keep_fd, int want_name)
{
    if (want_name)
        read_name();
    if (!keep_fd || log_dup >= 0)
        return;
    /* High, but not so high that the kernel grows the descriptor table
     * beyond its first page for it, whatever RLIMIT_NOFILE allows. */
    struct rlimit rl;
    long lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (long)rl.rlim_cur
                   : 1024;
    long base = lim > 1024 ? 960 : lim > 128 ? lim - 64 : lim / 2;
    int saved = errno;
    log_dup = fcntl(log_fd, F_DUPFD_CLOEXEC, (int)base);
    errno = saved;
}

const char *fsafe__prog_name(void)
{
    return prog;
}

static ssize_t write_all(int fd, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return off ? (ssize_t)off : w;
        off += (size_t)w;
    }
    return (ssize_t)off;
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
    struct out o = {buf, sizeof buf, 0};
    put_s(&o, "fsafe[");
    put_u(&o, (unsigned long long)getpid(), 10, 1); /* a syscall: right in a child too */
    put_s(&o, "]: ");
    size_t head = o.len; /* < sizeof buf */
    int n = fsafe__format(buf + head, sizeof buf - head - 1, fmt, ap);
    size_t len = head + ((size_t)n < sizeof buf - head - 2 ? (size_t)n : sizeof buf - head - 2);
    buf[len++] = '\n';
    /* The program may have closed the log descriptor (EBADF): the private
     * duplicate, when there is one, still reaches where it pointed. */
    if (write_all(log_fd, buf, len) < 0 && errno == EBADF && log_dup >= 0)
        write_all(log_dup, buf, len);
    errno = saved;
}
