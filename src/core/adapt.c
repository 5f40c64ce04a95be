/* Adaptive thread use; see adapt.h. */
#include "adapt.h"

#include <string.h>

void cnni_adapt_init(cnni_adapt *a, int threads)
{
    memset(a, 0, sizeof *a);
    a->wide = threads < 1 ? 1 : threads;
    a->warmup = CNNI_ADAPT_WARMUP;
    a->interval = CNNI_ADAPT_MIN_INTERVAL;
}

/* Whether the step about to run (or just run) is on one thread. */
static int running_single(const cnni_adapt *a) { return a->probing ? !a->single : a->single; }

int cnni_adapt_threads(const cnni_adapt *a) { return a->wide == 1 || running_single(a) ? 1 : a->wide; }

static double median(const cnni_adapt *a)
{
    double v[CNNI_ADAPT_HISTORY];
    const int n = a->nrecent;
    memcpy(v, a->recent, sizeof(double) * (size_t)n);
    for (int i = 1; i < n; i++) /* insertion sort: at most 5 values */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            const double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The fastest of the settled mode's last CNNI_ADAPT_COMPARE steps (after a
 * rise, which takes 3 slow steps of the last 5 to be seen, these are the
 * slow ones). */
static double fastest(const cnni_adapt *a)
{
    const int n = a->nrecent < CNNI_ADAPT_COMPARE ? a->nrecent : CNNI_ADAPT_COMPARE;
    double m = a->recent[(a->next + CNNI_ADAPT_HISTORY - 1) % CNNI_ADAPT_HISTORY];
    for (int i = 2; i <= n; i++) {
        const double v = a->recent[(a->next + CNNI_ADAPT_HISTORY - i) % CNNI_ADAPT_HISTORY];
        m = v < m ? v : m;
    }
    return m;
}

static void push(cnni_adapt *a, double t)
{
    a->recent[a->next] = t;
    a->next = (a->next + 1) % CNNI_ADAPT_HISTORY;
    if (a->nrecent < CNNI_ADAPT_HISTORY)
        a->nrecent++;
}

/* The fastest probe step against the fastest recent settled one: like
 * against like (a median would favour the probe's minimum), so noise alone
 * does not swap modes within the margin. */
static void decide(cnni_adapt *a)
{
    const double cur = fastest(a);
    if (a->probe_best < CNNI_ADAPT_MARGIN * cur) {
        /* the other mode is faster: it becomes the settled one, its
         * history starting from the probe */
        a->single = !a->single;
        a->nrecent = a->next = 0;
        push(a, a->probe_best);
        a->reference = a->probe_best;
        a->interval = CNNI_ADAPT_MIN_INTERVAL;
        a->switches++;
    } else {
        const int64_t most = a->single ? CNNI_ADAPT_MAX_INTERVAL_SINGLE : CNNI_ADAPT_MAX_INTERVAL;
        a->reference = median(a);
        a->interval = a->interval * 2 > most ? most : a->interval * 2;
        /* One thread measured so much slower that the wide steps must rise
         * past the jump before it could win, and a rise past the jump
         * calls a probe at once: the periodic ones are only a backstop. */
        if (!a->single && a->probe_best > CNNI_ADAPT_JUMP * a->reference / CNNI_ADAPT_MARGIN)
            a->interval = CNNI_ADAPT_BACKSTOP;
    }
    a->since = 0;
}

void cnni_adapt_record(cnni_adapt *a, double seconds)
{
    if (a->wide == 1)
        return;
    a->steps[running_single(a)]++;
    if (a->warmup > 0) {
        a->warmup--;
        return;
    }
    if (!(seconds >= 0)) /* NaN from a broken clock: ignored */
        return;
    if (a->probing) {
        if (a->probing == CNNI_ADAPT_PROBE || seconds < a->probe_best)
            a->probe_best = seconds;
        if (--a->probing == 0)
            decide(a);
        return;
    }
    push(a, seconds);
    a->since++;
    if (a->nrecent < 3)
        return;
    const double m = median(a);
    if (a->reference == 0)
        a->reference = m;
    if (a->since >= a->interval || m > CNNI_ADAPT_JUMP * a->reference)
        a->probing = CNNI_ADAPT_PROBE;
}
