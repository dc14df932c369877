/* SPDX-License-Identifier: MIT */
/*
 * glibc's own locks at fork (issue 11): threads call a libc function in a
 * loop while the main thread forks, and each child calls the same function.
 * The program knows nothing of fsafe; CTest runs it plain and with
 * libfsafe-auto.so preloaded.
 *
 *   test_libc_locks FAMILY none|some [ARG]
 *     none: no child may hang or fail, and fsafe prints nothing (a fork that
 *           ran out of FSAFE_AUTO_WAIT_MS would say so);
 *     some: at least one child hangs (plain run: the hang fsafe removes);
 *     tally: 20 forks, 1.5 s per child, prints how many children hung (a
 *           measurement, not a test: it always passes).
 *   test_libc_locks iterate_fork|ctor_fork LIB|account_fork|nested|signal|signal_entry|kill_fork|
 *                   sched_fork|tz_fork none|some
 *     the self-deadlock cases (see each; sched_fork and tz_fork livelock
 *     today: test/libc.cmake).
 *   test_libc_locks held FIFO_DIR: a call held in flight, the bounded wait.
 *   test_libc_locks held_entry: the same with fgetpwent.
 *   test_libc_locks held_regex: the same with a long regexec.
 *   test_libc_locks runpath: dlopen of a bare name keeps the caller's RUNPATH.
 *
 * Children run code that is not async-signal-safe on purpose: that is the
 * hang under test.  A child still running after its timeout counts as hung.
 */
#include "common.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fmtmsg.h>
#include <grp.h>
#include <gshadow.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnu/libc-version.h>
#include <iconv.h>
#include <link.h>
#include <libintl.h>
#include <locale.h>
#include <netdb.h>
#include <netinet/in.h>
#include <printf.h>
#include <regex.h>
#include <pwd.h>
#include <sched.h>
#include <resolv.h>
#include <rpc/netdb.h>
#include <shadow.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <syslog.h>
#include <sys/time.h>
#include <time.h>
#include <utmp.h>
#include <wchar.h>

#define THREADS 2
#define FORKS_NONE 40    /* forks in a "none" run: every child must finish */
#define FORKS_SOME 1000  /* at most, in a "some" run: stops at the first hang */
#define CHILD_MS_NONE 3000
#define CHILD_MS_SOME 1000

static atomic_int stop;
static const char *arg; /* the library for dlopen */

/* ---- the functions under test: one call each; non-zero = it failed ---- */
/* A named semaphore, opened and closed: both take glibc's
 * __sem_mappings_lock (nptl/sem_open.c).  The name is this test's (its
 * parent's pid), removed at exit. */
static char sem_name[64];

static void sem_name_remove(void)
{
    sem_unlink(sem_name);
}

static int op_sem_open(void)
{
    static atomic_int named;
    if (!atomic_exchange(&named, 1)) {
        snprintf(sem_name, sizeof sem_name, "/fsafe-test-libc-%d", (int)getpid());
        atexit(sem_name_remove);
    }
    while (!sem_name[0]) /* another thread is naming it */
        sched_yield();
    sem_t *s = sem_open(sem_name, O_CREAT, 0600, 1);
    if (s == SEM_FAILED)
        return 1;
    return sem_close(s) != 0;
}

/* A pipe to a command: popen and pclose take glibc's proc_file_chain_lock
 * (libio/iopopen.c); /bin/true, so that a call is short. */
static int op_popen(void)
{
    FILE *f = popen("/bin/true", "r");
    if (!f)
        return 1;
    return pclose(f) != 0;
}

static int op_rand(void)
{
    return rand() < 0;
}

/* The exit handlers' list: atexit (libc_nonshared.a's, calling
 * __cxa_atexit), as a C++ static with a destructor registers itself; glibc
 * takes __exit_funcs_lock (stdlib/cxa_atexit.c).  The handler does nothing:
 * the registrations only use memory (32 bytes each). */
static void exit_noop(void)
{
}
static int op_atexit(void)
{
    return atexit(exit_noop) != 0;
}

/* A C++ function-local static's guard (the Itanium C++ ABI, as g++ emits
 * it): __cxa_guard_acquire returns 1 to the thread that runs the
 * initialiser and makes the others wait on the guard word (libstdc++: a
 * futex, no timeout) until __cxa_guard_release, or _abort after an
 * exception.  Aborting every time keeps the guard cycling, as a lock does. */
/* libstdc++ is loaded for this case only (it needs libm, whose loading the
 * dlopen_name case must do itself), and its functions are looked up in the
 * global scope as a C++ program's PLT would bind them (an interposer
 * first). */
static int (*guard_acquire)(int64_t *);
static void (*guard_abort)(int64_t *);
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static void guard_load(void)
{
    if (!dlopen("libstdc++.so.6", RTLD_NOW | RTLD_GLOBAL))
        FAIL("dlopen libstdc++.so.6: %s", dlerror());
    guard_acquire = (int (*)(int64_t *))dlsym(RTLD_DEFAULT, "__cxa_guard_acquire");
    guard_abort = (void (*)(int64_t *))dlsym(RTLD_DEFAULT, "__cxa_guard_abort");
    if (!guard_acquire || !guard_abort)
        FAIL("__cxa_guard_acquire/_abort not found");
}
static int64_t guard;
static int op_guard(void)
{
    pthread_once(&guard_once, guard_load);
    if (guard_acquire(&guard) != 1)
        return 1; /* "initialised": never, since every initialisation aborts */
    for (volatile int k = 0; k < 100; k++) {
    }
    guard_abort(&guard);
    return 0;
}

/* The utmp database: every call takes __libc_utmp_lock (login/getutent_r.c),
 * whether or not the file exists. */
static int op_utmp(void)
{
    setutent();
    (void)getutent();
    endutent();
    return 0;
}

/* Messages from libc's own catalogue: strerror and its relatives translate
 * through dcgettext inside libc, holding __libc_setlocale_lock for reading
 * and _nl_state_lock; the child then cannot take them for writing
 * (setlocale, textdomain). */
static int op_strerror(void)
{
    char buf[64];
    return strerror(EINVAL) == NULL || strerror_r(ERANGE, buf, sizeof buf) == NULL;
}

static int op_setlocale(void)
{
    return setlocale(LC_MESSAGES, "C") == NULL || textdomain("fsafe") == NULL;
}

static int op_localtime(void)
{
    time_t t = time(NULL);
    struct tm tm;
    return localtime_r(&t, &tm) == NULL;
}

static int op_env(void)
{
    static atomic_int flip;
    int r = setenv("TZ", atomic_fetch_add(&flip, 1) & 1 ? "UTC0" : "EST5EDT", 1);
    tzset();
    return r != 0;
}

/* syslog_lock (misc/syslog.c).  The message is masked in main, so nothing is
 * sent: glibc 2.36 takes the lock before the mask check, glibc 2.31 (Debian
 * 11) only after it, so openlog and closelog (no socket: LOG_ODELAY) take it
 * on every release. */
static int op_syslog(void)
{
    syslog(LOG_DEBUG, "fsafe test %d", 1);
    openlog("fsafe-test", LOG_ODELAY, LOG_USER);
    closelog();
    return 0;
}

static int op_iconv(void)
{
    iconv_t cd = iconv_open("UTF-8", "ISO-8859-1");
    if (cd == (iconv_t)-1)
        return 1;
    return iconv_close(cd) != 0;
}

/* A wide string formatted and scanned: glibc orients a string stream wide
 * for each, which takes __gconv_lock to count its references to the
 * conversion steps (wcsmbs/wcsmbsload.c, __wcsmbs_clone_conv).  The child's
 * own calls take it again. */
static int op_wide_string(void)
{
    wchar_t buf[32];
    int v = 0;
    if (swprintf(buf, sizeof buf / sizeof buf[0], L"%d", 42) != 2)
        return 1;
    return swscanf(buf, L"%d", &v) != 1 || v != 42;
}

static int op_locale(void)
{
    locale_t l = newlocale(LC_CTYPE_MASK | LC_TIME_MASK, "C.UTF-8", (locale_t)0);
    if (!l)
        return 1;
    freelocale(l);
    return 0;
}

static int op_getpwnam(void)
{
    return getpwnam("root") == NULL;
}

static int op_gethostbyaddr(void)
{
    struct in_addr a = {htonl(INADDR_LOOPBACK)};
    return gethostbyaddr(&a, sizeof a, AF_INET) == NULL;
}

static int op_getaddrinfo(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo("localhost", "80", &hints, &res) != 0)
        return 1;
    freeaddrinfo(res);
    return 0;
}

static int count_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info, (void)size;
    ++*(int *)data;
    return 0;
}

static int op_iterate(void)
{
    int n = 0;
    dl_iterate_phdr(count_cb, &n);
    return n < 2;
}

static int op_dlopen(void)
{
    void *h = dlopen(arg, RTLD_NOW);
    if (!h)
        return 1;
    return dlclose(h) != 0;
}

/* A fopencookie stream whose write callback takes a mutex, flushed with
 * fflush(NULL): glibc holds its stdio list lock around the callback, and its
 * fork takes that lock too.  (Auto mode once parked such a thread at the
 * mutex, holding the list lock, while the forker waited for it in glibc's
 * fork: a deadlock of fsafe's making.) */
static pthread_mutex_t cookie_mu = PTHREAD_MUTEX_INITIALIZER;
static long cookie_bytes;

static ssize_t cookie_write(void *c, const char *buf, size_t n)
{
    (void)c, (void)buf;
    pthread_mutex_lock(&cookie_mu);
    cookie_bytes += (long)n;
    pthread_mutex_unlock(&cookie_mu);
    return (ssize_t)n;
}

static int op_cookie(void)
{
    static __thread FILE *fp;
    if (!fp) {
        fp = fopencookie(NULL, "w", (cookie_io_functions_t){.write = cookie_write});
        if (!fp || setvbuf(fp, NULL, _IOFBF, BUFSIZ) != 0)
            return 1;
    }
    if (fputs("fsafe\n", fp) == EOF)
        return 1;
    return fflush(NULL) != 0;
}

/* An enumeration's _r form: glibc takes the database's lock
 * (nss/getXXent_r.c) in getservent_r as in setservent and endservent. */
static int op_getservent_r(void)
{
    struct servent se, *res;
    char buf[1024];
    setservent(0);
    for (int i = 0; i < 4 && getservent_r(&se, buf, sizeof buf, &res) == 0; i++) {
    }
    endservent();
    return 0;
}

/* The rpc database (/etc/rpc): getrpcbyname's static lock
 * (nss/getXXbyYY.c), held across the lookup. */
/* Without /etc/rpc (netbase not installed: a minimal Debian 11 chroot) the
 * lookup fails, under the same lock: only a hang counts here. */
static int op_getrpcbyname(void)
{
    (void)getrpcbyname("portmapper");
    return 0;
}

/* The netgroup functions: their own lock (inet/getnetgrent_r.c), held across
 * the NSS calls, whether or not a netgroup service answers (Debian 12's
 * nsswitch.conf says nis, not installed: the calls fail, under the lock). */
static int op_netgroup(void)
{
    char *h, *u, *d;
    if (setnetgrent("fsafe-test"))
        while (getnetgrent(&h, &u, &d)) {
        }
    endnetgrent();
    return 0;
}

/* The resolver's entry points: res_init and res_mkquery get the resolver
 * context, which takes the resolv.conf lock (resolv/resolv_conf.c) to find
 * and attach the configuration and to drop its reference.  No packet is
 * sent. */
static int op_resolv(void)
{
    unsigned char q[512];
    if (res_init() != 0)
        return 1;
    return res_mkquery(QUERY, "localhost", C_IN, T_A, NULL, 0, NULL, q, sizeof q) <= 0;
}

/* The account file parsers with a static result, each with its own lock held
 * across the read and the parse (pwd/fgetpwent.c grp/fgetgrent.c
 * shadow/fgetspent.c shadow/sgetspent.c gshadow/fgetsgent.c
 * gshadow/sgetsgent.c), from memory streams. */
static int parse_stream(const char *text, int (*one)(FILE *))
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    if (!f)
        return 1;
    int r = one(f);
    fclose(f);
    return r;
}
static int one_pw(FILE *f)
{
    return fgetpwent(f) == NULL;
}
static int one_gr(FILE *f)
{
    return fgetgrent(f) == NULL;
}
static int one_sp(FILE *f)
{
    return fgetspent(f) == NULL;
}
static int one_sg(FILE *f)
{
    return fgetsgent(f) == NULL;
}
static int op_fgetpwent(void)
{
    return parse_stream("fsafe:x:1000:1000:fsafe:/home/fsafe:/bin/sh\n", one_pw);
}
static int op_account_files(void)
{
    static const char sp[] = "fsafe:*:19000:0:99999:7:::\n", sg[] = "fsafe:*::fsafe\n";
    return parse_stream("fsafe:x:1000:1000:fsafe:/home/fsafe:/bin/sh\n", one_pw) |
           parse_stream("fsafe:x:1000:fsafe\n", one_gr) | parse_stream(sp, one_sp) |
           parse_stream(sg, one_sg) | (sgetspent(sp) == NULL) | (sgetsgent(sg) == NULL);
}

/* fmtmsg's lock (stdlib/fmtmsg.c), taken by addseverity and by fmtmsg even
 * when nothing is to be printed (MM_NULLMC). */
static int op_fmtmsg(void)
{
    static atomic_int n;
    char sev[16];
    snprintf(sev, sizeof sev, "SEV%d", atomic_fetch_add(&n, 1) & 7);
    if (addseverity(5, sev) != MM_OK)
        return 1;
    return fmtmsg(MM_NULLMC, "fsafe:test", 5, "text", "action", "fsafe:1") != MM_OK;
}

/* lckpwdf's lock (shadow/lckpwdf.c), held while the lock file is opened and,
 * up to 15 s, while its fcntl lock is awaited.  The process's own hold of
 * the file lock is one (lock_fd): the workers take turns with a mutex of
 * their own.  The child must not wait for the file lock its parent holds
 * (that wait is not a lost lock), so it calls what takes glibc's lock
 * without it: ulckpwdf with an inherited descriptor (root), lckpwdf when
 * the lock file cannot be opened (anyone else). */
static pthread_mutex_t pwlock_mu = PTHREAD_MUTEX_INITIALIZER;
static int op_lckpwdf(void)
{
    pthread_mutex_lock(&pwlock_mu);
    int r = lckpwdf();
    if (r == 0)
        r = ulckpwdf();
    pthread_mutex_unlock(&pwlock_mu);
    return r != 0 && geteuid() == 0;
}

static int op_lckpwdf_child(void)
{
    if (geteuid() == 0)
        ulckpwdf();
    else
        lckpwdf();
    return 0;
}

/* ---- issue 23: another thread's own locks, per-object locks, registrations ---- */
static pthread_t main_thread; /* the forker of the table's families */

/* pd->lock of the thread named (nptl/pthread_getschedparam.c,
 * pthread_setschedparam.c): the workers read and set the main thread's
 * scheduling (SCHED_OTHER, as it is); the child reads its own, with the same
 * descriptor. */
static int op_schedparam(void)
{
    struct sched_param sp = {0};
    int policy;
    return pthread_setschedparam(main_thread, SCHED_OTHER, &sp) != 0 ||
           pthread_getschedparam(main_thread, &policy, &sp) != 0;
}

static int op_schedparam_child(void)
{
    struct sched_param sp;
    int policy;
    return pthread_getschedparam(pthread_self(), &policy, &sp) != 0;
}

/* pd->exit_lock of the thread signalled (nptl/pthread_kill.c): signal 0
 * checks that the main thread exists and sends nothing, under the lock.  In
 * the child a second thread does the same to the child's thread (the
 * forker's descriptor), as a thread that signals its process's main thread
 * would; it waits forever on a lock held at the fork. */
static int op_kill(void)
{
    return pthread_kill(main_thread, 0) != 0;
}

static void *kill_helper(void *p)
{
    return (void *)(intptr_t)pthread_kill(*(pthread_t *)p, 0);
}

static int op_kill_child(void)
{
    pthread_t self = pthread_self(), th;
    void *r;
    if (pthread_create(&th, NULL, kill_helper, &self) != 0 || pthread_join(th, &r) != 0)
        return 1;
    return r != NULL;
}

/* The printf registration tables' lock (stdio-common/reg-printf.c): the same
 * conversion registered again and again. */
static int printf_w(FILE *f, const struct printf_info *info, const void *const *args)
{
    (void)info, (void)args;
    return fputs("w", f) == EOF ? -1 : 1;
}

static int printf_w_info(const struct printf_info *info, size_t n, int *types, int *size)
{
    (void)info, (void)n, (void)types, (void)size;
    return 0;
}

/* The modifier and type tables' locks too: register_printf_type only hands
 * out a number (ENOSPC once they run out, under the same lock), and
 * register_printf_modifier adds a record each time, so one call in 256; it
 * too fails with ENOSPC, under its lock, once the 16 bits of
 * printf_info.user are used (after 4096 calls here, a child's call among
 * them): for both only a hang counts. */
static int op_printf_register(void)
{
    static atomic_uint n;
    static const wchar_t modifier[] = L"fsafe";
    (void)register_printf_type(NULL);
    if ((atomic_fetch_add(&n, 1) & 255) == 0)
        (void)register_printf_modifier(modifier);
    return register_printf_specifier('W', printf_w, printf_w_info) != 0;
}

/* bindresvport's lock (inet/bindresvport.c), held across its bind attempts
 * (a port below 1024: as root the bind works, as anyone else it fails, under
 * the same lock: only a hang counts). */
static int op_bindresvport(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return 1;
    (void)bindresvport(fd, NULL);
    close(fd);
    return 0;
}

/* A compiled pattern's lock (re_dfa_t.lock, posix/regexec.c), held for the
 * whole match: one regex_t, made before the threads, matched by all. */
static regex_t shared_re;
static pthread_once_t re_once = PTHREAD_ONCE_INIT;
static void re_make(void)
{
    if (regcomp(&shared_re, "^([a-z]+)@([a-z]+)\\.(com|org)$", REG_EXTENDED) != 0)
        FAIL("regcomp");
}

static int op_regexec(void)
{
    regmatch_t m[4];
    pthread_once(&re_once, re_make);
    return regexec(&shared_re, "fsafe@example.org", 4, m, 0) != 0;
}

/* A DIR's lock (struct __dirstream.lock), held across the getdents refill:
 * one DIR, opened before the threads.  Its descriptor's offset is shared
 * with the child, so what the child reads is not checked: only a hang
 * counts. */
static DIR *shared_dir;
static pthread_once_t dir_once = PTHREAD_ONCE_INIT;
static void dir_open(void)
{
    if (!(shared_dir = opendir("/")))
        FAIL("opendir /: %s", strerror(errno));
}

static int op_readdir(void)
{
    pthread_once(&dir_once, dir_open);
    rewinddir(shared_dir);
    for (int i = 0; i < 4 && readdir(shared_dir); i++) {
    }
    (void)telldir(shared_dir);
    return 0;
}

/* getopt's message for an unknown option: libc translates it through its
 * own __dcgettext, holding __libc_setlocale_lock and _nl_state_lock for
 * reading (intl/dcigettext.c); the child then takes them for writing
 * (setlocale, textdomain), as in the strerror family.  getopt's state is
 * global: the workers take turns with a mutex of their own.  The messages
 * go to a stream on /dev/null (the family's "quiet"). */
static pthread_mutex_t getopt_mu = PTHREAD_MUTEX_INITIALIZER;
static int op_getopt(void)
{
    static char *const argv[] = {"fsafe-test", "-Z", NULL};
    pthread_mutex_lock(&getopt_mu);
    optind = 1;
    opterr = 1;
    int r = getopt(2, argv, "a");
    pthread_mutex_unlock(&getopt_mu);
    return r != '?';
}

/* ---- glibc's locks that no wrapper sees: FSAFE_LOCKS and glibc's symbols ------- */
/* libc takes these inside itself, where no interposed function runs, so auto
 * mode cannot see them; their names are in libc's debug file alone (Debian:
 * libc6-dbg), through which FSAFE_LOCKS registers them (test/libc.cmake sets
 * it for the "none" runs).  src/auto/glibc-locks.tsv, fsafe value "locks". */

/* __cxa_finalize for an object that registered nothing: it walks the list of
 * exit handlers under __exit_funcs_lock (stdlib/cxa_finalize.c), as a
 * dlclose or a library's destructor does, and runs none.  The child's atexit
 * takes the lock. */
static char finalize_key;
static int op_exit_finalize(void)
{
    extern void __cxa_finalize(void *);
    __cxa_finalize(&finalize_key);
    return 0;
}

/* A SIGEV_THREAD timer: timer_create and timer_delete link and unlink it
 * under __timer_active_sigev_thread_lock, and glibc's helper thread holds
 * that lock while it starts a thread for each expiry
 * (sysdeps/unix/sysv/linux/timer_routines.c).  glibc resets the helper in
 * the child (__timer_fork_subprocess), not the lock. */
static void timer_fired(union sigval v)
{
    (void)v;
}

static int timer_new(timer_t *t)
{
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = timer_fired;
    return timer_create(CLOCK_MONOTONIC, &ev, t);
}

static int op_timer(void)
{
    timer_t t;
    if (timer_new(&t))
        return 1;
    struct itimerspec its = {{0, 0}, {0, 1000}};
    int r = timer_settime(t, 0, &its, NULL);
    struct timespec ts = {0, 50 * 1000};
    nanosleep(&ts, NULL); /* (it expires meanwhile: the helper starts a thread) */
    return timer_delete(t) | r;
}

static int op_timer_child(void)
{
    timer_t t;
    return timer_new(&t) || timer_delete(t);
}

/* Whether libc's debug file is installed (/usr/lib/debug/.build-id/xx/yyyy.debug,
 * by the build id of the libc.so.6 this process runs): FSAFE_LOCKS finds
 * the names above only there. */
static char libc_debug[256];
#undef p_type /* resolv.h's alias of __p_type: here the program header's field */
static int libc_note_cb(struct dl_phdr_info *pi, size_t size, void *unused)
{
    (void)size, (void)unused;
    if (!pi->dlpi_name || !strstr(pi->dlpi_name, "libc.so.6"))
        return 0;
    for (int i = 0; i < pi->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &pi->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(pi->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)(const void *)p;
            const unsigned char *desc = (const unsigned char *)p + sizeof *n + ((n->n_namesz + 3) & ~3u);
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && n->n_descsz >= 2 &&
                memcmp(p + sizeof *n, "GNU", 4) == 0) {
                int k = snprintf(libc_debug, sizeof libc_debug, "/usr/lib/debug/.build-id/%02x/",
                                 desc[0]);
                for (unsigned j = 1; j < n->n_descsz && k + 8 < (int)sizeof libc_debug; j++)
                    k += snprintf(libc_debug + k, sizeof libc_debug - (size_t)k, "%02x", desc[j]);
                snprintf(libc_debug + k, sizeof libc_debug - (size_t)k, ".debug");
                return 1;
            }
            p = (const char *)desc + ((n->n_descsz + 3) & ~3u);
        }
    }
    return 1;
}

static int libc_debug_installed(void)
{
    dl_iterate_phdr(libc_note_cb, NULL);
    return libc_debug[0] && access(libc_debug, R_OK) == 0;
}

struct family {
    const char *name;
    int (*op)(void);
    int (*child_op)(void); /* what the child calls, when not op */
    int forks;             /* in a "none" run, when not FORKS_NONE */
    int fails;             /* its fault is a child that fails, not one that hangs */
    int glibc_fork_since;  /* 2.N whose own fork takes the lock (glibc-locks.tsv), or 0 */
    int quiet;             /* op writes to stderr: the stream goes to /dev/null meanwhile */
    int glibc_lock_since;  /* 2.N that first takes the lock in op, or 0: before it, no
                            * child can hang, and the twin without fsafe is skipped (77) */
    int needs_debug;       /* the "none" run covers it by FSAFE_LOCKS: skipped (77) without
                            * libc's debug file, and before glibc 2.N if N > 1 */
};
static const struct family families[] = {
    {"localtime", op_localtime, NULL, 0, 0, 0, 0, 0, 0},
    {"rand", op_rand, NULL, 0, 0, 0, 0, 0, 0},
    {"atexit", op_atexit, NULL, 0, 0, 0, 0, 0, 0},
    {"utmp", op_utmp, NULL, 0, 0, 0, 0, 0, 0},
    {"strerror", op_strerror, op_setlocale, 0, 0, 0, 0, 0, 0},
    {"cxa_guard", op_guard, NULL, 0, 0, 0, 0, 0, 0},
    {"sem_open", op_sem_open, NULL, 0, 0, 0, 0, 0, 0},
    /* glibc 2.41's fork takes proc_file_chain_lock itself (Debian 13). */
    {"popen", op_popen, NULL, 0, 0, 41, 0, 0, 0},
    {"cookie_flush", op_cookie, NULL, 0, 0, 0, 0, 0, 0},
    {"setenv_tzset", op_env, NULL, 0, 0, 0, 0, 0, 0},
    {"syslog", op_syslog, NULL, 0, 0, 0, 0, 0, 0},
    {"iconv", op_iconv, NULL, 0, 0, 0, 0, 0, 0},
    {"wide_string", op_wide_string, NULL, 0, 0, 0, 0, 0, 0},
    {"newlocale", op_locale, NULL, 0, 0, 0, 0, 0, 0},
    {"getpwnam", op_getpwnam, NULL, 0, 0, 0, 0, 0, 0},
    {"gethostbyaddr", op_gethostbyaddr, NULL, 0, 0, 0, 0, 0, 0},
    {"getaddrinfo", op_getaddrinfo, NULL, 0, 0, 0, 0, 0, 0},
    {"getservent_r", op_getservent_r, NULL, 0, 0, 0, 0, 0, 0},
    {"getrpcbyname", op_getrpcbyname, NULL, 0, 0, 0, 0, 0, 0},
    {"netgroup", op_netgroup, NULL, 0, 0, 0, 0, 0, 0},
    {"resolv", op_resolv, NULL, 0, 0, 0, 0, 0, 0},
    {"account_files", op_account_files, NULL, 0, 0, 0, 0, 0, 0},
    {"fmtmsg", op_fmtmsg, NULL, 0, 0, 0, 0, 0, 0},
    {"lckpwdf", op_lckpwdf, op_lckpwdf_child, 0, 0, 0, 0, 0, 0},
    {"schedparam", op_schedparam, op_schedparam_child, 0, 0, 0, 0, 0, 0},
    /* pd->exit_lock came with glibc 2.34's fix of the race between
     * pthread_kill and thread exit (bug 12889): Debian 11's 2.31 has none. */
    {"pthread_kill", op_kill, op_kill_child, 0, 0, 0, 0, 34, 0},
    {"printf_register", op_printf_register, NULL, 0, 0, 0, 0, 0, 0},
    {"bindresvport", op_bindresvport, NULL, 0, 0, 0, 0, 0, 0},
    {"regexec", op_regexec, NULL, 0, 0, 0, 0, 0, 0},
    {"readdir", op_readdir, NULL, 0, 0, 0, 0, 0, 0},
    {"exit_finalize", op_exit_finalize, op_atexit, 0, 0, 0, 0, 0, 1},
    /* Before 2.34 the timer lock is librt's __active_timer_sigev_thread_lock,
     * which librt locks through the PLT: auto mode tracks it there. */
    {"timer", op_timer, op_timer_child, 0, 0, 0, 0, 0, 34},
    {"getopt", op_getopt, op_setlocale, 0, 0, 0, 1, 0, 0},
    {"dl_iterate_phdr", op_iterate, NULL, 0, 0, 0, 0, 0, 0},
    {"dlopen", op_dlopen, NULL, 0, 0, 0, 0, 0, 0},
    /* A bare name (issue 25): glibc's fork resets dl_load_lock in the child,
     * so a fork while another thread is inside dlopen or dlclose leaves the
     * link map half changed, and the child's dlopen asserts
     * (r_state == RT_CONSISTENT) and aborts. */
    {"dlopen_name", op_dlopen, NULL, 1000, 1, 0, 0, 0, 0},
};

/* ---- fsafe's messages: stderr goes to a file, checked at the end --------- */
static int real_stderr = -1;
static char log_path[] = "/tmp/fsafe-libc-XXXXXX";

static void capture_stderr(void)
{
    int fd = mkstemp(log_path);
    if (fd < 0)
        FAIL("mkstemp: %s", strerror(errno));
    real_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* What the last release_stderr read. */
static char captured[8192];

/* Returns whether fsafe said anything (or, with must_contain, whether that
 * was said); echoes the captured text. */
static int release_stderr(const char *must_contain)
{
    int fd = open(log_path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, captured, sizeof captured - 1) : -1;
    if (fd >= 0)
        close(fd);
    unlink(log_path);
    dup2(real_stderr, 2);
    captured[n > 0 ? n : 0] = 0;
    if (n > 0)
        fprintf(stderr, "captured stderr:\n%s", captured);
    if (must_contain)
        return strstr(captured, must_contain) != NULL;
    return strstr(captured, "fsafe[") != NULL; /* every line is "fsafe[PID]: text" */
}

/* Whether the captured text has a line of fsafe's other than a bounded
 * wait's report ("fork waited N ms (FSAFE_AUTO_WAIT_MS) ...", then one
 * indented line per hold). */
static int said_beyond_bound(void)
{
    for (const char *p = captured; (p = strstr(p, "fsafe[")) != NULL; p++) {
        const char *text = strstr(p, "]: ");
        if (!text)
            return 1;
        text += 3;
        if (strncmp(text, "fork waited ", 12) != 0 && strncmp(text, "  ", 2) != 0)
            return 1;
    }
    return 0;
}

/* ---- the loop ---------------------------------------------------------------- */
static void *worker(void *p)
{
    int (*op)(void) = (int (*)(void))p;
    while (!atomic_load(&stop))
        op();
    return NULL;
}

struct tally {
    int forks, hung, failed;
};

static void start_workers(pthread_t *th, void *(*fn)(void *), void *p)
{
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&th[i], NULL, fn, p) != 0)
            FAIL("pthread_create");
    t_sleep_ms(20); /* let them get going */
}

static void stop_workers(pthread_t *th)
{
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
}

static void count(struct tally *t, int st)
{
    t->forks++;
    if (st == T_TIMEOUT)
        t->hung++;
    else if (st != 0)
        t->failed++;
}

/* Judges a run; exits. */
static void verdict(const struct tally *t, const char *what, int some, int said)
{
    printf("%s: %d forks, %d children hung, %d failed%s\n", what, t->forks, t->hung, t->failed,
           said ? ", fsafe printed a message" : "");
    if (some) {
        if (t->hung == 0 && t->failed == 0)
            FAIL("%s: no child hung or failed without fsafe in %d forks", what, t->forks);
        exit(0);
    }
    if (t->hung || t->failed)
        FAIL("%s: %d of %d children hung, %d failed", what, t->hung, t->forks, t->failed);
    if (said)
        FAIL("%s: fsafe printed a message (a fork waited out FSAFE_AUTO_WAIT_MS?)", what);
    exit(0);
}

/* The running glibc's minor version (2.N), from gnu_get_libc_version. */
static int glibc_minor(void)
{
    int major = 0, minor = 0;
    if (sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor) != 2 || major != 2)
        FAIL("cannot read glibc's version \"%s\"", gnu_get_libc_version());
    return minor;
}

/* "tally": TALLY_FORKS forks, TALLY_CHILD_MS each, however many hang; prints
 * the count and passes (a measurement: test/bench/README.md's hang rates). */
#define TALLY_FORKS 20
#define TALLY_CHILD_MS 1500
static int tally_mode;

static void run_family(const struct family *f, int some)
{
    pthread_t th[THREADS];
    struct tally t = {0, 0, 0};
    FILE *saved_stderr = stderr;
    if (f->quiet && !(stderr = fopen("/dev/null", "w")))
        FAIL("fopen /dev/null: %s", strerror(errno));
    if (tally_mode) {
        if (f->op())
            FAIL("%s fails even before any fork", f->name);
        start_workers(th, worker, (void *)f->op);
        for (int i = 0; i < TALLY_FORKS; i++) {
            pid_t pid = fork();
            if (pid < 0)
                FAIL("fork: %s", strerror(errno));
            if (pid == 0)
                _exit((f->child_op ? f->child_op : f->op)() ? 2 : 0);
            count(&t, t_wait(pid, TALLY_CHILD_MS));
            t_sleep_ms(1);
        }
        stop_workers(th);
        printf("%s: tally: %d of %d children hung, %d failed\n", f->name, t.hung, t.forks,
               t.failed);
        exit(0);
    }
    if (some && f->glibc_lock_since && glibc_minor() < f->glibc_lock_since) {
        printf("%s: glibc %s does not take this lock (it came with 2.%d): no child can hang "
               "without fsafe; skipped\n",
               f->name, gnu_get_libc_version(), f->glibc_lock_since);
        exit(77);
    }
    if (!some && f->needs_debug > 1 && glibc_minor() < f->needs_debug) {
        printf("%s: glibc %s does not have the lock that test/libc.cmake's FSAFE_LOCKS entry "
               "names (it came with 2.%d); skipped\n",
               f->name, gnu_get_libc_version(), f->needs_debug);
        exit(77);
    }
    if (!some && f->needs_debug && !libc_debug_installed()) {
        printf("%s: covered only by FSAFE_LOCKS, which finds this lock in libc's debug file "
               "%s: not installed (Debian: libc6-dbg); skipped\n",
               f->name, libc_debug[0] ? libc_debug : "(libc.so.6 has no build id)");
        exit(77);
    }
    if (some && f->glibc_fork_since && glibc_minor() >= f->glibc_fork_since) {
        /* The twin without fsafe then shows glibc's own answer: no hang. */
        printf("%s: glibc %s's own fork takes this lock (since 2.%d): no child may hang\n",
               f->name, gnu_get_libc_version(), f->glibc_fork_since);
        some = 0;
    }
    if (!some)
        capture_stderr();
    /* Warm up once: the first call loads modules and files. */
    if (f->op())
        FAIL("%s fails even before any fork", f->name);
    start_workers(th, worker, (void *)f->op);
    int forks = some ? FORKS_SOME * (f->fails ? 5 : 1) : f->forks ? f->forks : FORKS_NONE;
    for (int i = 0; i < forks && !(some && (t.hung || (f->fails && t.failed))); i++) {
        pid_t pid = fork();
        if (pid < 0)
            FAIL("fork: %s", strerror(errno));
        if (pid == 0)
            _exit((f->child_op ? f->child_op : f->op)() ? 2 : 0);
        count(&t, t_wait(pid, some ? CHILD_MS_SOME : CHILD_MS_NONE));
        if (!f->fails)
            t_sleep_ms(1);
    }
    stop_workers(th);
    if (f->quiet) {
        fclose(stderr);
        stderr = saved_stderr;
    }
    verdict(&t, f->name, some, some ? 0 : release_stderr(NULL));
}

/* ---- a fork from a dl_iterate_phdr callback ------------------------------------ */
/* The forker holds dl_load_write_lock across the fork.  glibc leaves it held
 * by the parent thread's id in the child, so the callback's return cannot
 * release it: the child's next dl_iterate_phdr hangs, even in a process with
 * one thread.  Other threads call dl_iterate_phdr and dladdr meanwhile: the
 * forker must not wait for them (they are blocked on its lock). */
static pid_t forked;
static int fork_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info, (void)size, (void)data;
    forked = fork();
    return 1;
}

static void *loader_worker(void *p)
{
    (void)p;
    Dl_info di;
    while (!atomic_load(&stop)) {
        op_iterate();
        dladdr((void *)loader_worker, &di);
    }
    return NULL;
}

static void run_iterate_fork(int some)
{
    pthread_t th[THREADS];
    struct tally t = {0, 0, 0};
    if (!some)
        capture_stderr();
    start_workers(th, loader_worker, NULL);
    for (int i = 0; i < (some ? 3 : 20) && !(some && t.hung); i++) {
        pid_t self = getpid();
        dl_iterate_phdr(fork_cb, NULL);
        if (forked < 0)
            FAIL("fork: %s", strerror(errno));
        if (getpid() != self)
            _exit(op_iterate() ? 2 : 0);
        count(&t, t_wait(forked, some ? CHILD_MS_SOME : CHILD_MS_NONE));
    }
    stop_workers(th);
    verdict(&t, "fork from a dl_iterate_phdr callback", some, some ? 0 : release_stderr(NULL));
}

/* ---- the FSAFE_LOCKS "lll" entry's own limits ------------------------------------ */
/* Do-no-harm cases for __exit_funcs_lock registered by FSAFE_LOCKS (the
 * "none" run's environment): plain, neither hangs; with the entry, each
 * hung before the lll kind's bounds (locks_env.c).
 *   prepare_atexit: another library's atfork prepare handler registers an
 *     exit handler (a C++ static's first use does); it runs inside the fork,
 *     after the walk took the lock.  The gate gives it back first.
 *   handler_exit: a process with one thread forks from a signal handler
 *     that interrupted its own __cxa_finalize: the held word is its own. */
static void prepare_atexit(void)
{
    if (atexit(exit_noop) != 0)
        abort();
}

static void lll_needs(void)
{
    if (!libc_debug_installed()) {
        printf("covered only by FSAFE_LOCKS, which finds __exit_funcs_lock in libc's debug file "
               "%s: not installed (Debian: libc6-dbg); skipped\n",
               libc_debug[0] ? libc_debug : "(libc.so.6 has no build id)");
        exit(77);
    }
}

static void run_prepare_atexit(void)
{
    pthread_t th[THREADS];
    struct tally t = {0, 0, 0};
    if (glibc_minor() < 36) {
        /* Before 2.36 glibc's fork holds its atfork lock around the prepare
         * handlers, and __cxa_finalize takes that lock under the exit
         * handlers' one: this program deadlocks in glibc itself. */
        printf("glibc %s runs atfork prepare handlers under its atfork lock: the program "
               "deadlocks without fsafe; skipped\n",
               gnu_get_libc_version());
        exit(77);
    }
    lll_needs();
    capture_stderr();
    if (pthread_atfork(prepare_atexit, NULL, NULL) != 0)
        FAIL("pthread_atfork failed");
    start_workers(th, worker, (void *)op_exit_finalize);
    for (int i = 0; i < 20; i++) {
        alarm(30); /* the parent's own hang: SIGALRM ends the test */
        pid_t pid = fork();
        if (pid < 0)
            FAIL("fork: %s", strerror(errno));
        if (pid == 0)
            _exit(0); /* (the parent's fork is what is tested: plain, a child's
                       * atexit can hang, the libc.exit_finalize case) */
        count(&t, t_wait(pid, CHILD_MS_NONE));
    }
    alarm(0);
    stop_workers(th);
    if (arg && strcmp(arg, "no_auto") == 0) {
        /* Without auto mode the entry is not taken (nothing could give it
         * back to the handler), and fsafe says so once. */
        if (!release_stderr("entries of kind lll are taken only under auto mode"))
            FAIL("without auto mode: no line saying the lll entry is not taken");
        verdict(&t, "prepare handler calling atexit, without auto mode", 0, 0);
    }
    verdict(&t, "prepare handler calling atexit", 0, release_stderr(NULL));
}

static uint64_t t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static volatile sig_atomic_t handler_forks, handler_bad;
static void on_alarm_fork(int sig)
{
    (void)sig;
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid < 0 || waitpid(pid, NULL, 0) != pid)
        handler_bad = 1;
    handler_forks++;
    errno = saved;
}

static void run_handler_exit(void)
{
    lll_needs();
    capture_stderr();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm_fork;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    /* Every 10 ms: a fork and its child's wait take a few ms, and a period
     * shorter than that leaves the main loop no time between handlers. */
    struct itimerval it = {{0, 10000}, {0, 10000}};
    setitimer(ITIMER_REAL, &it, NULL);
    uint64_t t0 = t_now_ms();
    while (handler_forks < 100 && t_now_ms() - t0 < 20000)
        op_exit_finalize();
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    printf("forks from a signal handler inside __cxa_finalize: %d in %llu ms\n",
           (int)handler_forks, (unsigned long long)(t_now_ms() - t0));
    if (handler_bad || handler_forks < 100)
        FAIL("%d forks, %s", (int)handler_forks, handler_bad ? "a fork or wait failed" : "too few");
    if (release_stderr(NULL))
        FAIL("fsafe wrote to stderr");
    exit(0);
}

/* ---- a fork from a constructor run by dlopen ------------------------------------ */
/* The library's constructor forks (FSAFE_TEST_CTOR_FORK): the forker holds
 * dl_load_lock, and other threads' dladdr and dl_iterate_phdr calls wait for
 * it.  The child returns from dlopen and uses the loader. */
static void run_ctor_fork(int some)
{
    pthread_t th[THREADS];
    struct tally t = {0, 0, 0};
    if (!some)
        capture_stderr();
    setenv("FSAFE_TEST_CTOR_FORK", "1", 1);
    start_workers(th, loader_worker, NULL);
    for (int i = 0; i < (some ? FORKS_SOME : 20) && !(some && t.hung); i++) {
        pid_t self = getpid();
        void *h = dlopen(arg, RTLD_NOW);
        if (getpid() != self) {
            Dl_info di;
            _exit(!h || op_iterate() || !dladdr((void *)run_ctor_fork, &di) || dlclose(h) ? 2 : 0);
        }
        if (!h)
            FAIL("dlopen(%s): %s", arg, dlerror());
        pid_t *pid = dlsym(h, "fsafe_test_ctor_pid");
        if (!pid || *pid <= 0)
            FAIL("the constructor did not fork");
        count(&t, t_wait(*pid, some ? CHILD_MS_SOME : CHILD_MS_NONE));
        dlclose(h);
    }
    stop_workers(th);
    verdict(&t, "fork from a constructor run by dlopen", some, some ? 0 : release_stderr(NULL));
}

/* ---- a fork from a stream callback inside fgetpwent ----------------------------- */
/* fgetpwent holds its lock (pwd/fgetpwent.c) across the stream's read, so
 * a fopencookie read callback that forks runs with it held.  Other threads
 * call fgetpwent meanwhile, and wait for that lock: the fork must not wait
 * for them (it would wait out FSAFE_AUTO_WAIT_MS and say so).  The child returns from the callback, finishes
 * the parse (the lock is a plain word: its unlock works there) and parses
 * again. */
static const char cookie_pw[] = "fsafe:x:1000:1000:fsafe:/home/fsafe:/bin/sh\n";
struct cookie_src {
    size_t off;
    int fork_now;
};

static ssize_t cookie_read(void *c, char *buf, size_t n)
{
    struct cookie_src *src = c;
    if (src->fork_now) {
        src->fork_now = 0;
        t_sleep_ms(2); /* the other threads queue up on the lock */
        forked = fork();
    }
    size_t left = sizeof cookie_pw - 1 - src->off;
    if (n > left)
        n = left;
    memcpy(buf, cookie_pw + src->off, n);
    src->off += n;
    return (ssize_t)n;
}

/* glibc's parser asks the stream for its position (to step back over an
 * entry too long for its buffer): a stream without seek fails with EIO. */
static int cookie_seek(void *c, off64_t *pos, int whence)
{
    struct cookie_src *src = c;
    off64_t to = whence == SEEK_SET ? *pos : whence == SEEK_CUR ? (off64_t)src->off + *pos : -1;
    if (to < 0 || to > (off64_t)sizeof cookie_pw - 1)
        return -1;
    src->off = (size_t)to;
    *pos = to;
    return 0;
}

static void run_account_fork(int some)
{
    pthread_t th[THREADS];
    struct tally t = {0, 0, 0};
    if (!some)
        capture_stderr();
    start_workers(th, worker, (void *)op_fgetpwent);
    for (int i = 0; i < (some ? FORKS_SOME : 20) && !(some && t.hung); i++) {
        pid_t self = getpid();
        struct cookie_src src = {0, 1};
        FILE *f = fopencookie(&src, "r", (cookie_io_functions_t){.read = cookie_read, .seek = cookie_seek});
        if (!f)
            FAIL("fopencookie: %s", strerror(errno));
        struct passwd *pw = fgetpwent(f);
        fclose(f);
        if (getpid() != self)
            _exit(!pw || op_account_files() ? 2 : 0);
        if (forked < 0)
            FAIL("fork: %s", strerror(errno));
        if (!pw)
            FAIL("fgetpwent from the cookie stream found no entry");
        count(&t, t_wait(forked, some ? CHILD_MS_SOME : CHILD_MS_NONE));
    }
    stop_workers(th);
    verdict(&t, "fork from a stream callback inside fgetpwent", some,
            some ? 0 : release_stderr(NULL));
}

/* ---- nested gated calls -------------------------------------------------------- */
/* Calls inside calls: a dl_iterate_phdr callback that resolves names, reads
 * the password file, converts time, matches the shared pattern, reads the
 * shared directory, signals the main thread, sets its scheduling and
 * registers a printf conversion (loader, then NSS, time zone, regex,
 * directory streams, thread signals, thread attributes, printf
 * registration). */
static int nested_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info, (void)size, (void)data;
    return op_getaddrinfo() | op_getpwnam() | op_localtime() | op_regexec() | op_readdir() |
           op_kill() | op_schedparam() | op_printf_register() | 1;
}

static int op_nested(void)
{
    dl_iterate_phdr(nested_cb, NULL);
    return 0;
}

static int op_nested_child(void)
{
    return op_nested() | op_getaddrinfo() | op_getpwnam() | op_localtime() | op_regexec() |
           op_readdir() | op_kill_child() | op_schedparam_child() | op_printf_register();
}

/* ---- signal handlers ------------------------------------------------------------- */
/* Workers convert time; a signal handler on them calls dladdr (another gated
 * family) or forks.  Neither may deadlock fsafe's bookkeeping.  In the
 * "entry" variant the workers parse shadow and gshadow lines (each call holds
 * its glibc lock throughout; no malloc once the static buffers are made, so
 * the handler cannot interrupt one) and the handler converts time (the time
 * zone family) or forks.  Both catch a gate that a thread inside fork()
 * made exclusive (libc.c, the gates' slots): another thread's fork then went
 * ahead without waiting for the calls in flight, and its child hung on
 * tzset_lock (signal: 15 of 40 runs) or a parser's lock (signal_entry: 25 of
 * 40); 0 of 40 each with the gates not exclusive. */
static int op_sgetent(void)
{
    return sgetspent("fsafe:*:19000:0:99999:7:::") == NULL || sgetsgent("fsafe:*::fsafe") == NULL;
}

static pthread_t victims[THREADS];
static int signal_entry;
static void on_usr1(int sig)
{
    (void)sig;
    Dl_info di;
    int e = errno;
    if (signal_entry)
        op_localtime();
    else
        dladdr((void *)on_usr1, &di);
    errno = e;
}

static void on_usr2(int sig)
{
    (void)sig;
    int e = errno;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    errno = e;
}

static void *signaller(void *p)
{
    (void)p;
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        pthread_kill(victims[i % THREADS], (i % 16) == 15 ? SIGUSR2 : SIGUSR1);
        t_sleep_ms(1);
    }
    return NULL;
}

static void run_signal(void)
{
    struct tally t = {0, 0, 0};
    struct sigaction sa = {0};
    capture_stderr();
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    if (signal_entry && (op_sgetent() || op_localtime())) /* the static buffers, the zone */
        FAIL("sgetspent, sgetsgent or localtime_r fails even before any fork");
    start_workers(victims, worker, (void *)(signal_entry ? op_sgetent : op_localtime));
    pthread_t sig;
    pthread_create(&sig, NULL, signaller, NULL);
    for (int i = 0; i < FORKS_NONE; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            Dl_info di;
            if (signal_entry)
                _exit(op_sgetent() || op_localtime() ? 2 : 0);
            _exit(op_localtime() || !dladdr((void *)run_signal, &di) ? 2 : 0);
        }
        count(&t, t_wait(pid, CHILD_MS_NONE));
    }
    atomic_store(&stop, 1);
    pthread_join(sig, NULL);
    stop_workers(victims);
    verdict(&t, "signal handlers", 0, release_stderr(NULL));
}

/* ---- forks from signal handlers, other threads calling on the forker -------------- */
/* Two workers call on the main thread: pthread_kill(main, 0) (its
 * exit_lock: kill_fork) or pthread_setschedparam/getschedparam (its
 * descriptor lock: sched_fork).  A third thread sends SIGUSR2 to the
 * workers, whose handler forks, often from inside their gated call (the
 * gate's hold is the forker's own: the fork must not wait for it; the lock
 * it may hold is the main thread's, not the forker's); the main thread sends
 * SIGUSR2 to itself (that pthread_kill passes through ungated: its handler
 * runs before it returns) and forks in the handler.  Every child makes the
 * family's child call on itself.  (pthread_kill blocks all signals while it
 * holds the lock; the descriptor lock is never the forker's own here.)
 * tz_fork: the same with localtime_r and mktime by turns (tzset_lock, one
 * glibc lock behind two gates); its children touch no time zone, since a
 * handler may have interrupted the forker's own call inside the lock (the
 * known limit), so only the parent is under test. */
static int op_tz_mixed(void)
{
    static __thread unsigned k;
    time_t t = time(NULL);
    struct tm tm;
    if (k++ & 1)
        return localtime_r(&t, &tm) == NULL;
    localtime_r(&t, &tm);
    return mktime(&tm) == (time_t)-1;
}

static int op_nothing(void)
{
    return 0;
}

static atomic_int hf_hung, hf_failed, hf_forks;
static int (*hf_child_op)(void);
static void on_usr2_fork(int sig)
{
    (void)sig;
    int e = errno;
    pid_t pid = fork();
    if (pid == 0)
        _exit(hf_child_op() ? 2 : 0);
    if (pid > 0) {
        int st = t_wait(pid, CHILD_MS_NONE);
        atomic_fetch_add(&hf_forks, 1);
        if (st == T_TIMEOUT)
            atomic_fetch_add(&hf_hung, 1);
        else if (st != 0)
            atomic_fetch_add(&hf_failed, 1);
    }
    errno = e;
}

static void *fork_signaller(void *p)
{
    (void)p;
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        pthread_kill(victims[i % THREADS], SIGUSR2);
        t_sleep_ms(3);
    }
    return NULL;
}

static void run_handler_fork(int (*op)(void), int (*child_op)(void), const char *what)
{
    struct sigaction sa = {0};
    capture_stderr();
    hf_child_op = child_op;
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_usr2_fork;
    sigaction(SIGUSR2, &sa, NULL);
    if (op())
        FAIL("%s: the call fails even before any fork", what);
    start_workers(victims, worker, (void *)op);
    pthread_t sig;
    pthread_create(&sig, NULL, fork_signaller, NULL);
    for (int i = 0; i < FORKS_NONE; i++) {
        if (pthread_kill(pthread_self(), SIGUSR2) != 0)
            FAIL("pthread_kill(self)");
        t_sleep_ms(1);
    }
    atomic_store(&stop, 1);
    pthread_join(sig, NULL);
    stop_workers(victims);
    struct tally t = {atomic_load(&hf_forks), atomic_load(&hf_hung), atomic_load(&hf_failed)};
    if (t.forks <= FORKS_NONE)
        FAIL("%s: only %d forks: no worker's handler forked", what, t.forks);
    /* A handler's fork inside a gated call may wait out FSAFE_AUTO_WAIT_MS
     * for another thread whose handler waits to fork (the back-off of
     * src/auto/fork.c lets one of them go first) and say so: that report
     * is allowed here, nothing else. */
    release_stderr(NULL);
    verdict(&t, what, 0, said_beyond_bound());
}

/* ---- a call held in flight: the bounded wait ------------------------------------- */
/* A thread's tzset() reads TZ=":FIFO", which blocks in open(2) with glibc's
 * time zone lock held until a writer comes.  A fork then waits
 * FSAFE_AUTO_WAIT_MS and says which call held it up. */
static void *tz_reader(void *p)
{
    (void)p;
    tzset();
    return NULL;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void run_held(const char *dir)
{
    char fifo[512], tz[520];
    snprintf(fifo, sizeof fifo, "%s/tz-fifo-%d", dir, (int)getpid());
    unlink(fifo);
    if (mkfifo(fifo, 0600) != 0)
        FAIL("mkfifo %s: %s", fifo, strerror(errno));
    snprintf(tz, sizeof tz, ":%s", fifo);
    setenv("TZ", tz, 1);
    capture_stderr();
    pthread_t th;
    pthread_create(&th, NULL, tz_reader, NULL);
    t_sleep_ms(200); /* the reader is blocked in open() by now */
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0)
        _exit(0); /* the time zone lock is held by the reader: touch nothing */
    double held = now_ms() - t0;
    int st = t_wait(pid, CHILD_MS_NONE);
    int fd = open(fifo, O_WRONLY); /* lets the reader go */
    close(fd);
    pthread_join(th, NULL);
    unlink(fifo);
    int named = release_stderr("time zone (tzset)");
    printf("fork held up %.1f ms by a tzset() in flight; message names it: %s\n", held,
           named ? "yes" : "no");
    CHECK_EQ(st, 0);
    if (!named)
        FAIL("no message naming \"time zone (tzset)\"");
}

/* fgetpwent held in flight: a thread reads an entry from a pipe nobody
 * writes yet (through a cookie stream that can tell its position, which
 * glibc's parser asks first), with glibc's fgetpwent lock held.  The fork
 * waits FSAFE_AUTO_WAIT_MS and names the call. */
struct pipe_src {
    int fd;
    off64_t pos;
};

static ssize_t pipe_read(void *c, char *buf, size_t n)
{
    struct pipe_src *src = c;
    ssize_t r = read(src->fd, buf, n);
    if (r > 0)
        src->pos += r;
    return r;
}

static int pipe_seek(void *c, off64_t *pos, int whence)
{
    struct pipe_src *src = c;
    if (whence != SEEK_CUR || *pos != 0)
        return -1;
    *pos = src->pos;
    return 0;
}

static void *pw_reader(void *p)
{
    return fgetpwent((FILE *)p);
}

static void run_held_entry(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        FAIL("pipe: %s", strerror(errno));
    struct pipe_src src = {fds[0], 0};
    FILE *f = fopencookie(&src, "r", (cookie_io_functions_t){.read = pipe_read, .seek = pipe_seek});
    if (!f)
        FAIL("fopencookie: %s", strerror(errno));
    capture_stderr();
    pthread_t th;
    pthread_create(&th, NULL, pw_reader, f);
    t_sleep_ms(200); /* the reader is blocked in read() by now */
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    double held = now_ms() - t0;
    int st = t_wait(pid, CHILD_MS_NONE);
    if (write(fds[1], cookie_pw, sizeof cookie_pw - 1) < 0)
        FAIL("write: %s", strerror(errno));
    close(fds[1]);
    void *pw;
    pthread_join(th, &pw);
    fclose(f);
    close(fds[0]);
    int named = release_stderr("account files (fgetpwent)");
    printf("fork held up %.1f ms by a fgetpwent() in flight; message names it: %s\n", held,
           named ? "yes" : "no");
    CHECK_EQ(st, 0);
    if (!pw)
        FAIL("the reader's fgetpwent found no entry: it was not the call in flight");
    if (!named)
        FAIL("no message naming \"account files (fgetpwent)\"");
}

/* A long match held in flight: a pattern with a back-reference that glibc
 * matches in cubic time ((a|aa)*\\1*b against HELD_RE_LEN a's: 0.3 s for 80
 * here, about 1.7 s for 140), with its re_dfa_t lock held throughout.  A
 * fork meanwhile waits FSAFE_AUTO_WAIT_MS and names the call: the cost of a
 * gate on every regexec. */
#define HELD_RE_LEN 140
static atomic_int re_started, re_done;
static void *re_matcher(void *p)
{
    regex_t *re = p;
    char s[HELD_RE_LEN + 1];
    memset(s, 'a', HELD_RE_LEN);
    s[HELD_RE_LEN] = 0;
    atomic_store(&re_started, 1);
    int r = regexec(re, s, 0, NULL, 0);
    atomic_store(&re_done, 1);
    return (void *)(intptr_t)r;
}

static void run_held_regex(void)
{
    regex_t re;
    if (regcomp(&re, "(a|aa)*\\1*b", REG_EXTENDED) != 0)
        FAIL("regcomp");
    capture_stderr();
    pthread_t th;
    pthread_create(&th, NULL, re_matcher, &re);
    while (!atomic_load(&re_started))
        sched_yield();
    t_sleep_ms(100);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    double held = now_ms() - t0;
    int still = !atomic_load(&re_done);
    int st = t_wait(pid, CHILD_MS_NONE);
    void *r;
    pthread_join(th, &r);
    regfree(&re);
    int named = release_stderr("regex (regexec)");
    printf("fork held up %.1f ms by a regexec() in flight (still matching after the fork: %s); "
           "message names it: %s\n",
           held, still ? "yes" : "no", named ? "yes" : "no");
    CHECK_EQ(st, 0);
    if ((intptr_t)r != REG_NOMATCH)
        FAIL("the long match returned %d, not REG_NOMATCH", (int)(intptr_t)r);
    if (!still)
        FAIL("the match ended before the fork went ahead: it was not in flight long enough");
    if (!named)
        FAIL("no message naming \"regex (regexec)\"");
}

/* ---- dlopen keeps the caller's RUNPATH --------------------------------------------- */
/* rp_load() lives in a library whose RUNPATH holds the plugin's directory; the
 * program's does not.  A dlopen wrapper that calls the real one as itself
 * would lose the library's RUNPATH. */
int rp_load(void);
static void run_runpath(void)
{
    void *h = dlopen("libfsafe_rp_plugin.so", RTLD_NOW | RTLD_NOLOAD);
    CHECK(h == NULL);
    h = dlopen("libfsafe_rp_plugin.so", RTLD_NOW);
    if (h)
        FAIL("the program found the plugin by itself: the test proves nothing");
    if (!rp_load())
        FAIL("dlopen(\"libfsafe_rp_plugin.so\") from a library with its RUNPATH failed: %s",
             dlerror());
    printf("runpath: the library's dlopen found the plugin; the program's did not\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    setlogmask(LOG_MASK(LOG_EMERG));
    if (argc >= 2 && strcmp(argv[1], "runpath") == 0) {
        run_runpath();
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "held_regex") == 0) {
        run_held_regex();
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "held_entry") == 0) {
        run_held_entry();
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "held") == 0) {
        run_held(argv[2]);
        return 0;
    }
    if (argc < 3 ||
        (strcmp(argv[2], "none") && strcmp(argv[2], "some") && strcmp(argv[2], "tally"))) {
        fprintf(stderr, "usage: %s FAMILY none|some|tally [ARG]\n", argv[0]);
        return 2;
    }
    int some = strcmp(argv[2], "some") == 0;
    tally_mode = strcmp(argv[2], "tally") == 0;
    main_thread = pthread_self();
    arg = argc > 3 ? argv[3] : NULL;
    if (strcmp(argv[1], "iterate_fork") == 0)
        run_iterate_fork(some);
    if (strcmp(argv[1], "prepare_atexit") == 0)
        run_prepare_atexit();
    if (strcmp(argv[1], "handler_exit") == 0)
        run_handler_exit();
    if (strcmp(argv[1], "ctor_fork") == 0)
        run_ctor_fork(some);
    if (strcmp(argv[1], "account_fork") == 0)
        run_account_fork(some);
    if (strcmp(argv[1], "signal") == 0)
        run_signal();
    if (strcmp(argv[1], "signal_entry") == 0) {
        signal_entry = 1;
        run_signal();
    }
    if (strcmp(argv[1], "kill_fork") == 0)
        run_handler_fork(op_kill, op_kill_child, "forks from handlers, pthread_kill on the forker");
    if (strcmp(argv[1], "tz_fork") == 0)
        run_handler_fork(op_tz_mixed, op_nothing, "forks from handlers, localtime_r and mktime");
    if (strcmp(argv[1], "sched_fork") == 0)
        run_handler_fork(op_schedparam, op_schedparam_child,
                         "forks from handlers, pthread_setschedparam on the forker");
    if (strcmp(argv[1], "nested") == 0) {
        struct family f = {"nested", op_nested, op_nested_child, 0, 0, 0, 0, 0, 0};
        run_family(&f, some);
    }
    for (size_t i = 0; i < sizeof families / sizeof *families; i++)
        if (strcmp(argv[1], families[i].name) == 0) {
            if (families[i].op == op_dlopen && !arg)
                FAIL("dlopen needs a library path");
            run_family(&families[i], some);
        }
    fprintf(stderr, "unknown family %s\n", argv[1]);
    return 2;
}
