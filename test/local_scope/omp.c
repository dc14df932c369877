/* SPDX-License-Identifier: MIT */
/* An OpenMP plugin (libgomp in its scope only): a parallel reduction, whose
 * GOMP_parallel fsafe interposes; plugin_start makes the pool exist before
 * the forks (a child then runs its regions with one thread). */
#include "plugin.h"

#include <omp.h>

const char plugin_probe[] = "omp_get_num_threads";

static long sum_to(long n)
{
    long s = 0;
#pragma omp parallel for reduction(+ : s)
    for (long i = 1; i <= n; i++)
        s += i;
    return s;
}

int plugin_start(void)
{
    return sum_to(1000) == 500500 ? 0 : 1;
}

int plugin_check(void)
{
    return sum_to(100000) == 5000050000L ? 0 : 1;
}

void plugin_stop(void)
{
}
