/* SPDX-License-Identifier: MIT */
/*
 * How often a forked child hangs on a lock built from a flag, a pthread mutex
 * and a condition variable (issue 22), while worker threads use it:
 *   hang_rate flag FORKS   a minimal lock in libxml2's xmlRMutex shape
 *   hang_rate xml FORKS    libxml2 itself: threads parse and free documents
 *                          (xmlFreeDoc takes the dictionary's xmlRMutex)
 * Each child takes the lock once (flag) or parses a document (xml) and is
 * killed after CHILD_MS; it prints "hung H of N".  Run it plain and under
 * fsafe-run to compare (hang-rates.sh does).  A measurement, not a test.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBXML2
#include <libxml/parser.h>
#endif

#define THREADS 4
#define CHILD_MS 300

static struct {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int held;
} fl = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void flag_acquire(void)
{
    pthread_mutex_lock(&fl.m);
    while (fl.held)
        pthread_cond_wait(&fl.cv, &fl.m);
    fl.held = 1;
    pthread_mutex_unlock(&fl.m);
}

static void flag_release(void)
{
    pthread_mutex_lock(&fl.m);
    fl.held = 0;
    pthread_cond_signal(&fl.cv);
    pthread_mutex_unlock(&fl.m);
}

static volatile unsigned sink;

static void work(unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        sink = sink * 31 + i;
}

static void *flag_worker(void *arg)
{
    (void)arg;
    for (;;) {
        flag_acquire();
        work(2000); /* inside: a few microseconds */
        flag_release();
        work(40000);
    }
    return NULL;
}

static void flag_child(void)
{
    flag_acquire();
    flag_release();
}

#ifdef HAVE_LIBXML2
static const char doc_text[] = "<?xml version='1.0'?><r><a x='1'>text</a><b><c/><c/><c/></b>"
                               "<d>more text</d></r>";

static void *xml_worker(void *arg)
{
    (void)arg;
    for (;;) {
        xmlDocPtr d = xmlReadMemory(doc_text, sizeof doc_text - 1, "w.xml", NULL, 0);
        xmlFreeDoc(d);
    }
    return NULL;
}

static void xml_child(void)
{
    xmlDocPtr d = xmlReadMemory(doc_text, sizeof doc_text - 1, "c.xml", NULL, 0);
    xmlFreeDoc(d);
}
#endif

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s flag|xml FORKS\n", argv[0]);
        return 2;
    }
    void *(*worker)(void *) = NULL;
    void (*child)(void) = NULL;
    if (strcmp(argv[1], "flag") == 0) {
        worker = flag_worker, child = flag_child;
        /* The workers wait on the flag's condition from the first round on,
         * as they would in any program that contends for it. */
    }
#ifdef HAVE_LIBXML2
    else if (strcmp(argv[1], "xml") == 0) {
        xmlInitParser();
        worker = xml_worker, child = xml_child;
    }
#endif
    else {
        fprintf(stderr, "%s: unknown workload '%s'%s\n", argv[0], argv[1],
#ifdef HAVE_LIBXML2
                ""
#else
                " (built without libxml2)"
#endif
        );
        return 2;
    }
    int forks = atoi(argv[2]);
    if (forks <= 0) {
        fprintf(stderr, "%s: FORKS must be a positive number\n", argv[0]);
        return 2;
    }
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    struct timespec settle = {0, 20 * 1000 * 1000};
    nanosleep(&settle, NULL);
    int hung = 0;
    for (int i = 0; i < forks; i++) {
        struct timespec gap = {0, (1 + i % 3) * 1000 * 1000};
        nanosleep(&gap, NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            struct itimerval it = {{0, 0}, {0, CHILD_MS * 1000}};
            setitimer(ITIMER_REAL, &it, NULL); /* SIGALRM kills a hung child */
            child();
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            hung++;
    }
    printf("hung %d of %d\n", hung, forks);
    /* The workers are still running: no exit handlers (libxml2's destructor
     * frees the dictionary's mutex under them: a parent that returned from
     * main aborted in pthread_mutex_lock about once in 4000 forks' worth of
     * runs, with or without fsafe). */
    fflush(stdout);
    _exit(0);
}
