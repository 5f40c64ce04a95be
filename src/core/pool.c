/* Thread pool: workers sleep on a condition variable between jobs and spin
 * briefly first, so back-to-back layers do not pay a wake-up each. A
 * worker that sees a job while spinning takes it without the mutex: the
 * mutex and the condition variable are only for sleeping, so the caller
 * touches them only when a worker may be asleep.
 *
 * The caller waits for the work, never for a worker: a job is a number of
 * units (tasks, or for a blocked job one contiguous range per thread)
 * claimed one at a time by whichever thread comes, and the caller returns
 * once every unit has run. A worker that another process keeps off its
 * core thus costs a job nothing unless it holds a unit; before, every job
 * waited for every worker to look at it.
 *
 * Claims go through one word, the job's sequence number and its next
 * unit. Publishing a job first moves the word to the new sequence number
 * with no unit free, then writes the job, then frees unit 0: a claim (a
 * compare-and-swap from the word a thread read) therefore succeeds only in
 * the job whose fields that thread read after reading the word.
 *
 * The width (cnni_pool_set_width) lets fewer threads take part: at 1 every
 * job runs inline and the workers, seeing none, go to sleep; above, the
 * workers numbered from the width on claim nothing. */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define UNIT_BITS 40
#define UNIT_MASK ((UINT64_C(1) << UNIT_BITS) - 1)
#define NO_UNIT UNIT_MASK /* the job is being written */

struct cnni_pool {
    int n;                  /* threads in all, including the caller */
    atomic_int width;       /* threads that take part in jobs: 1 to n (the caller's setting) */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint_fast64_t generation; /* bumped for each job: what workers wait on */
    atomic_int sleepers;    /* workers in (or about to enter) the condition wait */
    atomic_int stop;
    atomic_uint_fast64_t claim;  /* sequence number << UNIT_BITS | next unit */
    atomic_int_fast64_t done;    /* units finished in the current job */
    /* The current job (written only while no unit can be claimed). */
    _Atomic(cnni_task_fn) fn;
    _Atomic(void *) ctx;
    atomic_int_fast64_t ntasks, units;
    atomic_int blocked;     /* units are the cnni_split ranges of ntasks, one per thread */
    uint64_t seq;           /* the caller's: the current job's sequence number */
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

/* Claims and runs units of the job in `claim` until none is left; the
 * thread runs them as `id`. */
static void run_units(cnni_pool *p, int id)
{
    if (id >= atomic_load_explicit(&p->width, memory_order_relaxed))
        return; /* a stale value costs nothing: any thread may run any unit */
    for (;;) {
        uint_fast64_t v = atomic_load(&p->claim);
        const int64_t u = (int64_t)(v & UNIT_MASK);
        if (u == (int64_t)NO_UNIT || u >= atomic_load(&p->units))
            return;
        if (!atomic_compare_exchange_weak(&p->claim, &v, v + 1))
            continue;
        /* Claimed: the fields read now are this job's, which stays until
         * the unit is counted done. The bound is read again: should the
         * sequence number have wrapped while this thread was off its core
         * between the two reads, v may have matched a later job's word
         * with every unit already taken, and the unit is not run. */
        if (u >= atomic_load_explicit(&p->units, memory_order_relaxed))
            return;
        const cnni_task_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
        const int64_t ntasks = atomic_load_explicit(&p->ntasks, memory_order_relaxed);
        if (atomic_load_explicit(&p->blocked, memory_order_relaxed)) {
            int64_t lo, hi;
            cnni_split(ntasks, p->n, u, &lo, &hi);
            for (int64_t t = lo; t < hi; t++)
                fn(ctx, t, id);
        } else {
            fn(ctx, u, id);
        }
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
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
        run_units(p, wa.id);
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
    atomic_init(&p->width, n);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->claim, NO_UNIT);
    atomic_init(&p->done, 0);
    atomic_init(&p->fn, NULL);
    atomic_init(&p->ctx, NULL);
    atomic_init(&p->ntasks, 0);
    atomic_init(&p->units, 0);
    atomic_init(&p->blocked, 0);
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

void cnni_pool_set_width(cnni_pool *p, int width)
{
    if (p)
        atomic_store_explicit(&p->width, width < 1 ? 1 : width > p->n ? p->n : width, memory_order_relaxed);
}

int cnni_pool_width(const cnni_pool *p)
{
    return p ? atomic_load_explicit(&((cnni_pool *)p)->width, memory_order_relaxed) : 1;
}

static void run_job(cnni_pool *p, cnni_task_fn fn, void *ctx, int64_t ntasks, int blocked)
{
    if (ntasks <= 0)
        return;
    if (!p || atomic_load_explicit(&p->width, memory_order_relaxed) == 1 || ntasks == 1 || ntasks >= (int64_t)NO_UNIT) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(ctx, t, 0);
        return;
    }
    /* Publish: no unit free under the new number, the job, then unit 0
     * (see the top of the file); the bump wakes the workers. */
    p->seq = (p->seq + 1) & ((UINT64_C(1) << (64 - UNIT_BITS)) - 1);
    atomic_store(&p->claim, p->seq << UNIT_BITS | NO_UNIT);
    const int64_t units = blocked ? (ntasks < p->n ? ntasks : p->n) : ntasks;
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&p->ntasks, ntasks, memory_order_relaxed);
    atomic_store_explicit(&p->blocked, blocked, memory_order_relaxed);
    atomic_store(&p->units, units);
    atomic_store(&p->done, 0);
    atomic_store(&p->claim, p->seq << UNIT_BITS);
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    run_units(p, 0);
    /* Units other threads still run. */
    int spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < units) {
        cpu_relax();
        if (++spins > 1000)
            sched_yield();
    }
}

void cnni_pool_run(cnni_pool *p, cnni_task_fn fn, void *ctx, int64_t ntasks) { run_job(p, fn, ctx, ntasks, 0); }

void cnni_pool_run_blocked(cnni_pool *p, cnni_task_fn fn, void *ctx, int64_t ntasks)
{
    run_job(p, fn, ctx, ntasks, 1);
}
