/* SPDX-License-Identifier: MIT */
/*
 * libc's own locks under auto mode: interposes the public functions of each
 * glibc family whose internal lock a child may need, and tracks a call as a
 * hold of the family's gate (auto.h), so that no other thread is inside one
 * at fork.  The loader's own locks (dl_load_lock, dl_load_write_lock) are
 * loader.c's.
 *
 * What each family takes in glibc 2.36, and what glibc's fork resets
 * (posix/fork.c resets malloc, the stdio list and FILE locks, the NSS
 * database lock, dl_load_lock and dl_load_tls_lock; nothing else below):
 *
 * functions                                  lock (glibc 2.36 source)           reset  fsafe
 * localtime(_r) gmtime(_r) ctime(_r) mktime  tzset_lock (time/tzset.c); the     no     gate "time zone"
 *   timelocal timegm tzset strftime(_l)        strftime/strptime era and digit
 *   wcsftime(_l) strptime(_l) getdate(_r)      tables read __libc_setlocale_lock
 * setenv unsetenv putenv clearenv            envlock (stdlib/setenv.c)          no     gate "environment"
 * openlog closelog syslog vsyslog setlogmask syslog_lock (misc/syslog.c)        no     gate "syslog"
 *   __syslog_chk __vsyslog_chk
 * iconv_open iconv_close                     __gconv_lock (iconv/gconv_db.c)    no     gate "iconv"
 * swprintf vswprintf __swprintf_chk          the same, to orient the call's     no     gate "iconv"
 *   __vswprintf_chk __isoc99_swscanf            string stream wide (wcsmbs/
 *   __isoc99_vswscanf __isoc23_swscanf          wcsmbsload.c, __wcsmbs_clone_conv)
 *   __isoc23_vswscanf open_wmemstream
 * strerror strerror_r strerror_l perror      the same, through libc's own        no     gate "locale"
 *   strsignal psignal psiginfo gai_strerror    dcgettext (its message catalogue)
 *   regerror
 * setlocale newlocale duplocale freelocale   __libc_setlocale_lock, an rwlock   no     gate "locale"
 *                                              (locale/setlocale.c)
 * gettext dgettext dcgettext ngettext        __libc_setlocale_lock (read),      no     gate "locale"
 *   dngettext dcngettext textdomain            _nl_state_lock, tree_lock
 *   bindtextdomain bind_textdomain_codeset     (intl/dcigettext.c)
 * getpwnam getpwuid getgrnam getgrgid        one static lock per function for   no     gate "NSS"
 *   getspnam gethostbyname(2) gethostbyaddr    its static buffer
 *   getservbyname/port getprotobyname/number   (nss/getXXbyYY.c), then as _r
 *   getnetbyname/addr
 * getsgnam getaliasbyname getrpcbyname      the same (gshadow/getsgnam.c,       no     gate "NSS"
 *   getrpcbynumber, their _r forms             inet/getaliasname.c, inet/getrpc*.c)
 * get*ent set*ent end*ent, get*ent_r         one static lock per database       no     gate "NSS"
 *   (pw gr sp sg host serv proto net alias     (nss/getXXent_r.c)
 *   rpc)
 * setnetgrent getnetgrent(_r) endnetgrent    lock (inet/getnetgrent_r.c)        no     gate "NSS"
 * res_init res_ninit res_query res_search    the resolv.conf lock (resolv/      no     gate "NSS"
 *   res_querydomain res_mkquery res_send,      resolv_conf.c), through the
 *   their res_n* forms                         resolver context
 * the *_r lookups, getaddrinfo getnameinfo   nss_module_list_lock                no     gate "NSS"
 *   getgrouplist initgroups                    (nss/nss_module.c), the
 *                                              resolv.conf lock (resolv/
 *                                              resolv_conf.c), check_pf's lock,
 *                                              getnameinfo's domain lock;
 *                                              the NSS database lock             yes
 * dl_iterate_phdr                            dl_load_write_lock (recursive)      no     gate "loader" + child fix-up
 * dlclose                                    dl_load_lock, dl_load_write_lock    1 of 2 gate "loader" + child fix-up
 * dlopen dlmopen                             dl_load_lock, dl_load_tls_lock,     2 of 3 gate "loader" for NULL or a
 *                                              briefly dl_load_write_lock               path with '/' and no '$'
 * dladdr dladdr1                             dl_load_lock                        yes    gate "loader"
 * dlsym dlvsym                               dl_load_lock                        yes    not interposed (below)
 * dlopen of a bare name, the lazy binder     dl_load_lock                        yes    taken by the fork (below)
 * popen                                      proc_file_chain_lock (libio/        no     gate "popen"; pclose
 *                                              iopopen.c), held across the spawn        not (below)
 * sem_open sem_close                        __sem_mappings_lock (nptl/          no     gate "named semaphores"
 *                                              sem_open.c, sem_close.c)
 * rand random srand srandom initstate        lock (stdlib/random.c; rand calls   no     gate "random"
 *   setstate                                   __random inside libc)
 * setutent getutent(_r) endutent getutid(_r) __libc_utmp_lock (login/          no     gate "utmp"
 *   getutline(_r) pututline utmpname, the      getutent_r.c; getlogin_r.c when
 *   utmpx forms, login logout getlogin(_r)     /proc/self/loginuid is unset)
 * __cxa_atexit (atexit, C++ statics' and     __exit_funcs_lock (stdlib/          no     gate "exit handlers"
 *   destructors) on_exit                       cxa_atexit.c, on_exit.c,
 *   __cxa_at_quick_exit (at_quick_exit)        quick_exit's list)
 * __cxa_guard_acquire __cxa_guard_release    a static's guard word, a futex       no     gate "C++ static
 *   __cxa_guard_abort (libstdc++)              (GCC 12 libsupc++/guard.cc)                 initialisation"
 * fflush(NULL) fcloseall _flushlbf           _IO_list_all_lock (libio/genops.c)  yes    gate "stdio"
 *                                              held while each stream is flushed,
 *                                              so around a fopencookie callback
 * fgetpwent fgetgrent fgetspent sgetspent    a lock each for the static result  no     gate "account files"
 *   fgetsgent sgetsgent                        (pwd/fgetpwent.c ... gshadow/
 *                                              sgetsgent.c), held across the read
 * fmtmsg addseverity                         lock (stdlib/fmtmsg.c)              no     gate "fmtmsg"
 * lckpwdf ulckpwdf                           lock (shadow/lckpwdf.c), held while no     gate "password file
 *                                              lckpwdf waits up to 15 s for the         lock"
 *                                              lock file
 * register_printf_specifier/_function        lock (stdio-common/reg-printf.c,    no     gate "printf
 *   register_printf_modifier/_type             reg-modifier.c, reg-type.c)              registration"
 * bindresvport                               lock (inet/bindresvport.c)          no     gate "bindresvport"
 * regexec re_search re_match re_search_2     the pattern's re_dfa_t.lock (posix/ no     gate "regex"
 *   re_match_2                                 regexec.c), held for the match
 * readdir(64)(_r) rewinddir seekdir telldir  the DIR's lock (dirstream.h)        no     gate "directory
 *                                                                                       streams"
 * getopt getopt_long getopt_long_only        as strerror: its messages, through  no     gate "locale"
 *                                              libc's own dcgettext
 * pthread_getschedparam                      the named thread's pd->lock         no     gate "thread
 *   pthread_setschedparam                      (nptl/descr.h), when not the caller      attributes"
 *   pthread_setschedprio pthread_getattr_np
 * pthread_kill pthread_cancel                the named thread's pd->exit_lock    no     gate "thread
 *                                              (nptl/pthread_kill.c), when not the      signals"
 *                                              caller
 *
 * popen: glibc 2.36 holds the list of popen streams' lock across the
 * posix_spawn of the command (glibc 2.41's fork takes it).  pclose takes it
 * only to unlink the stream, then waits for the command with no lock; a
 * gate on pclose would make every fork wait for that command, so pclose
 * passes through and its short unlink stays a (rare) window.
 *
 * stdio: glibc's fork takes _IO_list_all_lock itself.  A thread that holds it
 * (flushing every stream) and calls a tracked lock from a stream's cookie
 * callback would be parked there by auto mode while the forker blocked on the
 * list lock: a deadlock fsafe would have made.  Inside the gate the thread is
 * never parked; fflush of one stream takes no list lock and passes through.
 *
 * The loader: dl_load_write_lock is a recursive mutex that records its
 * owner's thread id, and glibc does not reset it in the child.  A fork from a
 * dl_iterate_phdr callback leaves it held by the forker's old id: the
 * callback's return cannot release it (EPERM) and the child's next
 * dl_iterate_phdr or dlopen hangs, with or without threads.  Its address is
 * found once, from inside a dl_iterate_phdr callback (the one recursive
 * mutex in _rtld_global that this thread owns there and not outside); in the
 * child a hold by the forker gets the child's thread id, a hold by another
 * thread is re-initialised.
 *
 * Locks libc takes inside itself, with no public call around the hold: no
 * gate can cover them.  Two of them are leaf locks an FSAFE_LOCKS entry can
 * name from libc's debug file (libc6-dbg): __exit_funcs_lock (kind lll:
 * exit, quick_exit and __cxa_finalize walk the handlers under it) and
 * __timer_active_sigev_thread_lock (the SIGEV_THREAD timer helper's).  The
 * rest, and why, are glibc-locks.tsv's not-covered rows.
 *
 * The caller matters to the loader: dlopen of a bare name searches the
 * calling object's RUNPATH, and dlsym(RTLD_NEXT or RTLD_DEFAULT) starts from
 * the caller, both taken from the return address.  dlopen and dlmopen pass
 * such names straight on with a tail call (the return address stays the
 * caller's); dlsym and dlvsym are not interposed at all, since their only
 * lock is one glibc resets and fsafe itself finds functions with dlsym.
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE /* the wrappers define syslog and __syslog_chk themselves */
#include <dlfcn.h>
#include <errno.h>
#include <aliases.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmtmsg.h>
#include <getopt.h>
#include <gshadow.h>
#include <grp.h>
#include <iconv.h>
#include <libintl.h>
#include <link.h>
#include <locale.h>
#include <netdb.h>
#include <netinet/ether.h>
#include <netinet/in.h>
#include <printf.h>
#include <pthread.h>
#include <resolv.h>
#include <rpc/netdb.h>
#include <pwd.h>
#include <regex.h>
#include <signal.h>
#include <utmp.h>
#include <utmpx.h>
#include <semaphore.h>
#include <shadow.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "auto.h"

#define CALLER ((uintptr_t)__builtin_return_address(0))

/* glibc's fortified syslog entry points (bits/syslog.h declares them only
 * under _FORTIFY_SOURCE). */
void __syslog_chk(int pri, int flag, const char *fmt, ...);
void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap);

/* glibc's fortified, C99 and C23 entry points of the wide string functions
 * (declared by its headers only under _FORTIFY_SOURCE, or as the targets of
 * swscanf's and vswscanf's redirection; the C23 ones, which glibc 2.38 and
 * later binds under _GNU_SOURCE or C23 for %b, exist only there). */
int __swprintf_chk(wchar_t *s, size_t n, int flag, size_t slen, const wchar_t *fmt, ...);
int __vswprintf_chk(wchar_t *s, size_t n, int flag, size_t slen, const wchar_t *fmt, va_list ap);
int __isoc99_swscanf(const wchar_t *s, const wchar_t *fmt, ...);
int __isoc99_vswscanf(const wchar_t *s, const wchar_t *fmt, va_list ap);
int __isoc23_swscanf(const wchar_t *s, const wchar_t *fmt, ...);
int __isoc23_vswscanf(const wchar_t *s, const wchar_t *fmt, va_list ap);

/* ---- the gates ------------------------------------------------------------------ */
/*
 * One gate per function, named "family (function)" in the message of a fork
 * that waited too long, except the loader: one gate for the family, so that a
 * fork from a dl_iterate_phdr callback or a dlopen constructor (the forker is
 * inside the gate) does not wait for other threads' loader calls, which are
 * blocked on the loader lock the forker holds (fork.c: forker_excludes).
 */
static struct fsafe__gate loader_gate = {"loader (dlopen, dlmopen, dlclose, dladdr, dl_iterate_phdr)", 1};

/* The functions with one gate each: X(return type, name, family, (params), (args)),
 * V(name, family, (params), (args)) for those returning void. */
#define TZ "time zone"
#define ENV "environment"
#define LOG "syslog"
#define ICONV "iconv"
#define LOC "locale"
#define NSS "NSS"
#define STDIO "stdio"
#define RANDOM "random"
#define SEMNAME "named semaphores"
#define POPEN "popen"
#define EXITFN "exit handlers"
#define UTMP "utmp"
#define ACCT "account files"
#define PWLOCK "password file lock"
#define FMTMSG "fmtmsg"
#define PRINTFREG "printf registration"
#define RESVPORT "bindresvport"
#define REGEX "regex"
#define DIRSTREAM "directory streams"
#define THREADSCHED "thread attributes"
#define THREADSIG "thread signals"
#define GATED_FUNCTIONS(X, V)                                                                      \
    X(int, fcloseall, STDIO, (void), ())                                                           \
    V(_flushlbf, STDIO, (void), ())                                                                \
    X(struct tm *, localtime, TZ, (const time_t *t), (t))                                          \
    X(struct tm *, localtime_r, TZ, (const time_t *restrict t, struct tm *restrict tm), (t, tm))   \
    X(struct tm *, gmtime, TZ, (const time_t *t), (t))                                             \
    X(struct tm *, gmtime_r, TZ, (const time_t *restrict t, struct tm *restrict tm), (t, tm))      \
    X(char *, ctime, TZ, (const time_t *t), (t))                                                   \
    X(char *, ctime_r, TZ, (const time_t *restrict t, char *restrict buf), (t, buf))               \
    X(time_t, mktime, TZ, (struct tm * tm), (tm))                                                  \
    X(time_t, timelocal, TZ, (struct tm * tm), (tm))                                               \
    X(time_t, timegm, TZ, (struct tm * tm), (tm))                                                  \
    V(tzset, TZ, (void), ())                                                                       \
    X(size_t, strftime, TZ,                                                                        \
      (char *restrict s, size_t max, const char *restrict fmt, const struct tm *restrict tm),      \
      (s, max, fmt, tm))                                                                           \
    X(size_t, strftime_l, TZ,                                                                      \
      (char *restrict s, size_t max, const char *restrict fmt, const struct tm *restrict tm,       \
       locale_t loc),                                                                              \
      (s, max, fmt, tm, loc))                                                                      \
    X(size_t, wcsftime, TZ,                                                                        \
      (wchar_t *restrict s, size_t max, const wchar_t *restrict fmt,                               \
       const struct tm *restrict tm),                                                              \
      (s, max, fmt, tm))                                                                           \
    X(size_t, wcsftime_l, TZ,                                                                      \
      (wchar_t *restrict s, size_t max, const wchar_t *restrict fmt,                               \
       const struct tm *restrict tm, locale_t loc),                                                \
      (s, max, fmt, tm, loc))                                                                      \
    X(char *, strptime, TZ, (const char *restrict s, const char *restrict fmt, struct tm *tm),     \
      (s, fmt, tm))                                                                                \
    X(char *, strptime_l, TZ,                                                                      \
      (const char *restrict s, const char *restrict fmt, struct tm *tm, locale_t loc),             \
      (s, fmt, tm, loc))                                                                           \
    X(struct tm *, getdate, TZ, (const char *s), (s))                                              \
    X(int, getdate_r, TZ, (const char *restrict s, struct tm *restrict tm), (s, tm))               \
    X(int, setenv, ENV, (const char *name, const char *value, int overwrite),                      \
      (name, value, overwrite))                                                                    \
    X(int, unsetenv, ENV, (const char *name), (name))                                              \
    X(int, putenv, ENV, (char *s), (s))                                                            \
    X(int, clearenv, ENV, (void), ())                                                              \
    V(openlog, LOG, (const char *ident, int option, int facility), (ident, option, facility))      \
    V(closelog, LOG, (void), ())                                                                   \
    X(int, setlogmask, LOG, (int mask), (mask))                                                    \
    V(vsyslog, LOG, (int pri, const char *fmt, va_list ap), (pri, fmt, ap))                        \
    V(__vsyslog_chk, LOG, (int pri, int flag, const char *fmt, va_list ap), (pri, flag, fmt, ap))  \
    X(iconv_t, iconv_open, ICONV, (const char *to, const char *from), (to, from))                  \
    X(int, iconv_close, ICONV, (iconv_t cd), (cd))                                                 \
    X(int, vswprintf, ICONV,                                                                       \
      (wchar_t *restrict s, size_t n, const wchar_t *restrict fmt, va_list ap), (s, n, fmt, ap))   \
    X(int, __vswprintf_chk, ICONV,                                                                 \
      (wchar_t *s, size_t n, int flag, size_t slen, const wchar_t *fmt, va_list ap),               \
      (s, n, flag, slen, fmt, ap))                                                                 \
    X(int, __isoc99_vswscanf, ICONV, (const wchar_t *s, const wchar_t *fmt, va_list ap),           \
      (s, fmt, ap))                                                                                \
    X(int, __isoc23_vswscanf, ICONV, (const wchar_t *s, const wchar_t *fmt, va_list ap),           \
      (s, fmt, ap))                                                                                \
    X(FILE *, open_wmemstream, ICONV, (wchar_t **p, size_t *n), (p, n))                            \
    X(char *, setlocale, LOC, (int category, const char *locale), (category, locale))              \
    X(locale_t, newlocale, LOC, (int mask, const char *locale, locale_t base),                     \
      (mask, locale, base))                                                                        \
    X(locale_t, duplocale, LOC, (locale_t loc), (loc))                                             \
    V(freelocale, LOC, (locale_t loc), (loc))                                                      \
    X(char *, gettext, LOC, (const char *id), (id))                                                \
    X(char *, dgettext, LOC, (const char *dom, const char *id), (dom, id))                         \
    X(char *, dcgettext, LOC, (const char *dom, const char *id, int cat), (dom, id, cat))          \
    X(char *, ngettext, LOC, (const char *id1, const char *id2, unsigned long n), (id1, id2, n))   \
    X(char *, dngettext, LOC, (const char *dom, const char *id1, const char *id2, unsigned long n), \
      (dom, id1, id2, n))                                                                          \
    X(char *, dcngettext, LOC,                                                                     \
      (const char *dom, const char *id1, const char *id2, unsigned long n, int cat),               \
      (dom, id1, id2, n, cat))                                                                     \
    X(char *, textdomain, LOC, (const char *dom), (dom))                                           \
    X(char *, bindtextdomain, LOC, (const char *dom, const char *dir), (dom, dir))                 \
    X(char *, bind_textdomain_codeset, LOC, (const char *dom, const char *cs), (dom, cs))          \
    X(char *, strerror, LOC, (int e), (e))                                                         \
    X(char *, strerror_r, LOC, (int e, char *buf, size_t n), (e, buf, n))                          \
    X(int, __xpg_strerror_r, LOC, (int e, char *buf, size_t n), (e, buf, n))                       \
    X(char *, strerror_l, LOC, (int e, locale_t loc), (e, loc))                                    \
    V(perror, LOC, (const char *s), (s))                                                           \
    X(char *, strsignal, LOC, (int sig), (sig))                                                    \
    V(psignal, LOC, (int sig, const char *s), (sig, s))                                            \
    V(psiginfo, LOC, (const siginfo_t *si, const char *s), (si, s))                                \
    X(const char *, gai_strerror, LOC, (int e), (e))                                               \
    X(size_t, regerror, LOC, (int e, const regex_t *re, char *buf, size_t n), (e, re, buf, n))     \
    X(int, rand, RANDOM, (void), ())                                                               \
    X(long, random, RANDOM, (void), ())                                                            \
    V(srand, RANDOM, (unsigned seed), (seed))                                                      \
    V(srandom, RANDOM, (unsigned seed), (seed))                                                    \
    X(char *, initstate, RANDOM, (unsigned seed, char *state, size_t n), (seed, state, n))         \
    X(char *, setstate, RANDOM, (char *state), (state))                                            \
    X(int, sem_close, SEMNAME, (sem_t * s), (s))                                                   \
    X(FILE *, popen, POPEN, (const char *cmd, const char *mode), (cmd, mode))                      \
    V(setutent, UTMP, (void), ())                                                                  \
    X(struct utmp *, getutent, UTMP, (void), ())                                                   \
    V(endutent, UTMP, (void), ())                                                                  \
    X(struct utmp *, getutid, UTMP, (const struct utmp *u), (u))                                   \
    X(struct utmp *, getutline, UTMP, (const struct utmp *u), (u))                                 \
    X(struct utmp *, pututline, UTMP, (const struct utmp *u), (u))                                 \
    X(int, utmpname, UTMP, (const char *f), (f))                                                   \
    X(int, getutent_r, UTMP, (struct utmp * buf, struct utmp **res), (buf, res))                   \
    X(int, getutid_r, UTMP, (const struct utmp *u, struct utmp *buf, struct utmp **res),           \
      (u, buf, res))                                                                               \
    X(int, getutline_r, UTMP, (const struct utmp *u, struct utmp *buf, struct utmp **res),         \
      (u, buf, res))                                                                               \
    V(setutxent, UTMP, (void), ())                                                                 \
    X(struct utmpx *, getutxent, UTMP, (void), ())                                                 \
    V(endutxent, UTMP, (void), ())                                                                 \
    X(struct utmpx *, getutxid, UTMP, (const struct utmpx *u), (u))                                \
    X(struct utmpx *, getutxline, UTMP, (const struct utmpx *u), (u))                              \
    X(struct utmpx *, pututxline, UTMP, (const struct utmpx *u), (u))                              \
    X(int, utmpxname, UTMP, (const char *f), (f))                                                  \
    V(login, UTMP, (const struct utmp *u), (u))                                                    \
    X(int, logout, UTMP, (const char *line), (line))                                               \
    X(char *, getlogin, UTMP, (void), ())                                                          \
    X(int, getlogin_r, UTMP, (char *buf, size_t n), (buf, n))                                      \
    X(int, __cxa_atexit, EXITFN, (void (*fn)(void *), void *arg, void *dso), (fn, arg, dso))       \
    X(int, on_exit, EXITFN, (void (*fn)(int, void *), void *arg), (fn, arg))                       \
    X(int, __cxa_at_quick_exit, EXITFN, (void (*fn)(void *), void *dso), (fn, dso))                \
    NSS_FUNCTIONS(X, V)

/* NSS and the resolver: the non-reentrant lookups, their _r forms, the
 * enumerations, and the address lookups. */
#define NSS_FUNCTIONS(X, V)                                                                        \
    X(struct passwd *, getpwnam, NSS, (const char *name), (name))                                  \
    X(struct passwd *, getpwuid, NSS, (uid_t uid), (uid))                                          \
    X(int, getpwnam_r, NSS,                                                                        \
      (const char *name, struct passwd *pw, char *buf, size_t len, struct passwd **res),           \
      (name, pw, buf, len, res))                                                                   \
    X(int, getpwuid_r, NSS,                                                                        \
      (uid_t uid, struct passwd *pw, char *buf, size_t len, struct passwd **res),                  \
      (uid, pw, buf, len, res))                                                                    \
    X(struct passwd *, getpwent, NSS, (void), ())                                                  \
    X(int, getpwent_r, NSS, (struct passwd * pw, char *buf, size_t len, struct passwd **res),      \
      (pw, buf, len, res))                                                                         \
    V(setpwent, NSS, (void), ())                                                                   \
    V(endpwent, NSS, (void), ())                                                                   \
    X(struct group *, getgrnam, NSS, (const char *name), (name))                                   \
    X(struct group *, getgrgid, NSS, (gid_t gid), (gid))                                           \
    X(int, getgrnam_r, NSS,                                                                        \
      (const char *name, struct group *gr, char *buf, size_t len, struct group **res),             \
      (name, gr, buf, len, res))                                                                   \
    X(int, getgrgid_r, NSS,                                                                        \
      (gid_t gid, struct group *gr, char *buf, size_t len, struct group **res),                    \
      (gid, gr, buf, len, res))                                                                    \
    X(struct group *, getgrent, NSS, (void), ())                                                   \
    X(int, getgrent_r, NSS, (struct group * gr, char *buf, size_t len, struct group **res),        \
      (gr, buf, len, res))                                                                         \
    V(setgrent, NSS, (void), ())                                                                   \
    V(endgrent, NSS, (void), ())                                                                   \
    X(int, getgrouplist, NSS, (const char *user, gid_t group, gid_t *groups, int *ngroups),        \
      (user, group, groups, ngroups))                                                              \
    X(int, initgroups, NSS, (const char *user, gid_t group), (user, group))                        \
    X(struct spwd *, getspnam, NSS, (const char *name), (name))                                    \
    X(int, getspnam_r, NSS,                                                                        \
      (const char *name, struct spwd *sp, char *buf, size_t len, struct spwd **res),               \
      (name, sp, buf, len, res))                                                                   \
    X(struct spwd *, getspent, NSS, (void), ())                                                    \
    V(setspent, NSS, (void), ())                                                                   \
    V(endspent, NSS, (void), ())                                                                   \
    X(struct hostent *, gethostbyname, NSS, (const char *name), (name))                            \
    X(struct hostent *, gethostbyname2, NSS, (const char *name, int af), (name, af))               \
    X(struct hostent *, gethostbyaddr, NSS, (const void *addr, socklen_t len, int type),           \
      (addr, len, type))                                                                           \
    X(int, gethostbyname_r, NSS,                                                                   \
      (const char *restrict name, struct hostent *restrict he, char *restrict buf, size_t len,     \
       struct hostent **restrict res, int *restrict herr),                                         \
      (name, he, buf, len, res, herr))                                                             \
    X(int, gethostbyname2_r, NSS,                                                                  \
      (const char *restrict name, int af, struct hostent *restrict he, char *restrict buf,         \
       size_t len, struct hostent **restrict res, int *restrict herr),                             \
      (name, af, he, buf, len, res, herr))                                                         \
    X(int, gethostbyaddr_r, NSS,                                                                   \
      (const void *restrict addr, socklen_t alen, int type, struct hostent *restrict he,           \
       char *restrict buf, size_t len, struct hostent **restrict res, int *restrict herr),         \
      (addr, alen, type, he, buf, len, res, herr))                                                 \
    X(struct hostent *, gethostent, NSS, (void), ())                                               \
    V(sethostent, NSS, (int stay), (stay))                                                         \
    V(endhostent, NSS, (void), ())                                                                 \
    X(int, getaddrinfo, NSS,                                                                       \
      (const char *restrict node, const char *restrict service,                                    \
       const struct addrinfo *restrict hints, struct addrinfo **restrict res),                     \
      (node, service, hints, res))                                                                 \
    X(int, getnameinfo, NSS,                                                                       \
      (const struct sockaddr *restrict sa, socklen_t salen, char *restrict host,                   \
       socklen_t hostlen, char *restrict serv, socklen_t servlen, int flags),                      \
      (sa, salen, host, hostlen, serv, servlen, flags))                                            \
    X(struct servent *, getservbyname, NSS, (const char *name, const char *proto), (name, proto))  \
    X(struct servent *, getservbyport, NSS, (int port, const char *proto), (port, proto))          \
    X(int, getservbyname_r, NSS,                                                                   \
      (const char *restrict name, const char *restrict proto, struct servent *restrict se,         \
       char *restrict buf, size_t len, struct servent **restrict res),                             \
      (name, proto, se, buf, len, res))                                                            \
    X(int, getservbyport_r, NSS,                                                                   \
      (int port, const char *restrict proto, struct servent *restrict se, char *restrict buf,      \
       size_t len, struct servent **restrict res),                                                 \
      (port, proto, se, buf, len, res))                                                            \
    X(struct servent *, getservent, NSS, (void), ())                                               \
    V(setservent, NSS, (int stay), (stay))                                                         \
    V(endservent, NSS, (void), ())                                                                 \
    X(struct protoent *, getprotobyname, NSS, (const char *name), (name))                          \
    X(struct protoent *, getprotobynumber, NSS, (int proto), (proto))                              \
    X(int, getprotobyname_r, NSS,                                                                  \
      (const char *restrict name, struct protoent *restrict pe, char *restrict buf, size_t len,    \
       struct protoent **restrict res),                                                            \
      (name, pe, buf, len, res))                                                                   \
    X(int, getprotobynumber_r, NSS,                                                                \
      (int proto, struct protoent *restrict pe, char *restrict buf, size_t len,                    \
       struct protoent **restrict res),                                                            \
      (proto, pe, buf, len, res))                                                                  \
    X(struct protoent *, getprotoent, NSS, (void), ())                                             \
    V(setprotoent, NSS, (int stay), (stay))                                                        \
    V(endprotoent, NSS, (void), ())                                                                \
    X(struct netent *, getnetbyname, NSS, (const char *name), (name))                              \
    X(struct netent *, getnetbyaddr, NSS, (uint32_t net, int type), (net, type))                   \
    X(struct netent *, getnetent, NSS, (void), ())                                                 \
    V(setnetent, NSS, (int stay), (stay))                                                          \
    V(endnetent, NSS, (void), ())                                                                  \
    X(int, getnetbyname_r, NSS,                                                                    \
      (const char *restrict name, struct netent *restrict ne, char *restrict buf, size_t len,      \
       struct netent **restrict res, int *restrict herr),                                          \
      (name, ne, buf, len, res, herr))                                                             \
    X(int, getnetbyaddr_r, NSS,                                                                    \
      (uint32_t net, int type, struct netent *restrict ne, char *restrict buf, size_t len,         \
       struct netent **restrict res, int *restrict herr),                                          \
      (net, type, ne, buf, len, res, herr))                                                        \
    NSS_MORE_FUNCTIONS(X, V)

/* The enumerations' _r forms and the databases the list above lacked
 * (gshadow, aliases, rpc): the same per-function and per-database locks
 * (nss/getXXbyYY.c, nss/getXXent.c, nss/getXXent_r.c); the netgroup
 * functions, whose own lock (inet/getnetgrent_r.c) is held across the NSS
 * calls (innetgr takes none, only the NSS locks below it); ether_hostton
 * and ether_ntohost, NSS lookups of the ethers database. */
#define NSS_MORE_FUNCTIONS(X, V)                                                                   \
    X(int, getspent_r, NSS, (struct spwd * sp, char *buf, size_t len, struct spwd **res),          \
      (sp, buf, len, res))                                                                         \
    X(int, gethostent_r, NSS,                                                                      \
      (struct hostent *restrict he, char *restrict buf, size_t len, struct hostent **restrict res, \
       int *restrict herr),                                                                        \
      (he, buf, len, res, herr))                                                                   \
    X(int, getservent_r, NSS,                                                                      \
      (struct servent *restrict se, char *restrict buf, size_t len,                                \
       struct servent **restrict res),                                                             \
      (se, buf, len, res))                                                                         \
    X(int, getprotoent_r, NSS,                                                                     \
      (struct protoent *restrict pe, char *restrict buf, size_t len,                               \
       struct protoent **restrict res),                                                            \
      (pe, buf, len, res))                                                                         \
    X(int, getnetent_r, NSS,                                                                       \
      (struct netent *restrict ne, char *restrict buf, size_t len, struct netent **restrict res,   \
       int *restrict herr),                                                                        \
      (ne, buf, len, res, herr))                                                                   \
    X(struct sgrp *, getsgnam, NSS, (const char *name), (name))                                    \
    X(int, getsgnam_r, NSS,                                                                        \
      (const char *name, struct sgrp *sg, char *buf, size_t len, struct sgrp **res),               \
      (name, sg, buf, len, res))                                                                   \
    X(struct sgrp *, getsgent, NSS, (void), ())                                                    \
    X(int, getsgent_r, NSS, (struct sgrp * sg, char *buf, size_t len, struct sgrp **res),          \
      (sg, buf, len, res))                                                                         \
    V(setsgent, NSS, (void), ())                                                                   \
    V(endsgent, NSS, (void), ())                                                                   \
    X(struct aliasent *, getaliasbyname, NSS, (const char *name), (name))                          \
    X(int, getaliasbyname_r, NSS,                                                                  \
      (const char *restrict name, struct aliasent *restrict al, char *restrict buf, size_t len,    \
       struct aliasent **restrict res),                                                            \
      (name, al, buf, len, res))                                                                   \
    X(struct aliasent *, getaliasent, NSS, (void), ())                                             \
    X(int, getaliasent_r, NSS,                                                                     \
      (struct aliasent *restrict al, char *restrict buf, size_t len,                               \
       struct aliasent **restrict res),                                                            \
      (al, buf, len, res))                                                                         \
    V(setaliasent, NSS, (void), ())                                                                \
    V(endaliasent, NSS, (void), ())                                                                \
    X(struct rpcent *, getrpcbyname, NSS, (const char *name), (name))                              \
    X(struct rpcent *, getrpcbynumber, NSS, (int number), (number))                                \
    X(int, getrpcbyname_r, NSS,                                                                    \
      (const char *name, struct rpcent *re, char *buf, size_t len, struct rpcent **res),           \
      (name, re, buf, len, res))                                                                   \
    X(int, getrpcbynumber_r, NSS,                                                                  \
      (int number, struct rpcent *re, char *buf, size_t len, struct rpcent **res),                 \
      (number, re, buf, len, res))                                                                 \
    X(struct rpcent *, getrpcent, NSS, (void), ())                                                 \
    X(int, getrpcent_r, NSS, (struct rpcent * re, char *buf, size_t len, struct rpcent **res),     \
      (re, buf, len, res))                                                                         \
    V(setrpcent, NSS, (int stay), (stay))                                                          \
    V(endrpcent, NSS, (void), ())                                                                  \
    X(int, setnetgrent, NSS, (const char *group), (group))                                         \
    V(endnetgrent, NSS, (void), ())                                                                \
    X(int, getnetgrent, NSS,                                                                       \
      (char **restrict host, char **restrict user, char **restrict domain),                        \
      (host, user, domain))                                                                        \
    X(int, getnetgrent_r, NSS,                                                                     \
      (char **restrict host, char **restrict user, char **restrict domain, char *restrict buf,     \
       size_t len),                                                                                \
      (host, user, domain, buf, len))                                                              \
    X(int, innetgr, NSS,                                                                           \
      (const char *group, const char *host, const char *user, const char *domain),                 \
      (group, host, user, domain))                                                                 \
    X(int, ether_hostton, NSS, (const char *host, struct ether_addr *addr), (host, addr))          \
    X(int, ether_ntohost, NSS, (char *host, const struct ether_addr *addr), (host, addr))          \
    RESOLVER_FUNCTIONS(X, V)

/* The resolver's own entry points (libc since glibc 2.34; mail and DNS
 * tools call them): each gets the resolver context, which takes the
 * resolv.conf lock (resolv/resolv_conf.c) to find, load or attach the
 * configuration and to drop its reference.  resolv.h makes res_init and
 * res_ninit macros for __res_init and __res_ninit, the exported names;
 * the older __res_query etc. (GLIBC_2.2.5, not default) are not
 * interposed. */
#define RESOLVER_FUNCTIONS(X, V)                                                                   \
    X(int, __res_init, NSS, (void), ())                                                            \
    X(int, __res_ninit, NSS, (res_state st), (st))                                                 \
    X(int, res_query, NSS, (const char *dname, int cls, int type, unsigned char *ans, int len),    \
      (dname, cls, type, ans, len))                                                                \
    X(int, res_search, NSS, (const char *dname, int cls, int type, unsigned char *ans, int len),   \
      (dname, cls, type, ans, len))                                                                \
    X(int, res_querydomain, NSS,                                                                   \
      (const char *name, const char *domain, int cls, int type, unsigned char *ans, int len),      \
      (name, domain, cls, type, ans, len))                                                         \
    X(int, res_mkquery, NSS,                                                                       \
      (int op, const char *dname, int cls, int type, const unsigned char *data, int datalen,       \
       const unsigned char *newrr, unsigned char *buf, int buflen),                                \
      (op, dname, cls, type, data, datalen, newrr, buf, buflen))                                   \
    X(int, res_send, NSS, (const unsigned char *msg, int msglen, unsigned char *ans, int anslen),  \
      (msg, msglen, ans, anslen))                                                                  \
    X(int, res_nquery, NSS,                                                                        \
      (res_state st, const char *dname, int cls, int type, unsigned char *ans, int len),           \
      (st, dname, cls, type, ans, len))                                                            \
    X(int, res_nsearch, NSS,                                                                       \
      (res_state st, const char *dname, int cls, int type, unsigned char *ans, int len),           \
      (st, dname, cls, type, ans, len))                                                            \
    X(int, res_nquerydomain, NSS,                                                                  \
      (res_state st, const char *name, const char *domain, int cls, int type, unsigned char *ans,  \
       int len),                                                                                   \
      (st, name, domain, cls, type, ans, len))                                                     \
    X(int, res_nmkquery, NSS,                                                                      \
      (res_state st, int op, const char *dname, int cls, int type, const unsigned char *data,      \
       int datalen, const unsigned char *newrr, unsigned char *buf, int buflen),                   \
      (st, op, dname, cls, type, data, datalen, newrr, buf, buflen))                               \
    X(int, res_nsend, NSS,                                                                         \
      (res_state st, const unsigned char *msg, int msglen, unsigned char *ans, int anslen),        \
      (st, msg, msglen, ans, anslen))                                                              \
    ENTRY_FUNCTIONS(X, V)

/* The account file parsers with a static result (pwd/fgetpwent.c,
 * grp/fgetgrent.c, shadow/fgetspent.c, shadow/sgetspent.c,
 * gshadow/fgetsgent.c, gshadow/sgetsgent.c: a lock each, held across the
 * read and the parse), fmtmsg's (stdlib/fmtmsg.c: held while the message is
 * written, and by addseverity), and lckpwdf's (shadow/lckpwdf.c).
 * lckpwdf holds its lock while it waits, up to 15 s, for the fcntl lock on
 * /etc/.pwd.lock: gated like any call, so a fork waits for it at most
 * FSAFE_AUTO_WAIT_MS and then names it, as for a tzset that blocks.
 * Each of these holds its lock for the whole call, a stream's cookie
 * callbacks included (fgetpwent's read, fmtmsg's write to stderr).  A fork
 * from such a callback does not wait for the function's other callers
 * (blocked on the lock the forker holds: the forker's own gate excludes
 * them; libc.account_fork).  Like the other per-function gates they are
 * not exclusive: an exclusive gate held by a thread that forks from a signal
 * handler would let another thread's fork go ahead of it (fork.c:
 * holds_against). */
#define ENTRY_FUNCTIONS(X, V)                                                                      \
    X(struct passwd *, fgetpwent, ACCT, (FILE * f), (f))                                           \
    X(struct group *, fgetgrent, ACCT, (FILE * f), (f))                                            \
    X(struct spwd *, fgetspent, ACCT, (FILE * f), (f))                                             \
    X(struct spwd *, sgetspent, ACCT, (const char *s), (s))                                        \
    X(struct sgrp *, fgetsgent, ACCT, (FILE * f), (f))                                             \
    X(struct sgrp *, sgetsgent, ACCT, (const char *s), (s))                                        \
    X(int, lckpwdf, PWLOCK, (void), ())                                                            \
    X(int, ulckpwdf, PWLOCK, (void), ())                                                           \
    X(int, fmtmsg, FMTMSG,                                                                         \
      (long cls, const char *label, int sev, const char *text, const char *action,                 \
       const char *tag),                                                                           \
      (cls, label, sev, text, action, tag))                                                        \
    X(int, addseverity, FMTMSG, (int sev, const char *s), (sev, s))                               \
    OBJECT_FUNCTIONS(X, V)

/* Issue 23's rows that a public call reaches (glibc-locks.tsv): the printf
 * registration tables (stdio-common/reg-printf.c, reg-modifier.c,
 * reg-type.c: a lock each, held while a handler is added); bindresvport's
 * (inet/bindresvport.c, held across its bind attempts); a compiled
 * pattern's (re_dfa_t.lock, posix/regexec.c: held for the whole match, so a
 * fork waits for every match in flight); a DIR's (dirstream.h: held across
 * the getdents refill); and getopt's messages, which libc translates through
 * its own __dcgettext (intl/dcigettext.c: read holds of
 * __libc_setlocale_lock and _nl_state_lock), hence the locale family.  The
 * per-object locks matter only for an object the child shares with the
 * thread that was using it (a regex_t or DIR made before the fork), but the
 * wrapper cannot tell which, so every call is gated (readdir's cost:
 * test/bench/libc_bench.c). */
#define OBJECT_FUNCTIONS(X, V)                                                                     \
    X(int, register_printf_specifier, PRINTFREG,                                                   \
      (int spec, printf_function fn, printf_arginfo_size_function info), (spec, fn, info))         \
    X(int, register_printf_function, PRINTFREG,                                                    \
      (int spec, printf_function fn, printf_arginfo_function info), (spec, fn, info))              \
    X(int, register_printf_modifier, PRINTFREG, (const wchar_t *str), (str))                       \
    X(int, register_printf_type, PRINTFREG, (printf_va_arg_function fn), (fn))                     \
    X(int, bindresvport, RESVPORT, (int fd, struct sockaddr_in *sin), (fd, sin))                   \
    X(int, regexec, REGEX,                                                                         \
      (const regex_t *restrict re, const char *restrict s, size_t n,                               \
       regmatch_t m[restrict], int flags),                                                         \
      (re, s, n, m, flags))                                                                        \
    X(regoff_t, re_search, REGEX,                                                                  \
      (struct re_pattern_buffer * b, const char *s, regoff_t len, regoff_t start, regoff_t range,  \
       struct re_registers *regs),                                                                 \
      (b, s, len, start, range, regs))                                                             \
    X(regoff_t, re_search_2, REGEX,                                                                \
      (struct re_pattern_buffer * b, const char *s1, regoff_t l1, const char *s2, regoff_t l2,     \
       regoff_t start, regoff_t range, struct re_registers *regs, regoff_t stop),                  \
      (b, s1, l1, s2, l2, start, range, regs, stop))                                               \
    X(regoff_t, re_match, REGEX,                                                                   \
      (struct re_pattern_buffer * b, const char *s, regoff_t len, regoff_t start,                  \
       struct re_registers *regs),                                                                 \
      (b, s, len, start, regs))                                                                    \
    X(regoff_t, re_match_2, REGEX,                                                                 \
      (struct re_pattern_buffer * b, const char *s1, regoff_t l1, const char *s2, regoff_t l2,     \
       regoff_t start, struct re_registers *regs, regoff_t stop),                                  \
      (b, s1, l1, s2, l2, start, regs, stop))                                                      \
    X(struct dirent *, readdir, DIRSTREAM, (DIR * d), (d))                                         \
    X(struct dirent64 *, readdir64, DIRSTREAM, (DIR * d), (d))                                     \
    X(int, readdir_r, DIRSTREAM, (DIR * d, struct dirent *e, struct dirent **res), (d, e, res))    \
    X(int, readdir64_r, DIRSTREAM, (DIR * d, struct dirent64 *e, struct dirent64 **res),           \
      (d, e, res))                                                                                 \
    V(rewinddir, DIRSTREAM, (DIR * d), (d))                                                        \
    V(seekdir, DIRSTREAM, (DIR * d, long pos), (d, pos))                                           \
    X(long, telldir, DIRSTREAM, (DIR * d), (d))                                                    \
    X(int, getopt, LOC, (int argc, char *const *argv, const char *opts), (argc, argv, opts))       \
    X(int, getopt_long, LOC,                                                                       \
      (int argc, char *const *argv, const char *opts, const struct option *lo, int *li),           \
      (argc, argv, opts, lo, li))                                                                  \
    X(int, getopt_long_only, LOC,                                                                  \
      (int argc, char *const *argv, const char *opts, const struct option *lo, int *li),           \
      (argc, argv, opts, lo, li))

/* libintl.h makes these macros when optimising. */
#undef gettext
#undef dgettext
#undef dcgettext
#undef ngettext
#undef dngettext
#undef dcngettext

/*
 * Slots for the real functions, and their gates: none exclusive (0).  An
 * exclusive gate held by a thread inside fork() makes another thread's fork
 * skip every hold of that gate, that thread's own included (fork.c:
 * holds_against, scan_holds).  That is sound only when the fork makes the
 * lock behind the gate safe itself, as it does for the loader's (it takes
 * dl_load_lock; the child repairs dl_load_write_lock, loader.c).  For
 * libc's other locks the skipped thread may hold the lock itself (a signal
 * handler that forks interrupted its localtime_r inside tzset_lock), or may
 * have been interrupted outside it while another thread's call, skipped
 * too, holds it: either way the other fork went ahead with tzset_lock held
 * and its child hung on it.  Issue 23's branch had made these gates
 * exclusive: libc.signal.with hung a child in 15 of 40 runs, signal_entry
 * in 25 of 40; a hung child's copy of the records showed the handler's
 * forker (forking 1) and the other worker both inside localtime_r.  Not
 * exclusive, the fork waits for the calls in flight and backs off for the
 * thread inside fork() (backoff_helps): 0 of 40 each.
 */
#define SLOT_X(ret, name, fam, params, args)                                                       \
    static AO_t real_##name;                                                                       \
    static struct fsafe__gate gate_##name = {fam " (" #name ")", 0};
#define SLOT_V(name, fam, params, args) SLOT_X(void, name, fam, params, args)
GATED_FUNCTIONS(SLOT_X, SLOT_V)

/*
 * The wrappers.  errno is the caller's going in (a caller may clear it to
 * tell "not found" from an error) and the real function's coming out: the
 * gate never changes it (the paths that make a syscall, setting up this
 * thread's record with mmap, parking, waking a forker, restore it
 * themselves; track.c).  GATE_CALL(gate, call) is call's value, made
 * inside the gate; CALLER is the wrapper's caller (a macro: it must expand
 * in the wrapper itself).  The real function's slot is loaded inline.
 */
#define GATE_CALL(gate, call)                                                                      \
    ({                                                                                             \
        fsafe__gate_enter((gate), CALLER);                                                         \
        __typeof__(call) r_ = call;                                                                \
        fsafe__gate_leave(gate);                                                                   \
        r_;                                                                                        \
    })
/* The real function's name is the wrapper's after macro expansion (before
 * glibc 2.34 resolv.h defines res_mkquery as __res_mkquery, the name that
 * is exported then: the wrapper is defined as that, and forwards to it). */
#define EXPANDED_NAME_(name) #name
#define EXPANDED_NAME(name) EXPANDED_NAME_(name)
#define WRAP_X(ret, name, fam, params, args)                                                       \
    FSAFE_EXPORT ret name params                                                                   \
    {                                                                                              \
        ret(*real_) params = FSAFE__NEXT_IN(&real_##name, ret(*) params, EXPANDED_NAME(name));     \
        return GATE_CALL(&gate_##name, real_ args);                                                \
    }
#define WRAP_V(name, fam, params, args)                                                            \
    FSAFE_EXPORT void name params                                                                  \
    {                                                                                              \
        void(*real_) params = FSAFE__NEXT_IN(&real_##name, void(*) params, EXPANDED_NAME(name));   \
        fsafe__gate_enter(&gate_##name, CALLER);                                                   \
        real_ args;                                                                                \
        fsafe__gate_leave(&gate_##name);                                                           \
    }
/* regexec's header declares its match array with the bound n (a VLA
 * parameter); the wrapper's plain array is the same type, which gcc 11 and
 * later point out (-Wvla-parameter). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wvla-parameter"
#endif
GATED_FUNCTIONS(WRAP_X, WRAP_V)
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic pop
#endif

/* syslog's variadic entry points go through the va_list forms above, which
 * glibc also provides (syslog is vsyslog, __syslog_chk is __vsyslog_chk). */
FSAFE_EXPORT void syslog(int pri, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsyslog(pri, fmt, ap);
    va_end(ap);
}

FSAFE_EXPORT void __syslog_chk(int pri, int flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    __vsyslog_chk(pri, flag, fmt, ap);
    va_end(ap);
}

/* sem_open is variadic: the mode and value follow only with O_CREAT. */
static AO_t real_sem_open;
static struct fsafe__gate gate_sem_open = {SEMNAME " (sem_open)", 0};

FSAFE_EXPORT sem_t *sem_open(const char *name, int oflag, ...)
{
    mode_t mode = 0;
    unsigned value = 0;
    if (oflag & O_CREAT) {
        va_list ap;
        va_start(ap, oflag);
        mode = va_arg(ap, mode_t);
        value = va_arg(ap, unsigned);
        va_end(ap);
    }
    sem_t *(*real_)(const char *, int, ...) =
        (sem_t * (*)(const char *, int, ...)) fsafe__next_sym(&real_sem_open, "sem_open", NULL);
    return GATE_CALL(&gate_sem_open, real_(name, oflag, mode, value));
}

/* ---- another thread's own locks: struct pthread's lock and exit_lock ------------- */
/*
 * glibc keeps two low-level locks in each thread's descriptor.  pd->lock is
 * taken by pthread_getschedparam, pthread_setschedparam,
 * pthread_setschedprio and pthread_getattr_np on the thread they name
 * (nptl/pthread_getschedparam.c ...); pd->exit_lock by pthread_kill, and by
 * pthread_cancel through it, on the thread they signal (nptl/pthread_kill.c,
 * all signals blocked meanwhile).  A child has one descriptor, its forker's:
 * when another thread was calling one of these on the forker, the child's
 * own call on itself (pd->lock), or its thread exit with another thread alive
 * and another thread's signal to it (exit_lock), waits forever.
 *
 * A call that names the calling thread is passed straight on, ungated: it
 * takes only the caller's own lock, which no other thread's fork gives its
 * child, and pthread_kill of itself takes none (its handler runs before it
 * returns and may fork or longjmp: no gate hold may be left open by that),
 * nor does pthread_cancel of itself (an asynchronous one never returns).
 * The forwarded symbols are the default versions (pthread_kill@@GLIBC_2.34:
 * a program linked before 2.34 gets 0, not ESRCH, for a thread that has
 * exited but not been joined).
 */
static AO_t real_pthread_kill, real_pthread_cancel, real_getschedparam, real_setschedparam,
    real_setschedprio, real_getattr_np;
static struct fsafe__gate gate_pthread_kill = {THREADSIG " (pthread_kill)", 0};
static struct fsafe__gate gate_pthread_cancel = {THREADSIG " (pthread_cancel)", 0};
static struct fsafe__gate gate_getschedparam = {THREADSCHED " (pthread_getschedparam)", 0};
static struct fsafe__gate gate_setschedparam = {THREADSCHED " (pthread_setschedparam)", 0};
static struct fsafe__gate gate_setschedprio = {THREADSCHED " (pthread_setschedprio)", 0};
static struct fsafe__gate gate_getattr_np = {THREADSCHED " (pthread_getattr_np)", 0};

/* call, gated when thread t is not the caller. */
#define OTHER_THREAD_CALL(t, gate, call)                                                           \
    (pthread_equal((t), pthread_self()) ? (call) : GATE_CALL((gate), (call)))

/*
 * glibc 2.34 gave pthread_kill a new version (GLIBC_2.34) that returns 0 for
 * a thread that has exited and not been joined, where the ABI's first one
 * (GLIBC_2.2.5 on x86-64, GLIBC_2.17 on aarch64: FSAFE__GL_BASE_VERSION),
 * which programs linked before 2.34 still call, says ESRCH.  This wrapper
 * catches the callers of both, so it forwards each to the version its object
 * was linked against: the new one when the calling object needs version
 * GLIBC_2.34 (its DT_VERNEED, as every object linked since 2.34 that calls
 * pthread_kill does), or needs no glibc version at all; the old one when it
 * needs only older glibc versions.  Looked up once per call site (a small
 * table; a call site beyond it is looked up each time).  A tail call into
 * pthread_kill is attributed to the caller's caller (the return address it
 * leaves): an old library that tail-calls it from a new program gets the
 * new version's answer.
 */
static AO_t real_pthread_kill_old;
#define KILL_SITES 16
static AO_t kill_site[KILL_SITES]; /* caller << 1 | linked before 2.34; 0: free */

static uintptr_t dyn_ptr(const struct link_map *lm, uintptr_t p)
{
    /* glibc relocates .dynamic's addresses in place where it is writable */
    return p < lm->l_addr ? p + lm->l_addr : p;
}

static int linked_before_2_34(const void *caller)
{
    Dl_info di;
    struct link_map *lm = NULL;
    int (*addr1)(const void *, Dl_info *, void **, int) =
        NEXT(int (*)(const void *, Dl_info *, void **, int), "dladdr1");
    if (!addr1(caller, &di, (void **)&lm, RTLD_DL_LINKMAP) || !lm || !lm->l_ld)
        return 0;
    uintptr_t strtab = 0, verneed = 0;
    long num = 0;
    for (const ElfW(Dyn) *d = lm->l_ld; d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_STRTAB)
            strtab = dyn_ptr(lm, d->d_un.d_ptr);
        else if (d->d_tag == DT_VERNEED)
            verneed = dyn_ptr(lm, d->d_un.d_ptr);
        else if (d->d_tag == DT_VERNEEDNUM)
            num = (long)d->d_un.d_val;
    }
    if (!strtab || !verneed)
        return 0;
    const char *str = (const char *)strtab;
    const ElfW(Verneed) *vn = (const ElfW(Verneed) *)verneed;
    int glibc = 0;
    for (long i = 0; i < num; i++) {
        const ElfW(Vernaux) *va = (const ElfW(Vernaux) *)((const char *)vn + vn->vn_aux);
        for (unsigned j = 0; j < vn->vn_cnt; j++) {
            const char *name = str + va->vna_name;
            if (strcmp(name, "GLIBC_2.34") == 0)
                return 0;
            glibc |= strncmp(name, "GLIBC_2.", 8) == 0;
            va = (const ElfW(Vernaux) *)((const char *)va + va->vna_next);
        }
        if (!vn->vn_next)
            break;
        vn = (const ElfW(Verneed) *)((const char *)vn + vn->vn_next);
    }
    return glibc;
}

static int (*kill_for(const void *caller))(pthread_t, int)
{
    int (*fresh)(pthread_t, int) =
        FSAFE__NEXT_IN(&real_pthread_kill, int (*)(pthread_t, int), "pthread_kill");
    int old = -1;
    for (int i = 0; i < KILL_SITES && old < 0; i++) {
        AO_t site = AO_load_acquire(&kill_site[i]);
        if (site >> 1 == (AO_t)caller) {
            old = (int)(site & 1);
        } else if (site == 0) {
            old = linked_before_2_34(caller);
            AO_compare_and_swap_full(&kill_site[i], 0, (AO_t)caller << 1 | (AO_t)old);
        }
    }
    if (old < 0)
        old = linked_before_2_34(caller);
    if (!old)
        return fresh;
    void *p = (void *)AO_load_acquire(&real_pthread_kill_old);
    if (!p) {
#ifdef FSAFE__GL_BASE_VERSION
        p = dlvsym(RTLD_NEXT, "pthread_kill", FSAFE__GL_BASE_VERSION);
#endif
        AO_store_release(&real_pthread_kill_old, (AO_t)(p ? p : (void *)fresh));
    }
    return p ? (int (*)(pthread_t, int))p : fresh;
}

FSAFE_EXPORT int pthread_kill(pthread_t t, int sig)
{
    int (*real_)(pthread_t, int) = kill_for(__builtin_return_address(0));
    return OTHER_THREAD_CALL(t, &gate_pthread_kill, real_(t, sig));
}

FSAFE_EXPORT int pthread_cancel(pthread_t t)
{
    int (*real_)(pthread_t) =
        FSAFE__NEXT_IN(&real_pthread_cancel, int (*)(pthread_t), "pthread_cancel");
    return OTHER_THREAD_CALL(t, &gate_pthread_cancel, real_(t));
}

FSAFE_EXPORT int pthread_getschedparam(pthread_t t, int *policy, struct sched_param *param)
{
    int (*real_)(pthread_t, int *, struct sched_param *) = FSAFE__NEXT_IN(
        &real_getschedparam, int (*)(pthread_t, int *, struct sched_param *), "pthread_getschedparam");
    return OTHER_THREAD_CALL(t, &gate_getschedparam, real_(t, policy, param));
}

FSAFE_EXPORT int pthread_setschedparam(pthread_t t, int policy, const struct sched_param *param)
{
    int (*real_)(pthread_t, int, const struct sched_param *) = FSAFE__NEXT_IN(
        &real_setschedparam, int (*)(pthread_t, int, const struct sched_param *), "pthread_setschedparam");
    return OTHER_THREAD_CALL(t, &gate_setschedparam, real_(t, policy, param));
}

FSAFE_EXPORT int pthread_setschedprio(pthread_t t, int prio)
{
    int (*real_)(pthread_t, int) =
        FSAFE__NEXT_IN(&real_setschedprio, int (*)(pthread_t, int), "pthread_setschedprio");
    return OTHER_THREAD_CALL(t, &gate_setschedprio, real_(t, prio));
}

FSAFE_EXPORT int pthread_getattr_np(pthread_t t, pthread_attr_t *attr)
{
    int (*real_)(pthread_t, pthread_attr_t *) =
        FSAFE__NEXT_IN(&real_getattr_np, int (*)(pthread_t, pthread_attr_t *), "pthread_getattr_np");
    return OTHER_THREAD_CALL(t, &gate_getattr_np, real_(t, attr));
}

/* ---- C++ static initialisation (libstdc++'s guards) ------------------------------ */
/* A function-local static's first use calls __cxa_guard_acquire; 1 means
 * this thread runs the initialiser, then __cxa_guard_release (or _abort, on
 * an exception).  GCC 12's libstdc++ marks the guard "pending" for that time
 * and makes every other thread wait on it as a futex, with no timeout
 * (libsupc++/guard.cc): a child of a fork made meanwhile waits forever at
 * its first use of that static.  The whole initialisation is a hold of this
 * gate, so the fork waits for it; a call that finds the static initialised
 * (0) ends its hold at once.  Calls that the compiler's inline test of the
 * guard skips (every use after the first) cost nothing. */
#define CXXINIT "C++ static initialisation"
static AO_t real_guard_acquire, real_guard_release, real_guard_abort;
static struct fsafe__gate gate_guard = {CXXINIT " (__cxa_guard_acquire)", 0};

FSAFE_EXPORT int __cxa_guard_acquire(int64_t *g)
{
    int (*real_)(int64_t *) = FSAFE__NEXT_IN(&real_guard_acquire, int (*)(int64_t *), "__cxa_guard_acquire");
    fsafe__gate_enter(&gate_guard, CALLER);
    int r = real_(g);
    if (r == 0)
        fsafe__gate_leave(&gate_guard);
    return r;
}

FSAFE_EXPORT void __cxa_guard_release(int64_t *g)
{
    FSAFE__NEXT_IN(&real_guard_release, void (*)(int64_t *), "__cxa_guard_release")(g);
    fsafe__gate_leave(&gate_guard);
}

FSAFE_EXPORT void __cxa_guard_abort(int64_t *g)
{
    FSAFE__NEXT_IN(&real_guard_abort, void (*)(int64_t *), "__cxa_guard_abort")(g);
    fsafe__gate_leave(&gate_guard);
}

/* ---- wide strings: the conversion steps' reference counts ------------------------ */
/*
 * glibc formats and scans a wide string through a string stream that it
 * orients wide (_IO_fwide), and orienting a stream takes __gconv_lock to
 * count its references to the locale's conversion steps
 * (__wcsmbs_clone_conv, wcsmbs/wcsmbsload.c): every swprintf, swscanf and
 * open_wmemstream, and C++'s std::to_wstring (vswprintf).  A child forked
 * while another thread held it hangs in its own next one, in iconv_open, or
 * at a stream's first wide call (libc.wide_string: 7 of 40 children of a
 * probe without fsafe).  The v forms are in GATED_FUNCTIONS (family iconv,
 * the same lock as iconv_open's); the variadic ones call them, as syslog
 * calls vsyslog.  None waits for anything, so a gate holds a fork only for
 * the formatting.  The scanf names are C99's (__isoc99_*), what a C99 or
 * C++11 compiler binds, and C23's (__isoc23_*), what glibc 2.38 and later
 * binds with _GNU_SOURCE (libc.wide_string.with on Debian 13 hung 2 of 40
 * children before they were added); the GNU names (swscanf, vswscanf: C89
 * or C++98 with _GNU_SOURCE) are not interposed.  Not covered (glibc-locks.tsv, row
 * iconv.gconv_lock.internal): a FILE stream's first wide call, and fclose
 * of a wide stream, take the lock too, but the call may then block on I/O,
 * which no gate may hold a fork for.
 */
FSAFE_EXPORT int swprintf(wchar_t *restrict s, size_t n, const wchar_t *restrict fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vswprintf(s, n, fmt, ap);
    va_end(ap);
    return r;
}

FSAFE_EXPORT int __swprintf_chk(wchar_t *s, size_t n, int flag, size_t slen, const wchar_t *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = __vswprintf_chk(s, n, flag, slen, fmt, ap);
    va_end(ap);
    return r;
}

FSAFE_EXPORT int __isoc99_swscanf(const wchar_t *s, const wchar_t *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = __isoc99_vswscanf(s, fmt, ap);
    va_end(ap);
    return r;
}

FSAFE_EXPORT int __isoc23_swscanf(const wchar_t *s, const wchar_t *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = __isoc23_vswscanf(s, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- stdio: the calls that flush every stream under the list lock ---------------- */
/* (fcloseall and _flushlbf are in GATED_FUNCTIONS.) */
static AO_t real_fflush;
static struct fsafe__gate gate_fflush = {STDIO " (fflush(NULL))", 0};

FSAFE_EXPORT int fflush(FILE *fp)
{
    int (*real_)(FILE *) = (int (*)(FILE *))fsafe__next_sym(&real_fflush, "fflush", NULL);
    return fp ? real_(fp) : GATE_CALL(&gate_fflush, real_(NULL));
}

/* ---- the loader ----------------------------------------------------------------- */
static AO_t real_dlopen, real_dlmopen, real_dlclose, real_dladdr, real_dladdr1, real_iterate;


/* The real function's slot, resolved; a call of it inside the loader gate. */
#define REAL(slot, name, type) ((type)fsafe__next_sym(&(slot), (name), NULL))
#define LOADER_CALL(call) GATE_CALL(&loader_gate, call)

/* Whether dlopen(file) depends on who calls it: glibc looks at the caller
 * for a bare name (its RUNPATH), a name with a dynamic string token, and the
 * caller's namespace (dl-open.c, dl_open_worker). */
static int caller_matters(const char *file)
{
    return file && (!strchr(file, '/') || strchr(file, '$'));
}

/*
 * For a name the caller matters to, the real function must see the caller's
 * return address: the call below is a tail call (a jump), which gcc and clang
 * make at -O1 and above unless the function needs a frame of its own.
 * test/libc.cmake checks it (libc.dlopen_runpath).
 */
#if !defined(__OPTIMIZE__)
#error "libc.c relies on tail calls in dlopen and dlmopen: build it with optimisation"
#endif
#if defined(__clang__)
#define TAIL_CALLS __attribute__((no_sanitize("thread")))
#else
#define TAIL_CALLS __attribute__((optimize("optimize-sibling-calls"), no_sanitize("thread")))
#endif

/* FSAFE_LOCKS' hooks (the core's, through the services: libfsafe.so's own
 * dlopen and dlclose are not in this library): 0 while they have nothing to
 * do, as always without FSAFE_LOCKS and before the attach. */
static int locks_watch(void)
{
    return fsafe__svc.dl_watch && fsafe__svc.dl_watch();
}

/* With them: the caller seen by libc is this library, as libfsafe.so's
 * dlopen has it then (README: FSAFE_LOCKS and libraries loaded later). */
static __attribute__((noinline)) void *open_watched(void *(*real)(const char *, int),
                                                    const char *file, int mode)
{
    void *h = LOADER_CALL(real(file, mode));
    if (h)
        fsafe__svc.dl_loaded();
    return h;
}

FSAFE_EXPORT TAIL_CALLS void *dlopen(const char *file, int mode)
{
    void *(*real)(const char *, int) = REAL(real_dlopen, "dlopen", void *(*)(const char *, int));
    if (locks_watch())
        return open_watched(real, file, mode);
    if (caller_matters(file))
        return real(file, mode);
    return LOADER_CALL(real(file, mode));
}

FSAFE_EXPORT TAIL_CALLS void *dlmopen(Lmid_t ns, const char *file,
                                                                              int mode)
{
    void *(*real)(Lmid_t, const char *, int) =
        REAL(real_dlmopen, "dlmopen", void *(*)(Lmid_t, const char *, int));
    if (caller_matters(file))
        return real(ns, file, mode);
    return LOADER_CALL(real(ns, file, mode));
}

FSAFE_EXPORT int dlclose(void *handle)
{
    int (*real)(void *) = REAL(real_dlclose, "dlclose", int (*)(void *));
    if (!locks_watch())
        return LOADER_CALL(real(handle));
    fsafe__svc.dl_unloading();
    int r = LOADER_CALL(real(handle));
    fsafe__svc.dl_loaded();
    return r;
}

FSAFE_EXPORT int dladdr(const void *addr, Dl_info *info)
{
    return LOADER_CALL(REAL(real_dladdr, "dladdr", int (*)(const void *, Dl_info *))(addr, info));
}

FSAFE_EXPORT int dladdr1(const void *addr, Dl_info *info, void **extra, int flags)
{
    return LOADER_CALL(REAL(real_dladdr1, "dladdr1", int (*)(const void *, Dl_info *, void **, int))(
        addr, info, extra, flags));
}

typedef int (*iterate_cb)(struct dl_phdr_info *, size_t, void *);

FSAFE_EXPORT int dl_iterate_phdr(iterate_cb cb, void *data)
{
    int r;
    fsafe__in_iterate++;
    r = LOADER_CALL(REAL(real_iterate, "dl_iterate_phdr", int (*)(iterate_cb, void *))(cb, data));
    fsafe__in_iterate--;
    return r;
}

