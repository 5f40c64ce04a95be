/* Vectorised optimizer updates: the Adam / AdamW step of the usual
 * settings (not maximize, no amsgrad, Adam without weight decay) and SGD
 * with momentum after the first step (no weight decay, not Nesterov, not
 * maximize), with the same float operations in the same order as
 * optim.c's scalar loops, so every bit is the same. Each returns how many
 * of the n values it updated (a multiple of its vector width); optim.c
 * does the rest. */
#ifndef CNN_OPTIM_FAST_H
#define CNN_OPTIM_FAST_H

#include <stddef.h>

typedef struct cnni_adam_consts {
    float neg_step, bc2s, eps, b1, b2, ob1, ob2, wdecay;
    int adamw; /* the weight is first multiplied by wdecay */
} cnni_adam_consts;

size_t cnni_adam_avx512(float *p, const float *g, float *m, float *v, size_t n, const cnni_adam_consts *k);
size_t cnni_adam_avx2(float *p, const float *g, float *m, float *v, size_t n, const cnni_adam_consts *k);

size_t cnni_sgd_momentum_avx512(float *p, const float *g, float *buf, size_t n, float mom, float damp1, float neg_lr);
size_t cnni_sgd_momentum_avx2(float *p, const float *g, float *buf, size_t n, float mom, float damp1, float neg_lr);

#endif
