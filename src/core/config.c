/* SPDX-License-Identifier: MIT */
/*
 * The FSAFE_* option table.  Read once, at initialisation, from the
 * environment (nothing is honoured in setuid/setgid processes: AT_SECURE).
 * A bad value prints one warning naming the variable and keeps the default; it
 * never aborts the host program.  A variable named like a misspelt setting
 * (FSAFE_STAT) gets one warning naming the setting.  Nothing writes the config
 * after init.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "internal.h"

struct fsafe__config fsafe__cfg = {
    .warn_ms = 0,
    .churn = FSAFE_CHURN_AUTO,
    .log_fd = 2,
    .auto_mode = -1,
    .auto_wait_ms = 250,
    .child_watch_ms = 10000,
};

int fsafe__parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

/* isspace and toupper of the C locale, without <ctype.h>: libfsafe's
 * constructor runs before libc's (-z initfirst), and before glibc 2.32
 * (no __libc_early_init) libc's constructor is what sets up the thread's
 * ctype tables: isspace() there read a null table pointer (SIGSEGV in every
 * program started with an FSAFE_ number set, on glibc 2.31). */
static int c_isspace(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int c_toupper(unsigned char c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

int fsafe__parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    /* strtol would skip any leading white space (\n \v \f \r too): refuse it. */
    if (*s == '\0' || c_isspace((unsigned char)*s))
        return -1;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int fsafe__parse_churn(const char *s, int *out)
{
    long v;
    if (strcasecmp(s, "auto") == 0)
        return *out = FSAFE_CHURN_AUTO, 0;
    if (strcasecmp(s, "off") == 0)
        return *out = FSAFE_CHURN_OFF, 0;
    if (fsafe__parse_long(s, 0, 1024, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

enum opt_type { OPT_BOOL, OPT_MS, OPT_CHURN, OPT_FD, OPT_STRING, OPT_ON_TIMEOUT };

struct opt {
    const char *name;
    enum opt_type type;
    void *field;
    const char *expect; /* for the warning */
    const char *help;   /* shown by FSAFE_VERBOSE and the docs */
};

static const struct opt options[] = {
    {"FSAFE_LOG_FD", OPT_FD, &fsafe__cfg.log_fd, "an open file descriptor number",
     "where messages go (default 2, stderr)"},
    {"FSAFE_VERBOSE", OPT_BOOL, &fsafe__cfg.verbose, "a boolean (1/0, true/false, yes/no, on/off)",
     "print the configuration and a line per fork"},
    {"FSAFE_STATS", OPT_BOOL, &fsafe__cfg.stats, "a boolean (1/0, true/false, yes/no, on/off)",
     "print fork and lock statistics at exit"},
    {"FSAFE_WARN_MS", OPT_MS, &fsafe__cfg.warn_ms, "milliseconds, 0 to 86400000",
     "name the lock fork has waited on for longer than this (0 = off)"},
    {"FSAFE_FLUSH", OPT_BOOL, &fsafe__cfg.flush, "a boolean (1/0, true/false, yes/no, on/off)",
     "flush all stdio output before fork"},
    {"FSAFE_WARN_THREADS", OPT_BOOL, &fsafe__cfg.warn_threads,
     "a boolean (1/0, true/false, yes/no, on/off)", "warn when forking with other threads alive"},
    {"FSAFE_CHURN", OPT_CHURN, &fsafe__cfg.churn, "a count 0 to 1024, 'auto' or 'off'",
     "throwaway threads around each fork"},
    {"FSAFE_LOCKS", OPT_STRING, &fsafe__cfg.locks, "a lock list", "register locks by symbol name"},
    {"FSAFE_AUTO", OPT_BOOL, &fsafe__cfg.auto_mode, "a boolean (1/0, true/false, yes/no, on/off)",
     "track every pthread/C11 lock and libc's own locks (needs libfsafe-auto.so)"},
    {"FSAFE_AUTO_WAIT_MS", OPT_MS, &fsafe__cfg.auto_wait_ms, "milliseconds, 0 to 86400000",
     "how long fork waits for other threads to leave their critical sections (default 250)"},
    {"FSAFE_AUTO_ON_TIMEOUT", OPT_ON_TIMEOUT, &fsafe__cfg.auto_keep, "'reset' or 'keep'",
     "what the child does with locks still held when the wait runs out"},
    {"FSAFE_CHILD_WATCH_MS", OPT_MS, &fsafe__cfg.child_watch_ms, "milliseconds, 0 to 86400000",
     "auto mode: one line when a child of a multithreaded fork has waited this long on "
     "something no thread of it can end (default 10000, 0 = off)"},
};

static void warn_bad(const struct opt *o, const char *value, const char *dflt)
{
    fsafe__msg("%s: invalid value '%s' (expected %s); using the default, %s", o->name, value,
               o->expect, dflt);
}

/*
 * libfsafe is linked -z initfirst, so its constructor may run before libc has
 * set up environ; the loader passes the environment to constructors, and
 * that copy is used then.  Secure execution (AT_SECURE) is asked of the
 * kernel's auxiliary vector, which the loader sets up before anything runs.
 */
static char **ctor_envp;

void fsafe__config_set_envp(char **envp)
{
    ctor_envp = envp;
}

/* getenv(name) for an FSAFE_ name, from whichever environment is set up.
 * One look at the first byte skips every other variable (a start-up cost of
 * every process under fsafe: issue 26). */
static int secure = -1;

static const char *config_getenv(const char *name)
{
    if (secure < 0)
        secure = getauxval(AT_SECURE) != 0;
    if (secure)
        return NULL;
    char **env = environ ? environ : ctor_envp;
    size_t n = strlen(name);
    for (; env && *env; env++)
        if ((*env)[0] == name[0] && strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

static void read_option(const struct opt *o)
{
    const char *s = config_getenv(o->name);
    if (!s)
        return;
    switch (o->type) {
    case OPT_BOOL: {
        int v;
        if (fsafe__parse_bool(s, &v) == 0)
            *(int *)o->field = v;
        else
            warn_bad(o, s, *(int *)o->field ? "on" : "off");
        break;
    }
    case OPT_MS: {
        long v;
        char dflt[24];
        if (fsafe__parse_long(s, 0, 86400000L, &v) == 0) {
            *(long *)o->field = v;
        } else {
            snprintf(dflt, sizeof dflt, "%ld", *(long *)o->field); /* at init, not in a child */
            warn_bad(o, s, dflt);
        }
        break;
    }
    case OPT_ON_TIMEOUT:
        if (strcasecmp(s, "reset") == 0 || strcasecmp(s, "keep") == 0)
            *(int *)o->field = strcasecmp(s, "keep") == 0;
        else
            warn_bad(o, s, "reset");
        break;
    case OPT_CHURN: {
        int v;
        if (fsafe__parse_churn(s, &v) == 0)
            *(int *)o->field = v;
        else
            warn_bad(o, s, "auto");
        break;
    }
    case OPT_FD: {
        long v;
        if (fsafe__parse_long(s, 0, INT_MAX, &v) == 0 && fcntl((int)v, F_GETFD) != -1) {
            *(int *)o->field = (int)v;
            fsafe__diag_set_log_fd((int)v); /* the next message goes there */
        } else
            warn_bad(o, s, "2");
        break;
    }
    case OPT_STRING:
        *(const char **)o->field = s;
        break;
    }
}

void fsafe__config_show(int churn_effective)
{
    char churn[16];
    if (fsafe__cfg.churn == FSAFE_CHURN_AUTO)
        memcpy(churn, "auto", 5);
    else
        snprintf(churn, sizeof churn, "%d", fsafe__cfg.churn); /* at init, not in a child */
    fsafe__msg("fsafe %s in %s: verbose=%d stats=%d warn_ms=%ld flush=%d warn_threads=%d churn=%s "
               "(effective %d) log_fd=%d auto=%s auto_wait_ms=%ld auto_on_timeout=%s "
               "child_watch_ms=%ld locks=%s",
               FSAFE_VERSION_STRING, fsafe__prog_name(), fsafe__cfg.verbose, fsafe__cfg.stats,
               fsafe__cfg.warn_ms, fsafe__cfg.flush, fsafe__cfg.warn_threads, churn,
               churn_effective, fsafe__cfg.log_fd,
               fsafe__cfg.auto_mode < 0 ? "default" : fsafe__cfg.auto_mode ? "on" : "off",
               fsafe__cfg.auto_wait_ms, fsafe__cfg.auto_keep ? "keep" : "reset",
               fsafe__cfg.child_watch_ms, fsafe__cfg.locks ? fsafe__cfg.locks : "(none)");
}

/* Edit distance between a and b (case-insensitive, an adjacent swap counts as
 * one edit), for names of at most 32 bytes; larger when longer. */
static size_t edit_distance(const char *a, size_t n, const char *b, size_t m)
{
    enum { MAXN = 32 };
    if (n > MAXN || m > MAXN)
        return (size_t)-1;
    size_t d[MAXN + 1][MAXN + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            size_t cost = c_toupper((unsigned char)a[i - 1]) != c_toupper((unsigned char)b[j - 1]);
            size_t v = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 &&
                c_toupper((unsigned char)a[i - 1]) == c_toupper((unsigned char)b[j - 2]) &&
                c_toupper((unsigned char)a[i - 2]) == c_toupper((unsigned char)b[j - 1]) &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

/*
 * FSAFE_ variables that are not settings.  Other programs use the prefix too
 * (a build script's FSAFE_BUILD, fsafe-run's own FSAFE_RUN_*), so only a name
 * within a few edits of a setting is taken for a misspelling of it and gets
 * one warning naming that setting: 1 edit for names of up to 4 characters
 * after the prefix, 2 up to 8, 3 beyond.  The rest are left alone.
 */
static void check_unknown(void)
{
    static const char prefix[] = "FSAFE_";
    const size_t plen = sizeof prefix - 1;
    if (getauxval(AT_SECURE))
        return;
    for (char **env = environ ? environ : ctor_envp; env && *env; env++) {
        const char *v = *env;
        if (v[0] != 'F' || strncmp(v, prefix, plen) != 0 || strncmp(v, "FSAFE_RUN_", 10) == 0)
            continue;
        const char *eq = strchr(v, '=');
        if (!eq)
            continue;
        size_t len = (size_t)(eq - v), best = (size_t)-1;
        const char *near = NULL;
        int known = 0;
        for (size_t i = 0; i < sizeof options / sizeof *options && !known; i++) {
            const char *name = options[i].name;
            if (strlen(name) == len && strncmp(name, v, len) == 0) {
                known = 1;
                break;
            }
            size_t d = edit_distance(v + plen, len - plen, name + plen, strlen(name) - plen);
            if (d < best)
                best = d, near = name;
        }
        size_t slen = len - plen, limit = slen <= 4 ? 1 : slen <= 8 ? 2 : 3;
        if (known || !near || slen == 0 || best > limit)
            continue;
        char shown[40]; /* len <= 38: edit_distance refused longer names */
        memcpy(shown, v, len);
        shown[len] = '\0';
        fsafe__msg("%s is not a setting of fsafe; did you mean %s? (ignored)", shown, near);
    }
}

/* Whether the environment has an FSAFE_ variable at all: most processes
 * under fsafe-run have none, and then one pass over it is the whole cost of
 * the settings (issue 26).  Secure execution reads none either. */
static int any_setting(void)
{
    if (secure < 0)
        secure = getauxval(AT_SECURE) != 0;
    if (secure)
        return 0;
    for (char **env = environ ? environ : ctor_envp; env && *env; env++)
        if ((*env)[0] == 'F' && strncmp(*env, "FSAFE_", 6) == 0)
            return 1;
    return 0;
}

void fsafe__config_init(void)
{
    int any = any_setting();
    for (size_t i = 0; any && i < sizeof options / sizeof *options; i++)
        read_option(&options[i]);
    /* Reports at exit may find the log descriptor closed: keep a copy. */
    /* The program's name is printed by these only (config_show, stats.c). */
    fsafe__diag_init(fsafe__cfg.stats || fsafe__cfg.warn_threads,
                     fsafe__cfg.verbose || fsafe__cfg.stats || fsafe__cfg.warn_threads);
    if (any)
        check_unknown();
}
