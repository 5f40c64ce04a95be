/* A persistent thread pool. Jobs are split into tasks by their shape alone:
 * task t always does the same work, so results never depend on the thread
 * count. */
#ifndef CNN_POOL_H
#define CNN_POOL_H

#include "internal.h"

typedef struct cnni_pool cnni_pool;

/* A pool of n threads in all (the caller is one of them). */
cnn_status cnni_pool_create(cnni_pool **out, int n);
void cnni_pool_destroy(cnni_pool *p);
int cnni_pool_threads(const cnni_pool *p);
/* How many of the threads take part in the jobs from now on: 1 (every job
 * runs inline on the caller, and the workers go to sleep) to the pool's
 * count (the default). Called between jobs, by the caller only. Results do
 * not change: they never depend on which threads run the tasks. */
void cnni_pool_set_width(cnni_pool *p, int width);
int cnni_pool_width(const cnni_pool *p);

/* Runs fn(ctx, t, thread) for t in [0, ntasks) and returns when all are
 * done: each task is taken, in increasing t, by the next thread free, and
 * `thread` (below cnni_pool_threads) names the thread running it, for its
 * scratch. A thread slowed by other load on the machine thus leaves its
 * share to the others instead of making them wait. Task t must compute the
 * same whichever thread runs it, so results never depend on the thread
 * count or on timing. With p NULL or ntasks 1 it runs inline as thread 0. */
typedef void (*cnni_task_fn)(void *ctx, int64_t t, int thread);
void cnni_pool_run(cnni_pool *p, cnni_task_fn fn, void *ctx, int64_t ntasks);
/* The same with the tasks in `threads` nearly equal contiguous ranges (of
 * cnni_split), each run in order by one thread, the ranges taken as the
 * tasks above: for tasks over consecutive memory, so each thread streams
 * through its own part and neighbouring tasks' results (sums side by side)
 * share no cache line between threads. A thread that comes late leaves its
 * range to the others. */
void cnni_pool_run_blocked(cnni_pool *p, cnni_task_fn fn, void *ctx, int64_t ntasks);

/* Splits [0, n) into `parts` nearly equal ranges; range i is [*lo, *hi). */
static inline void cnni_split(int64_t n, int64_t parts, int64_t i, int64_t *lo, int64_t *hi)
{
    int64_t base = n / parts, rem = n % parts;
    *lo = i * base + (i < rem ? i : rem);
    *hi = *lo + base + (i < rem ? 1 : 0);
}

#endif
