/* SPDX-License-Identifier: MIT */
/*
 * A program that knows nothing of fsafe: threads, stdio, forks from the main
 * thread and from another thread, children that print, a non-zero exit
 * status.  test/compare_preload.sh runs it with and without LD_PRELOAD of
 * libfsafe and requires identical stdout, stderr and exit status.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

static int spawn(const char *who, int i)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        printf("child of %s #%d\n", who, i);
        fflush(stdout);
        _exit(i);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void *thread_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m);
    int sum = 0;
    for (int i = 0; i < 5; i++)
        sum += spawn("thread", i);
    printf("thread: children's statuses sum to %d\n", sum);
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);
    int sum = 0;
    for (int i = 0; i < 5; i++)
        sum += spawn("main", i);
    printf("main: children's statuses sum to %d\n", sum);
    fprintf(stderr, "a line on stderr from the program itself\n");
    return 3;
}
