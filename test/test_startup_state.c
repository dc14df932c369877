/* SPDX-License-Identifier: MIT */
/*
 * Prints the state a program finds when main() starts: errno, the
 * environment, argv and the program name, the signal mask and every signal's
 * disposition, the locale, stdio's state, the open file descriptors, the
 * thread count, umask and a few limits.  dropin/startup.sh runs it with and
 * without fsafe and compares the two outputs: fsafe must change none of it.
 * Linked with libm and liblegacy_test so that FSAFE_LOCKS entries naming them
 * resolve (libm also reproduces the fault of dlopen before libc's init).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include "dropin/legacy.h"

extern char **environ;

static char out[1 << 16];
static size_t used;

static void put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void put(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + used, sizeof out - used, fmt, ap);
    va_end(ap);
    if (n > 0)
        used = used + (size_t)n < sizeof out ? used + (size_t)n : sizeof out - 1;
}

static void stream(const char *name, FILE *f)
{
    /* Before anything is written: mode, buffering and orientation as inherited. */
    put("stdio %s: orientation %d linebuf %d bufsize %zu pending %zu reading %d writing %d "
        "readable %d writable %d fileno %d\n",
        name, fwide(f, 0), __flbf(f), __fbufsize(f), __fpending(f), __freading(f), __fwriting(f),
        __freadable(f), __fwritable(f), fileno(f));
}

static void fd_line(int fd)
{
    char path[64], target[512];
    struct stat st;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    /* Pipes and sockets carry inode numbers that differ between runs. */
    const char *shown = strncmp(target, "pipe:", 5) == 0     ? "pipe"
                        : strncmp(target, "socket:", 7) == 0 ? "socket"
                        : strncmp(target, "anon_inode:", 11) == 0 ? target
                        : fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? "a file"
                                                                      : target;
    put("fd %d: %s fdflags %d flflags %#o\n", fd, shown, fcntl(fd, F_GETFD),
        (unsigned)fcntl(fd, F_GETFL));
}

int main(int argc, char **argv)
{
    int err = errno; /* first: what the start-up left in errno */
    put("errno at main %d\n", err);
    stream("stdin", stdin);
    stream("stdout", stdout);
    stream("stderr", stderr);

    put("argc %d\n", argc);
    for (int i = 0; i < argc; i++)
        put("argv[%d] %s\n", i, argv[i]);
    put("program_invocation_name %s short %s\n",
        program_invocation_name ? program_invocation_name : "(null)",
        program_invocation_short_name ? program_invocation_short_name : "(null)");
    put("environ %s\n", environ ? "set" : "NULL");
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) != 0) /* the one difference fsafe-run makes */
            put("env %s\n", *e);

    sigset_t mask;
    sigprocmask(SIG_BLOCK, NULL, &mask);
    put("blocked");
    for (int s = 1; s < NSIG; s++)
        if (sigismember(&mask, s) == 1)
            put(" %d", s);
    put("\n");
    for (int s = 1; s < NSIG; s++) {
        struct sigaction sa;
        if (sigaction(s, NULL, &sa) != 0)
            continue;
        const char *h = sa.sa_handler == SIG_DFL ? "default" : sa.sa_handler == SIG_IGN ? "ignore"
                                                                                         : "handler";
        if (sa.sa_handler != SIG_DFL || sa.sa_flags)
            put("signal %d: %s flags %#x\n", s, h, (unsigned)sa.sa_flags);
    }

    put("locale at start %s\n", setlocale(LC_ALL, NULL));
    const char *l = setlocale(LC_ALL, "");
    put("locale from environment %s decimal point '%s'\n", l ? l : "(failed)",
        localeconv()->decimal_point);
    setlocale(LC_ALL, "C");

    DIR *d = opendir("/proc/self/fd");
    int dfd = d ? dirfd(d) : -1;
    int fds[256], nfd = 0;
    for (struct dirent *de; d && (de = readdir(d)) != NULL;)
        if (de->d_name[0] != '.' && atoi(de->d_name) != dfd && nfd < 256)
            fds[nfd++] = atoi(de->d_name);
    if (d)
        closedir(d);
    for (int i = 0; i < nfd; i++) /* readdir order is not sorted */
        for (int j = i + 1; j < nfd; j++)
            if (fds[j] < fds[i]) {
                int t = fds[i];
                fds[i] = fds[j], fds[j] = t;
            }
    for (int i = 0; i < nfd; i++)
        fd_line(fds[i]);

    FILE *st = fopen("/proc/self/stat", "r");
    char buf[1024] = "";
    if (st) {
        size_t n = fread(buf, 1, sizeof buf - 1, st);
        buf[n] = '\0';
        fclose(st);
    }
    const char *p = strrchr(buf, ')');
    int threads = 0;
    for (int field = 2; p && *p; p++) /* field 20: num_threads */
        if (*p == ' ' && ++field == 20) {
            threads = atoi(p + 1);
            break;
        }
    put("threads %d\n", threads);
    mode_t um = umask(0);
    umask(um);
    put("umask %#o\n", (unsigned)um);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    put("rlimit nofile %llu %llu\n", (unsigned long long)rl.rlim_cur,
        (unsigned long long)rl.rlim_max);
    getrlimit(RLIMIT_STACK, &rl);
    put("rlimit stack %llu\n", (unsigned long long)rl.rlim_cur);
    /* Uses libm and liblegacy_test, so that both stay linked. */
    put("libm %.1f lock %s\n", floor(argc + 0.5), legacy_lock_address() ? "yes" : "no");
    fwrite(out, 1, used, stdout);
    return 0;
}
