/* avx512 Adam / AdamW update (see optim_fast.h): per element, as optim.c's
 * loop: m = m b1 + (1 - b1) g; v = v b2 + ((1 - b2) g) g;
 * p = w + (-step m) / (sqrt(v) / bc2s + eps), w = p (times wdecay for AdamW). */
#include "../optim_fast.h"

#include <immintrin.h>

size_t cnni_adam_avx512(float *p, const float *g, float *m, float *v, size_t n, const cnni_adam_consts *k)
{
    const __m512 b1 = _mm512_set1_ps(k->b1), b2 = _mm512_set1_ps(k->b2), ob1 = _mm512_set1_ps(k->ob1),
                 ob2 = _mm512_set1_ps(k->ob2), bc2s = _mm512_set1_ps(k->bc2s), eps = _mm512_set1_ps(k->eps),
                 ns = _mm512_set1_ps(k->neg_step), wd = _mm512_set1_ps(k->wdecay);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 d = _mm512_loadu_ps(g + i);
        __m512 w = _mm512_loadu_ps(p + i);
        if (k->adamw)
            w = _mm512_mul_ps(w, wd);
        const __m512 mi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(m + i), b1), _mm512_mul_ps(ob1, d));
        const __m512 vi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(v + i), b2), _mm512_mul_ps(_mm512_mul_ps(ob2, d), d));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        const __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2s), eps);
        _mm512_storeu_ps(p + i, _mm512_add_ps(w, _mm512_div_ps(_mm512_mul_ps(ns, mi), den)));
    }
    return i;
}

/* SGD with momentum (no weight decay, dampening d, not Nesterov, not the
 * first step), as optim.c's loop: b = b mom + (1 - d) g; p = p + (-lr) b. */
size_t cnni_sgd_momentum_avx512(float *p, const float *g, float *buf, size_t n, float mom, float damp1, float neg_lr)
{
    const __m512 vm = _mm512_set1_ps(mom), vd = _mm512_set1_ps(damp1), vl = _mm512_set1_ps(neg_lr);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 b = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(buf + i), vm), _mm512_mul_ps(vd, _mm512_loadu_ps(g + i)));
        _mm512_storeu_ps(buf + i, b);
        _mm512_storeu_ps(p + i, _mm512_add_ps(_mm512_loadu_ps(p + i), _mm512_mul_ps(vl, b)));
    }
    return i;
}
