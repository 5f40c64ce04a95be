/* The thread pool: every task runs exactly once, for any thread and task
 * count; each task is told an index below the thread count that names the
 * thread running it (the same index for the same thread, in every job);
 * blocked jobs run each range of cnni_split on one thread, in order. */
#include "test.h"
#include "core/pool.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_TASKS 300

typedef struct {
    atomic_int runs[MAX_TASKS];
    pthread_t who[MAX_TASKS];
    int index[MAX_TASKS];
    double work[MAX_TASKS];
    int spin; /* busy work per task, so that every thread takes tasks */
    atomic_llong clock;         /* counts task starts */
    long long order[MAX_TASKS]; /* each task's start in that count */
} record;

static void note(void *ctx, int64_t t, int thread)
{
    record *r = ctx;
    r->order[t] = atomic_fetch_add(&r->clock, 1);
    volatile double sink = 0;
    for (int i = 0; i < r->spin; i++)
        sink += i;
    r->work[t] = sink;
    atomic_fetch_add(&r->runs[t], 1);
    r->who[t] = pthread_self();
    r->index[t] = thread;
}

/* The index of the cnni_split range of `threads` that holds task t of n. */
static int range_of(int64_t n, int threads, int64_t t)
{
    for (int i = 0; i < threads; i++) {
        int64_t lo, hi;
        cnni_split(n, threads, i, &lo, &hi);
        if (t >= lo && t < hi)
            return i;
    }
    return -1;
}

int main(void)
{
    for (int threads = 1; threads <= 5; threads++)
        for (int blocked = 0; blocked < 2; blocked++) {
            char name[100];
            snprintf(name, sizeof name, "%d threads, %s: every task once, thread indices%s", threads,
                     blocked ? "blocked" : "shared out", blocked ? ", each range of cnni_split on one thread, in order" : "");
            TEST(name)
            {
                cnni_pool *p;
                CHECK(cnni_pool_create(&p, threads) == CNN_OK);
                /* several rounds: the indices must not depend on the job before */
                for (int round = 0; round < 3; round++)
                    for (int64_t n = 0; n <= MAX_TASKS; n += n < 20 ? 1 : 37) {
                        record *r = calloc(1, sizeof *r);
                        /* about 20 microseconds a task in the rounds after the first */
                        r->spin = round ? 20000 : 0;
                        (blocked ? cnni_pool_run_blocked : cnni_pool_run)(p, note, r, n);
                        int once = 1, range = 1, same = 1, split = 1;
                        for (int64_t t = 0; t < MAX_TASKS; t++)
                            once &= atomic_load(&r->runs[t]) == (t < n);
                        for (int64_t t = 0; t < n; t++) {
                            range &= r->index[t] >= 0 && r->index[t] < threads;
                            /* the task before it in its range ran just before, on its thread */
                            if (blocked && t > 0 && range_of(n, threads, t - 1) == range_of(n, threads, t))
                                split &= r->index[t - 1] == r->index[t] && r->order[t - 1] < r->order[t];
                            for (int64_t u = 0; u < n; u++)
                                same &= (pthread_equal(r->who[t], r->who[u]) != 0) == (r->index[t] == r->index[u]);
                        }
                        CHECKF(once, "%lld tasks: a task ran not once", (long long)n);
                        CHECKF(range, "%lld tasks: a thread index outside [0, %d)", (long long)n, threads);
                        CHECKF(same, "%lld tasks: thread indices do not match the threads", (long long)n);
                        CHECKF(split, "%lld tasks: a range of cnni_split split between threads or out of order", (long long)n);
                        free(r);
                    }
                cnni_pool_destroy(p);
            }
        }
    TEST("with no pool, tasks run inline, in order, as thread 0")
    {
        record *r = calloc(1, sizeof *r);
        cnni_pool_run(NULL, note, r, 7);
        int ok = 1;
        for (int64_t t = 0; t < 7; t++)
            ok &= atomic_load(&r->runs[t]) == 1 && r->index[t] == 0 && pthread_equal(r->who[t], pthread_self());
        CHECK(ok);
        free(r);
    }
    TEST("width: 1 runs every job inline as thread 0; 2 of 3 runs tasks on threads 0 and 1 only; 4 is 3, 0 is 1")
    {
        cnni_pool *p;
        CHECK(cnni_pool_create(&p, 3) == CNN_OK);
        CHECK(cnni_pool_width(p) == 3);
        for (int w = 1; w <= 4; w++) {
            const int want = w > 3 ? 3 : w; /* clamped to the pool */
            cnni_pool_set_width(p, w);
            CHECK(cnni_pool_width(p) == want);
            for (int blocked = 0; blocked < 2; blocked++) {
                int seen[3] = {0, 0, 0}, ok = 1;
                /* rounds of slow tasks, so that each thread allowed gets some */
                for (int round = 0; round < 20; round++) {
                    record *r = calloc(1, sizeof *r);
                    r->spin = 20000;
                    (blocked ? cnni_pool_run_blocked : cnni_pool_run)(p, note, r, 60);
                    for (int64_t t = 0; t < 60; t++) {
                        ok &= atomic_load(&r->runs[t]) == 1 && r->index[t] >= 0 && r->index[t] < want;
                        if (r->index[t] >= 0 && r->index[t] < 3)
                            seen[r->index[t]] = 1;
                        if (want == 1)
                            ok &= pthread_equal(r->who[t], pthread_self()) != 0;
                    }
                    free(r);
                }
                CHECKF(ok, "width %d, %s: a task ran not once, or on a thread beyond the width", w,
                       blocked ? "blocked" : "shared out");
                /* a worker took part (on 2 cores, one of two may be kept off by the other) */
                CHECKF(seen[0] && (want < 2 || seen[1] || seen[2]), "width %d: threads seen %d %d %d", w, seen[0],
                       seen[1], seen[2]);
            }
        }
        cnni_pool_set_width(p, 0);
        CHECK(cnni_pool_width(p) == 1);
        cnni_pool_destroy(p);
    }
    return test_finish();
}
