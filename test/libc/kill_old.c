/* SPDX-License-Identifier: MIT */
/* A library as one linked before glibc 2.34 would be: it calls
 * pthread_kill@GLIBC_2.2.5 and needs no newer glibc version (libc.kill_versions). */
#include <pthread.h>

__asm__(".symver pthread_kill_v225, pthread_kill@GLIBC_2.2.5");
extern int pthread_kill_v225(pthread_t t, int sig);

__attribute__((visibility("default"))) int fsafe_test_old_kill(pthread_t t, int sig)
{
    return pthread_kill_v225(t, sig);
}
