/* Thread pool: workers sleep on a condition variable between jobs and spin
 * briefly first, so back-to-back layers do not pay a wake-up each. A
 * worker that sees a job while spinning takes it without the mutex: the
 * mutex and the condition variable are only for sleeping, so the caller
 * touches them only when a worker may be asleep. */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

struct cnni_pool {
    int n;                  /* threads in all, including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint_fast64_t generation;
    atomic_int pending;     /* workers still running the current job */
    atomic_int sleepers;    /* workers in (or about to enter) the condition wait */
    atomic_int stop;
    cnni_task_fn fn;
    void *ctx;
    int64_t ntasks;
    int blocked;            /* thread i runs a contiguous range of tasks */
    atomic_int_fast64_t next; /* otherwise: the next task to take */
};

typedef struct {
    cnni_pool *p;
    int id;
} worker_arg;

#define SPIN_SECONDS 2e-3

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A hint that this is a spin loop (x86's pause: fewer wasted cycles). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_share(cnni_pool *p, int id)
{
    if (p->blocked) {
        int64_t lo, hi;
        cnni_split(p->ntasks, p->n, id, &lo, &hi);
        for (int64_t t = lo; t < hi; t++)
            p->fn(p->ctx, t, id);
        return;
    }
    for (;;) {
        const int64_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->ntasks)
            return;
        p->fn(p->ctx, t, id);
    }
}

static void *worker(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    cnni_free(arg);
    cnni_pool *p = wa.p;
    uint_fast64_t seen = 0;
    for (;;) {
        /* Spin before sleeping: the next job usually follows within
         * microseconds, and the serial work between training steps (the
         * batch, the loss, the optimizer) takes up to about a millisecond.
         * A sleeping worker costs the next job a wake-up (a system call for
         * the caller, tens of microseconds before the worker runs). */
        const double until = now_seconds() + SPIN_SECONDS;
        int spins = 0;
        while (atomic_load(&p->generation) == seen && !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
            cpu_relax();
            if ((++spins & 255) == 0) {
                if (now_seconds() > until)
                    break;
                sched_yield();
            }
        }
        if (atomic_load(&p->generation) == seen) {
            /* Sleep. Announcing it before the last look at the generation
             * (both sequentially consistent) means the caller, which bumps
             * the generation and then looks at the sleepers, either sees
             * this one and wakes it under the mutex, or bumped first. */
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (!atomic_load(&p->stop) && atomic_load(&p->generation) == seen)
                pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = atomic_load(&p->generation);
        run_share(p, wa.id);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
    }
}

cnn_status cnni_pool_create(cnni_pool **out, int n)
{
    *out = NULL;
    if (n < 1)
        n = 1;
    cnni_pool *p = cnni_calloc(1, sizeof(cnni_pool));
    if (!p)
        return CNN_ERR_NOMEM;
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->next, 0);
    if (n > 1) {
        p->threads = cnni_calloc((size_t)n, sizeof(pthread_t));
        if (!p->threads) {
            cnni_pool_destroy(p);
            return CNN_ERR_NOMEM;
        }
        for (int i = 1; i < n; i++) {
            worker_arg *wa = cnni_malloc(sizeof(worker_arg));
            if (wa) {
                wa->p = p;
                wa->id = i;
            }
            if (!wa || pthread_create(&p->threads[i], NULL, worker, wa) != 0) {
                cnni_free(wa);
                p->n = i; /* only threads 1..i-1 exist */
                cnni_pool_destroy(p);
                return CNN_ERR_NOMEM;
            }
        }
    }
    *out = p;
    return CNN_OK;
}

void cnni_pool_destroy(cnni_pool *p)
{
    if (!p)
        return;
    if (p->threads) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->stop, 1);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->n; i++)
            pthread_join(p->threads[i], NULL);
        cnni_free(p->threads);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    cnni_free(p);
}

int cnni_pool_threads(const cnni_pool *p) { return p ? p->n : 1; }

static void run_job(cnni_pool *p, cnni_task_fn fn, void *ctx, int64_t ntasks, int blocked)
{
    if (ntasks <= 0)
        return;
    if (!p || p->n == 1 || ntasks == 1) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(ctx, t, 0);
        return;
    }
    /* The job's fields are published by the generation's bump (release);
     * a worker reads them after seeing it (acquire). */
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = ntasks;
    p->blocked = blocked;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    run_share(p, 0);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        if (++spins > 1000)
            sched_yield();
    }
}

void cnni_pool_run(cnni_pool *p, cnni_task_fn fn, void *ctx, int64_t ntasks) { run_job(p, fn, ctx, ntasks, 0); }

void cnni_pool_run_blocked(cnni_pool *p, cnni_task_fn fn, void *ctx, int64_t ntasks)
{
    run_job(p, fn, ctx, ntasks, 1);
}
