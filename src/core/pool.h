/* A persistent thread pool with static, deterministic splits: task t always
 * does the same work, so results never depend on the thread count. */
#ifndef CNN_POOL_H
#define CNN_POOL_H

#include "internal.h"

typedef struct cnni_pool cnni_pool;

/* A pool of n threads in all (the caller is one of them). */
cnn_status cnni_pool_create(cnni_pool **out, int n);
void cnni_pool_destroy(cnni_pool *p);
int cnni_pool_threads(const cnni_pool *p);

/* Runs fn(ctx, t) for t in [0, ntasks) and returns when all are done. Task t
 * runs on thread t % threads. With p NULL or ntasks 1 it runs inline. */
typedef void (*cnni_task_fn)(void *ctx, int64_t t);
void cnni_pool_run(cnni_pool *p, cnni_task_fn fn, void *ctx, int64_t ntasks);
/* The same with thread i running the i-th of `threads` nearly equal
 * contiguous ranges of tasks: for tasks over consecutive memory that use no
 * per-thread scratch, so each thread streams through its own part and
 * neighbouring tasks' results (sums side by side) share no cache line
 * between threads. */
void cnni_pool_run_blocked(cnni_pool *p, cnni_task_fn fn, void *ctx, int64_t ntasks);

/* Runs fn(ctx, t, thread) for t in [0, ntasks), each task taken by the next
 * thread free, in increasing t; `thread` (below cnni_pool_threads) names the
 * thread running it, for its scratch. For tasks whose results do not depend
 * on which thread runs them: a thread slowed by another process then leaves
 * its tasks to the others instead of making them wait. */
typedef void (*cnni_thread_task_fn)(void *ctx, int64_t t, int thread);
void cnni_pool_run_dynamic(cnni_pool *p, cnni_thread_task_fn fn, void *ctx, int64_t ntasks);

/* Splits [0, n) into `parts` nearly equal ranges; range i is [*lo, *hi). */
static inline void cnni_split(int64_t n, int64_t parts, int64_t i, int64_t *lo, int64_t *hi)
{
    int64_t base = n / parts, rem = n % parts;
    *lo = i * base + (i < rem ? i : rem);
    *hi = *lo + base + (i < rem ? 1 : 0);
}

/* Which of the `parts` ranges of cnni_split(n, parts, ...) holds t: the
 * thread that runs task t of a blocked job of n tasks on `parts` threads. */
static inline int64_t cnni_split_part(int64_t n, int64_t parts, int64_t t)
{
    const int64_t base = n / parts, rem = n % parts, big = rem * (base + 1);
    return t < big ? t / (base + 1) : rem + (t - big) / (base > 0 ? base : 1);
}

#endif
