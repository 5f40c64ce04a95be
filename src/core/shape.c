/* Shapes, element types and overflow-checked sizes. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

size_t cnni_dtype_size(cnn_dtype t)
{
    switch (t) {
    case CNN_F32: return 4;
    case CNN_I64: return 8;
    case CNN_F64: return 8;
    case CNN_I32: return 4;
    case CNN_U8: return 1;
    case CNN_F16: return 2;
    case CNN_BF16: return 2;
    }
    return 0;
}

size_t cnn_dtype_size(cnn_dtype t) { return cnni_dtype_size(t); }

const char *cnn_dtype_name(cnn_dtype t)
{
    switch (t) {
    case CNN_F32: return "F32";
    case CNN_I64: return "I64";
    case CNN_F64: return "F64";
    case CNN_I32: return "I32";
    case CNN_U8: return "U8";
    case CNN_F16: return "F16";
    case CNN_BF16: return "BF16";
    }
    return "?";
}

cnn_status cnni_shape_numel(const cnn_shape *s, int64_t *numel, cnn_err *e, const char *what)
{
    char buf[256];
    if (s->ndim < 0 || s->ndim > CNN_MAX_DIMS)
        return cnni_fail(e, CNN_ERR_SHAPE, "%s has %d dimensions (at most %d are supported)", what,
                         s->ndim, CNN_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dims[i] < 0)
            return cnni_fail(e, CNN_ERR_SHAPE, "%s has a negative size in shape %s", what,
                             cnni_shape_str(s, buf, sizeof buf));
        if (!cnni_mul_ok(n, s->dims[i], &n) || n > CNNI_MAX_NUMEL)
            return cnni_fail(e, CNN_ERR_OVERFLOW,
                             "%s of shape %s has more elements than supported (2^40)", what,
                             cnni_shape_str(s, buf, sizeof buf));
    }
    *numel = n;
    return CNN_OK;
}

int64_t cnni_numel(const cnn_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dims[i];
    return n;
}

char *cnni_shape_str(const cnn_shape *s, char *buf, size_t n)
{
    size_t used = 0;
    if (n == 0)
        return buf;
    buf[0] = 0;
    used += (size_t)snprintf(buf + used, n - used, "[");
    for (int i = 0; i < s->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)s->dims[i]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
    return buf;
}

char *cnn_shape_format(const cnn_shape *s, char *buf, size_t n) { return cnni_shape_str(s, buf, n); }

int cnni_shape_eq(const cnn_shape *a, const cnn_shape *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

cnn_shape cnni_shape_make(int ndim, const int64_t *dims)
{
    cnn_shape s;
    memset(&s, 0, sizeof s);
    s.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        s.dims[i] = dims[i];
    return s;
}

float cnni_f16_to_f32(uint16_t h)
{
    int exp = (h >> 10) & 0x1F;
    uint32_t mant = h & 0x3FF;
    float f;
    if (exp == 0)
        f = ldexpf((float)mant, -24);
    else if (exp == 31)
        f = mant ? NAN : INFINITY;
    else
        f = ldexpf((float)(mant | 0x400), exp - 25);
    return (h >> 15) ? -f : f;
}

float cnni_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
