/* SPDX-License-Identifier: MIT */
/*
 * An empty shared library.  Figure 1 preloads it to measure what mapping any
 * one small library costs a fork, apart from what fsafe's code does.
 */
int fsafe_bench_empty(void);
int fsafe_bench_empty(void)
{
    return 0;
}
