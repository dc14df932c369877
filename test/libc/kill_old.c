/* SPDX-License-Identifier: MIT */
/* A library as one linked before glibc 2.34 would be: it calls the ABI's
 * first pthread_kill and needs no newer glibc version (libc.kill_versions).
 * The version is FSAFE__GL_BASE_VERSION's (src/common/glibc.h). */
#include <pthread.h>

#if defined(__aarch64__)
#define OLD_KILL "pthread_kill@GLIBC_2.17"
#else
#define OLD_KILL "pthread_kill@GLIBC_2.2.5"
#endif
__asm__(".symver pthread_kill_old, " OLD_KILL);
extern int pthread_kill_old(pthread_t t, int sig);

__attribute__((visibility("default"))) int fsafe_test_old_kill(pthread_t t, int sig)
{
    return pthread_kill_old(t, sig);
}
