/* SPDX-License-Identifier: MIT */
/*
 * The child's watch (issue 24; src/auto/watch.c): one line when the child of
 * a multithreaded fork waits on something no thread of it can end.
 *
 *   test_watch CASE with|without
 * The parent starts a thread (except in "single"), forks, and reads the
 * child's stderr (a pipe) for 3 s beyond FSAFE_CHILD_WATCH_MS (read from the
 * environment, default 10000).
 * Hangs: the child waits forever on what the parent's thread would have
 * ended.  "with" (auto mode): exactly one line of fsafe's, naming the call,
 * the object's address and the function that waited, and the child is still
 * waiting after it (fsafe changed nothing else); "without": nothing said,
 * and the child still waits.
 *   cond    pthread_cond_wait for a flag the parent's thread had set
 *   cnd     the same with C11's cnd_wait
 *   sem     sem_wait on a semaphore only the parent's thread posted
 *   futex   syscall(SYS_futex, FUTEX_WAIT_PRIVATE) on a word it would wake
 * Healthy children (nothing said, the child ends by itself, exit 0):
 *   thread  the child makes a thread that signals the condition later
 *   handler a signal handler posts the semaphore (SIGALRM, later)
 *   shared  a process-shared semaphore that the parent posts later
 *   single  the parent never had a thread: the child's sem_wait is its own
 *           business (it waits forever, and fsafe says nothing)
 * "Later" is twice FSAFE_CHILD_WATCH_MS: after the watch has run out.
 */
#include "common.h"

#include <linux/futex.h>
#include <poll.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <threads.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static mtx_t c11_lock;
static cnd_t c11_cond;
static int busy;
static sem_t work, posted;
static int word;
static sem_t *shared_sem;
static long watch_ms = 10000;

/* ---- the parent's thread: it holds the flag, the semaphore, the word ---------- */
static void *owner(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    busy = 1;
    pthread_mutex_unlock(&lock);
    sem_post(&posted);
    for (;;)
        pause();
    return NULL;
}

/* ---- what the children wait in (named in fsafe's line: -rdynamic) ------------- */
#define WAITER __attribute__((noinline, visibility("default"))) void
WAITER watch_cond_waiter(void)
{
    pthread_mutex_lock(&lock);
    while (busy)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

WAITER watch_cnd_waiter(void)
{
    mtx_lock(&c11_lock);
    while (busy)
        cnd_wait(&c11_cond, &c11_lock);
    mtx_unlock(&c11_lock);
}

WAITER watch_sem_waiter(sem_t *s)
{
    while (sem_wait(s) != 0 && errno == EINTR) {
    }
}

WAITER watch_futex_waiter(void)
{
    while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) == 0)
        syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

static void *signaller(void *arg)
{
    (void)arg;
    t_sleep_ms(2 * watch_ms);
    pthread_mutex_lock(&lock);
    busy = 0;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    sem_post(&work);
}

/* The child's part of a case: returns only when the wait ended. */
static void child(const char *c)
{
    if (!strcmp(c, "cond"))
        watch_cond_waiter();
    else if (!strcmp(c, "cnd"))
        watch_cnd_waiter();
    else if (!strcmp(c, "sem") || !strcmp(c, "single"))
        watch_sem_waiter(&work);
    else if (!strcmp(c, "futex"))
        watch_futex_waiter();
    else if (!strcmp(c, "thread")) {
        pthread_t th;
        if (pthread_create(&th, NULL, signaller, NULL) != 0)
            _exit(2);
        watch_cond_waiter();
        pthread_join(th, NULL);
    } else if (!strcmp(c, "handler")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {{0, 0}, {(2 * watch_ms) / 1000, (2 * watch_ms) % 1000 * 1000}};
        setitimer(ITIMER_REAL, &it, NULL);
        watch_sem_waiter(&work);
    } else if (!strcmp(c, "shared")) {
        watch_sem_waiter(shared_sem);
    }
}

static const char *const hangs[] = {"cond", "cnd", "sem", "futex", "single"};
static const char *const names[][2] = {
    {"cond", "pthread_cond_wait on condition variable"}, {"cnd", "cnd_wait on condition variable"},
    {"sem", "sem_wait on semaphore"}, {"futex", "syscall(SYS_futex, FUTEX_WAIT) on futex word"}};

/* The kernel's thread count for this process (/proc/self/stat, field 20),
 * which the watch reads to know that a child is alone; -1 if unreadable. */
static int stat_threads(void)
{
    char b[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    char *p = fgets(b, sizeof b, f) ? strrchr(b, ')') : NULL;
    fclose(f);
    for (int field = 2; p && field < 20; field++)
        p = strchr(p + 1, ' ');
    return p ? atoi(p + 1) : -1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 3 || (strcmp(argv[2], "with") && strcmp(argv[2], "without"))) {
        fprintf(stderr, "usage: %s cond|cnd|sem|futex|thread|handler|shared|single with|without\n",
                argv[0]);
        return 2;
    }
    const char *c = argv[1];
    int with = !strcmp(argv[2], "with");
    const char *env = getenv("FSAFE_CHILD_WATCH_MS");
    if (env)
        watch_ms = atol(env);
    int hang = 0;
    for (size_t i = 0; i < sizeof hangs / sizeof *hangs; i++)
        hang |= !strcmp(c, hangs[i]);
    const char *expect = NULL; /* the text fsafe's line must have */
    for (size_t i = 0; with && i < sizeof names / sizeof *names; i++)
        if (!strcmp(c, names[i][0]))
            expect = names[i][1];
    if (with && watch_ms == 0)
        expect = NULL; /* the watch is off */
    if (expect && stat_threads() != 1) {
        /* qemu-user writes 0 there: the watch can never tell the child is
         * alone, and stays silent (the safe side), so there is no line to
         * check. */
        printf("SKIP: /proc/self/stat gives %d threads for this one-thread process\n",
               stat_threads());
        return T_SKIP;
    }

    mtx_init(&c11_lock, mtx_plain);
    cnd_init(&c11_cond);
    sem_init(&work, 0, 0);
    sem_init(&posted, 0, 0);
    shared_sem = mmap(NULL, sizeof *shared_sem, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                      -1, 0);
    CHECK(shared_sem != MAP_FAILED && sem_init(shared_sem, 1, 0) == 0);
    if (strcmp(c, "single") != 0) {
        pthread_t th;
        CHECK(pthread_create(&th, NULL, owner, NULL) == 0);
        sem_wait(&posted);
    } else {
        busy = 1;
    }
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        child(c);
        _exit(0);
    }
    close(p[1]);
    if (!strcmp(c, "shared")) {
        t_sleep_ms(2 * watch_ms);
        sem_post(shared_sem);
    }
    /* Read the child's stderr until it ends or watch + 3 s have passed. */
    char out[4096];
    size_t len = 0;
    int ended = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long limit = (hang ? watch_ms : 2 * watch_ms) + 3000;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms >= limit)
            break;
        struct pollfd pf = {p[0], POLLIN, 0};
        if (poll(&pf, 1, (int)(limit - ms)) <= 0)
            continue;
        ssize_t n = read(p[0], out + len, sizeof out - 1 - len);
        if (n <= 0) {
            ended = 1; /* the child closed its stderr: it is exiting */
            break;
        }
        len += (size_t)n;
    }
    out[len] = '\0';
    int st = ended ? t_wait(pid, 3000) : T_TIMEOUT;
    if (!ended) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += out[i] == '\n';
    printf("%s %s: child %s, %d line(s) on its stderr%s%s", c, argv[2],
           st == T_TIMEOUT ? "still waiting (killed)" : "ended", lines, len ? ":\n" : "\n", out);

    if (hang && st != T_TIMEOUT)
        FAIL("the child of case %s was expected to wait forever, and ended", c);
    if (!hang && st != 0)
        FAIL("the child of case %s did not end by itself with status 0", c);
    if (!expect) {
        if (len)
            FAIL("expected nothing on the child's stderr");
        return 0;
    }
    char addr[64], fn[64];
    void *obj = !strcmp(c, "cond")    ? (void *)&cond
                : !strcmp(c, "cnd")   ? (void *)&c11_cond
                : !strcmp(c, "sem")   ? (void *)&work
                                      : (void *)&word;
    snprintf(addr, sizeof addr, "%s %p,", expect, obj);
    snprintf(fn, sizeof fn, "called from watch_%s_waiter+0x", c);
    if (lines != 1 || !strstr(out, "fsafe[") || !strstr(out, addr) || !strstr(out, fn) ||
        !strstr(out, "FSAFE_CHILD_WATCH_MS"))
        FAIL("expected one line of fsafe's with \"%s\" and \"%s\"", addr, fn);
    return 0;
}
