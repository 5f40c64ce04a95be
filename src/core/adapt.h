/* Adaptive thread use: chooses, step by step, whether a training step runs
 * on all of the pool's threads ("wide") or on the caller alone, from the
 * measured time of the steps.
 *
 * Why: a second thread pays only when it gets a core of its own. On a
 * shared host the machine's two virtual cores at times share one physical
 * core; two threads then split the same arithmetic throughput, and the
 * waits between jobs make the step slower than one thread's (LeNet-5's
 * training step: 24,700 images/s on two threads in such a phase, 30,500
 * on one). Results never depend on the threads (see pool.h), so switching
 * between steps changes nothing but the time.
 *
 * How: the current mode's last few step times (seconds per sample) are kept.
 * Every `interval` steps, or at once when the current mode's median rises
 * well above its value at the last decision, the other mode runs for
 * CNNI_ADAPT_PROBE steps; if the faster of them beats the fastest of the
 * current mode's last 3 steps by the margin, the modes swap. A probe that
 * confirms the current mode doubles the interval (up to a maximum), a swap
 * resets it, so a steady machine pays about 1% in probes. A probe that finds
 * one thread slower than the wide mode by more than the jump and the margin
 * together sets a longer interval at once (CNNI_ADAPT_BACKSTOP): the wide steps would have to rise past
 * the jump before one thread could win, and that rise calls a probe anyway.
 * The rise that calls a probe at once is what a wide mode sees when the
 * second core goes; a single thread's steps do not slow when it comes back,
 * so that is found by the periodic probes, kept more frequent in that mode.
 *
 * Pure: the caller measures and reports; nothing here reads a clock. */
#ifndef CNN_ADAPT_H
#define CNN_ADAPT_H

#include <stdint.h>

#define CNNI_ADAPT_HISTORY 5
#define CNNI_ADAPT_PROBE 2
#define CNNI_ADAPT_COMPARE 3
#define CNNI_ADAPT_WARMUP 3
#define CNNI_ADAPT_MIN_INTERVAL 16
/* the interval's maxima: a probe of one thread from the wide mode costs
 * most (about 0.75 of a step each on two free cores), a probe of the wide
 * mode from one thread little, and it is what finds the second core back */
#define CNNI_ADAPT_MAX_INTERVAL 256
#define CNNI_ADAPT_MAX_INTERVAL_SINGLE 64
/* the wide mode's interval once one thread measured slower by more than
 * the jump and the margin together: the periodic probe is then only a
 * backstop (LeNet-5's epoch on two free cores took 8 of its 938 steps on
 * one thread for the probes every 256, about 1% of its time) */
#define CNNI_ADAPT_BACKSTOP 1024
/* the other mode must be this much faster to be taken */
#define CNNI_ADAPT_MARGIN 0.92
/* a rise of the current mode's median that calls a probe at once */
#define CNNI_ADAPT_JUMP 1.3

typedef struct cnni_adapt {
    int wide;               /* threads in the wide mode; 1: nothing to choose */
    int single;             /* the settled mode is one thread */
    int probing;            /* steps left in a probe of the other mode */
    int warmup;             /* steps still to ignore (plans, caches, a sleeping worker) */
    double probe_best;      /* the fastest step of the probe so far */
    double recent[CNNI_ADAPT_HISTORY]; /* the settled mode's last step times */
    int nrecent, next;
    double reference;       /* the settled mode's median at the last decision (0: none yet) */
    int64_t since;          /* settled steps since the last decision */
    int64_t interval;       /* settled steps between probes */
    int64_t steps[2];       /* steps run wide, and on one thread */
    int64_t switches;       /* swaps of the settled mode */
} cnni_adapt;

/* Starts in the wide mode with `threads` threads (1: always one). */
void cnni_adapt_init(cnni_adapt *a, int threads);
/* The threads for the next step. */
int cnni_adapt_threads(const cnni_adapt *a);
/* Reports the step just run (on cnni_adapt_threads' count): its time per
 * sample, in seconds. */
void cnni_adapt_record(cnni_adapt *a, double seconds);

#endif
