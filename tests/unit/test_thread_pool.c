/* The thread pool: every task runs exactly once, for any thread and task
 * count; round-robin jobs put task t on thread t % threads, blocked jobs
 * give each thread one contiguous range, in order, of nearly equal size,
 * cnni_split_part finds a task's range, and dynamic jobs name each task's
 * thread by an index below the thread count, the same index for the same
 * thread. */
#include "test.h"
#include "core/pool.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_TASKS 300

typedef struct {
    atomic_int runs[MAX_TASKS];
    pthread_t who[MAX_TASKS];
} record;

static void note(void *ctx, int64_t t)
{
    record *r = ctx;
    atomic_fetch_add(&r->runs[t], 1);
    r->who[t] = pthread_self();
}

typedef struct {
    atomic_int runs[MAX_TASKS];
    pthread_t who[MAX_TASKS];
    int index[MAX_TASKS];
    double work[MAX_TASKS];
} dyn_record;

static void note_dynamic(void *ctx, int64_t t, int thread)
{
    dyn_record *r = ctx;
    /* about 20 microseconds of work, so that every thread takes tasks */
    volatile double sink = 0;
    for (int i = 0; i < 20000; i++)
        sink += i;
    r->work[t] = sink;
    atomic_fetch_add(&r->runs[t], 1);
    r->who[t] = pthread_self();
    r->index[t] = thread;
}

int main(void)
{
    for (int threads = 1; threads <= 5; threads++) {
        char name[80];
        snprintf(name, sizeof name, "%d threads: every task once, the promised split", threads);
        TEST(name)
        {
            cnni_pool *p;
            CHECK(cnni_pool_create(&p, threads) == CNN_OK);
            for (int blocked = 0; blocked < 2; blocked++)
                for (int64_t n = 0; n <= MAX_TASKS; n += n < 20 ? 1 : 37) {
                    record *r = calloc(1, sizeof *r);
                    (blocked ? cnni_pool_run_blocked : cnni_pool_run)(p, note, r, n);
                    int once = 1, split = 1;
                    for (int64_t t = 0; t < n; t++)
                        once &= atomic_load(&r->runs[t]) == 1;
                    for (int64_t t = 0; t < MAX_TASKS && t >= n; t++)
                        once &= atomic_load(&r->runs[t]) == 0;
                    /* tasks on one thread: for round-robin t = u (mod threads);
                     * blocked, the ranges of cnni_split */
                    for (int64_t t = 0; t < n; t++)
                        for (int64_t u = 0; u < n; u++) {
                            int same = pthread_equal(r->who[t], r->who[u]) != 0;
                            int want;
                            if (!blocked || n == 1 || threads == 1) {
                                want = n == 1 || threads == 1 || (t - u) % threads == 0;
                            } else {
                                int64_t lo, hi, it = -1, iu = -1;
                                for (int i = 0; i < threads; i++) {
                                    cnni_split(n, threads, i, &lo, &hi);
                                    if (t >= lo && t < hi)
                                        it = i;
                                    if (u >= lo && u < hi)
                                        iu = i;
                                }
                                want = it == iu;
                            }
                            split &= same == want;
                        }
                    CHECKF(once, "%s, %lld tasks: a task ran not once", blocked ? "blocked" : "round-robin",
                           (long long)n);
                    CHECKF(split, "%s, %lld tasks: not the promised threads", blocked ? "blocked" : "round-robin",
                           (long long)n);
                    free(r);
                }
            cnni_pool_destroy(p);
        }
    }
    for (int threads = 1; threads <= 5; threads++) {
        char name[80];
        snprintf(name, sizeof name, "%d threads, dynamic: every task once, thread indices", threads);
        TEST(name)
        {
            cnni_pool *p;
            CHECK(cnni_pool_create(&p, threads) == CNN_OK);
            /* several rounds: the indices must not depend on which job came before */
            for (int round = 0; round < 3; round++)
                for (int64_t n = 0; n <= MAX_TASKS; n += n < 20 ? 1 : 37) {
                    dyn_record *r = calloc(1, sizeof *r);
                    cnni_pool_run_dynamic(p, note_dynamic, r, n);
                    int once = 1, range = 1, same = 1;
                    for (int64_t t = 0; t < MAX_TASKS; t++)
                        once &= atomic_load(&r->runs[t]) == (t < n);
                    for (int64_t t = 0; t < n; t++) {
                        range &= r->index[t] >= 0 && r->index[t] < threads;
                        for (int64_t u = 0; u < n; u++)
                            same &= (pthread_equal(r->who[t], r->who[u]) != 0) == (r->index[t] == r->index[u]);
                    }
                    CHECKF(once, "dynamic, %lld tasks: a task ran not once", (long long)n);
                    CHECKF(range, "dynamic, %lld tasks: a thread index outside [0, %d)", (long long)n, threads);
                    CHECKF(same, "dynamic, %lld tasks: thread indices do not match the threads", (long long)n);
                    free(r);
                }
            cnni_pool_destroy(p);
        }
    }
    TEST("cnni_split_part names the range of cnni_split that holds each task")
    {
        int ok = 1;
        for (int64_t n = 1; n <= 60; n++)
            for (int64_t parts = 1; parts <= 7; parts++)
                for (int64_t i = 0; i < parts; i++) {
                    int64_t lo, hi;
                    cnni_split(n, parts, i, &lo, &hi);
                    for (int64_t t = lo; t < hi; t++)
                        ok &= cnni_split_part(n, parts, t) == i;
                }
        CHECK(ok);
    }
    return test_finish();
}
