/* cnn_tensors: an ordered collection of named tensors with string metadata. */
#include "tensors.h"

#include <string.h>

cnn_status cnn_tensors_create(cnn_tensors **out)
{
    if (!out)
        return CNN_ERR_ARGUMENT;
    *out = cnni_calloc(1, sizeof(cnn_tensors));
    return *out ? CNN_OK : CNN_ERR_NOMEM;
}

void cnn_tensors_clear(cnn_tensors *ts)
{
    if (!ts)
        return;
    for (int i = 0; i < ts->n; i++) {
        cnni_free(ts->t[i].name);
        cnni_afree(ts->t[i].data);
    }
    for (int i = 0; i < ts->nmeta; i++) {
        cnni_free(ts->meta_key[i]);
        cnni_free(ts->meta_val[i]);
    }
    ts->n = 0;
    ts->nmeta = 0;
}

void cnn_tensors_destroy(cnn_tensors *ts)
{
    if (!ts)
        return;
    cnn_tensors_clear(ts);
    cnni_free(ts->t);
    cnni_free(ts->meta_key);
    cnni_free(ts->meta_val);
    cnni_free(ts);
}

const char *cnn_tensors_errmsg(const cnn_tensors *ts)
{
    if (!ts)
        return "no tensor collection (NULL handle)";
    return ts->err.msg;
}

int cnn_tensors_count(const cnn_tensors *ts) { return ts ? ts->n : 0; }

int cnn_tensors_find(const cnn_tensors *ts, const char *name)
{
    if (!ts || !name)
        return -1;
    for (int i = 0; i < ts->n; i++)
        if (strcmp(ts->t[i].name, name) == 0)
            return i;
    return -1;
}

cnn_status cnn_tensors_get(const cnn_tensors *ts, int index, cnn_tensor_info *info)
{
    if (!ts || !info || index < 0 || index >= ts->n)
        return CNN_ERR_ARGUMENT;
    const cnni_named *t = &ts->t[index];
    info->name = t->name;
    info->dtype = t->dtype;
    info->shape = t->shape;
    info->data = t->data;
    info->nbytes = t->nbytes;
    return CNN_OK;
}

cnn_status cnni_tensors_adopt(cnn_tensors *ts, char *name, cnn_dtype dtype, const cnn_shape *shape,
                              void *data, size_t nbytes)
{
    if (!cnni_grow((void **)&ts->t, &ts->cap, ts->n + 1, sizeof(cnni_named)))
        return cnni_oom(&ts->err);
    cnni_named *t = &ts->t[ts->n++];
    t->name = name;
    t->dtype = dtype;
    t->shape = *shape;
    t->data = data;
    t->nbytes = nbytes;
    return CNN_OK;
}

cnn_status cnn_tensors_add(cnn_tensors *ts, const char *name, cnn_dtype dtype,
                           const cnn_shape *shape, const void *data, void **data_out)
{
    if (!ts)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&ts->err);
    if (!name || !shape)
        return cnni_fail(&ts->err, CNN_ERR_ARGUMENT, "cnn_tensors_add: name and shape are required");
    if (cnn_tensors_find(ts, name) >= 0)
        return cnni_fail(&ts->err, CNN_ERR_ARGUMENT, "a tensor named '%s' is already present", name);
    size_t esize = cnni_dtype_size(dtype);
    if (!esize)
        return cnni_fail(&ts->err, CNN_ERR_ARGUMENT, "tensor '%s': unknown dtype %d", name, (int)dtype);
    int64_t numel;
    cnn_status st = cnni_shape_numel(shape, &numel, &ts->err, name);
    if (st)
        return st;
    size_t nbytes = (size_t)numel * esize;
    char *nm = cnni_strdup(name);
    void *buf = cnni_amalloc(nbytes);
    if (!nm || !buf) {
        cnni_free(nm);
        cnni_afree(buf);
        return cnni_oom(&ts->err);
    }
    if (data)
        memcpy(buf, data, nbytes);
    else
        memset(buf, 0, nbytes);
    st = cnni_tensors_adopt(ts, nm, dtype, shape, buf, nbytes);
    if (st) {
        cnni_free(nm);
        cnni_afree(buf);
        return st;
    }
    if (data_out)
        *data_out = buf;
    return CNN_OK;
}

cnn_status cnn_tensors_convert(cnn_tensors *ts, int index, cnn_dtype dtype)
{
    if (!ts || index < 0 || index >= ts->n)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&ts->err);
    cnni_named *t = &ts->t[index];
    if (t->dtype == dtype)
        return CNN_OK;
    int64_t n = cnni_numel(&t->shape);
    size_t nbytes = (size_t)n * cnni_dtype_size(dtype);
    int to_float = dtype == CNN_F32;
    int to_int = dtype == CNN_I64;
    int from_int = t->dtype == CNN_I64 || t->dtype == CNN_I32 || t->dtype == CNN_U8;
    if (!(to_float || (to_int && from_int)))
        return cnni_fail(&ts->err, CNN_ERR_ARGUMENT, "tensor '%s': cannot convert %s to %s",
                         t->name, cnn_dtype_name(t->dtype), cnn_dtype_name(dtype));
    void *buf = cnni_amalloc(nbytes);
    if (!buf)
        return cnni_oom(&ts->err);
    for (int64_t i = 0; i < n; i++) {
        double v = 0;
        int64_t iv = 0;
        switch (t->dtype) {
        case CNN_F32: v = ((float *)t->data)[i]; break;
        case CNN_F64: v = ((double *)t->data)[i]; break;
        case CNN_F16: v = cnni_f16_to_f32(((uint16_t *)t->data)[i]); break;
        case CNN_BF16: v = cnni_bf16_to_f32(((uint16_t *)t->data)[i]); break;
        case CNN_I64: iv = ((int64_t *)t->data)[i]; v = (double)iv; break;
        case CNN_I32: iv = ((int32_t *)t->data)[i]; v = (double)iv; break;
        case CNN_U8: iv = ((uint8_t *)t->data)[i]; v = (double)iv; break;
        }
        if (to_float)
            ((float *)buf)[i] = (float)v;
        else
            ((int64_t *)buf)[i] = iv;
    }
    cnni_afree(t->data);
    t->data = buf;
    t->nbytes = nbytes;
    t->dtype = dtype;
    return CNN_OK;
}

cnn_status cnn_tensors_set_meta(cnn_tensors *ts, const char *key, const char *value)
{
    if (!ts || !key || !value)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&ts->err);
    char *v = cnni_strdup(value);
    if (!v)
        return cnni_oom(&ts->err);
    for (int i = 0; i < ts->nmeta; i++) {
        if (strcmp(ts->meta_key[i], key) == 0) {
            cnni_free(ts->meta_val[i]);
            ts->meta_val[i] = v;
            return CNN_OK;
        }
    }
    char *k = cnni_strdup(key);
    int kc = ts->meta_cap;
    if (!k || !cnni_grow((void **)&ts->meta_key, &kc, ts->nmeta + 1, sizeof(char *)) ||
        !cnni_grow((void **)&ts->meta_val, &ts->meta_cap, ts->nmeta + 1, sizeof(char *))) {
        cnni_free(k);
        cnni_free(v);
        return cnni_oom(&ts->err);
    }
    ts->meta_key[ts->nmeta] = k;
    ts->meta_val[ts->nmeta] = v;
    ts->nmeta++;
    return CNN_OK;
}

const char *cnn_tensors_get_meta(const cnn_tensors *ts, const char *key)
{
    if (!ts || !key)
        return NULL;
    for (int i = 0; i < ts->nmeta; i++)
        if (strcmp(ts->meta_key[i], key) == 0)
            return ts->meta_val[i];
    return NULL;
}
