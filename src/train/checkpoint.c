/* Checkpoints: weights and buffers under their state_dict names, optimiser
 * state under "optim.", the generators and progress under "cnn.", in one
 * safetensors file written atomically (temporary file, fsync, rename). */
#include "train_internal.h"
#include "../core/tensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_NAME "cnn-checkpoint"
#define FORMAT_VERSION "1"
/* Largest epoch or step count a checkpoint may hold. */
#define MAX_COUNT (INT64_C(1) << 53)

static cnn_status add_rng(cnn_tensors *ts, const char *name, const cnn_rng *r)
{
    cnn_shape s = {1, {4}};
    int64_t v[4];
    memcpy(v, r->s, sizeof v);
    return cnn_tensors_add(ts, name, CNN_I64, &s, v, NULL);
}

static int get_rng(const cnn_tensors *ts, const char *name, cnn_rng *r)
{
    int k = cnn_tensors_find(ts, name);
    cnn_tensor_info info;
    if (k < 0 || cnn_tensors_get(ts, k, &info) || info.dtype != CNN_I64 || info.shape.ndim != 1 ||
        info.shape.dims[0] != 4)
        return 0;
    memcpy(r->s, info.data, sizeof r->s);
    return 1;
}

cnn_status cnn_checkpoint_save(cnn_graph *g, cnn_optimizer *opt, const cnn_progress *p, const char *path)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&g->err);
    if (!path)
        return cnni_fail(&g->err, CNN_ERR_ARGUMENT, "cnn_checkpoint_save: NULL path");
    cnn_tensors *ts;
    if (cnn_tensors_create(&ts))
        return cnni_oom(&g->err);
    cnn_status st = cnn_graph_save_state(g, ts);
    char buf[64];
    if (!st && opt) {
        st = cnn_optimizer_save_state(opt, ts);
        if (st)
            cnni_fail(&g->err, st, "%s", cnn_optimizer_errmsg(opt));
    }
    if (!st)
        st = add_rng(ts, "cnn.rng.init", &g->init_rng);
    if (!st)
        st = add_rng(ts, "cnn.rng.run", &g->run_rng);
    if (!st && p) {
        st = add_rng(ts, "cnn.rng.data", &p->data_rng);
        snprintf(buf, sizeof buf, "%lld", (long long)p->epoch);
        if (!st)
            st = cnn_tensors_set_meta(ts, "cnn.epoch", buf);
        snprintf(buf, sizeof buf, "%lld", (long long)p->step);
        if (!st)
            st = cnn_tensors_set_meta(ts, "cnn.step", buf);
    }
    if (!st)
        st = cnn_tensors_set_meta(ts, "format", FORMAT_NAME);
    if (!st)
        st = cnn_tensors_set_meta(ts, "format_version", FORMAT_VERSION);
    if (!st)
        st = cnn_tensors_set_meta(ts, "cnn_version", CNN_VERSION_STRING);
    if (!st)
        st = cnn_tensors_save(ts, path);
    if (st && g->err.code == CNN_OK)
        cnni_fail(&g->err, st, "%s", cnn_tensors_errmsg(ts));
    cnn_tensors_destroy(ts);
    return st;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (!s)
        return 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end)
        return 0;
    *out = v;
    return 1;
}

cnn_status cnn_checkpoint_load(cnn_graph *g, cnn_optimizer *opt, cnn_progress *p, const char *path)
{
    if (!g)
        return CNN_ERR_ARGUMENT;
    cnn_err *e = &g->err;
    cnni_err_clear(e);
    if (!path)
        return cnni_fail(e, CNN_ERR_ARGUMENT, "cnn_checkpoint_load: NULL path");
    cnn_tensors *ts, *model;
    if (cnn_tensors_create(&ts))
        return cnni_oom(e);
    if (cnn_tensors_create(&model)) {
        cnn_tensors_destroy(ts);
        return cnni_oom(e);
    }
    cnn_status st = cnn_tensors_load(ts, path);
    if (st)
        cnni_fail(e, st, "%s", cnn_tensors_errmsg(ts));
    const char *fmt = st ? NULL : cnn_tensors_get_meta(ts, "format");
    const char *ver = st ? NULL : cnn_tensors_get_meta(ts, "format_version");
    if (!st && (!fmt || strcmp(fmt, FORMAT_NAME) != 0))
        st = cnni_fail(e, CNN_ERR_FORMAT, "%s: not a cnn checkpoint (format is '%s', expected '%s')",
                       path, fmt ? fmt : "missing", FORMAT_NAME);
    if (!st && (!ver || strcmp(ver, FORMAT_VERSION) != 0))
        st = cnni_fail(e, CNN_ERR_FORMAT, "%s: checkpoint format version '%s' (this cnn reads '%s')",
                       path, ver ? ver : "missing", FORMAT_VERSION);
    cnn_rng init_rng, run_rng, data_rng;
    int64_t epoch = 0, step = 0;
    if (!st && (!get_rng(ts, "cnn.rng.init", &init_rng) || !get_rng(ts, "cnn.rng.run", &run_rng)))
        st = cnni_fail(e, CNN_ERR_FORMAT, "%s: the checkpoint has no generator state", path);
    if (!st && p &&
        (!get_rng(ts, "cnn.rng.data", &data_rng) || !parse_i64(cnn_tensors_get_meta(ts, "cnn.epoch"), &epoch) ||
         !parse_i64(cnn_tensors_get_meta(ts, "cnn.step"), &step)))
        st = cnni_fail(e, CNN_ERR_FORMAT, "%s: the checkpoint has no progress (epoch, step)", path);
    /* A caller loops from the saved epoch and step and counts on from them:
     * negative or near-overflow counts would make it run (nearly) forever or
     * overflow its step arithmetic. */
    if (!st && p && (epoch < 0 || step < 0 || epoch > MAX_COUNT || step > MAX_COUNT))
        st = cnni_fail(e, CNN_ERR_FORMAT,
                       "%s: the checkpoint's progress is epoch %lld, step %lld (expected counts "
                       "from 0 to 2^53)",
                       path, (long long)epoch, (long long)step);
    for (int i = 0; !st && i < cnn_tensors_count(ts); i++) {
        cnn_tensor_info info;
        cnn_tensors_get(ts, i, &info);
        if (strncmp(info.name, "optim.", 6) == 0 || strncmp(info.name, "cnn.", 4) == 0)
            continue;
        /* One tensor more than the model has is enough for
         * cnn_graph_load_state to reject the set, naming a missing or
         * unexpected key; copying all of a hostile file's would take
         * quadratic time (each add looks the name up). */
        if (cnn_tensors_count(model) > cnn_graph_param_count(g))
            break;
        st = cnn_tensors_add(model, info.name, info.dtype, &info.shape, info.data, NULL);
        if (st)
            cnni_fail(e, st, "%s", cnn_tensors_errmsg(model));
    }
    /* Check the weights, then the optimiser state, before changing
     * anything: a checkpoint of another model is reported by its weights. */
    if (!st && (st = cnni_graph_check_state(g, model)) != CNN_OK)
        cnni_err_prefix(e, "%s", path);
    if (!st && opt && cnni_optimizer_read_state(opt, ts, 0))
        st = cnni_fail(e, opt->err.code, "%s: %s", path, cnn_optimizer_errmsg(opt));
    if (!st) {
        st = cnn_graph_load_state(g, model);
        if (st)
            cnni_err_prefix(e, "%s", path);
    }
    if (!st && opt) {
        st = cnn_optimizer_load_state(opt, ts);
        if (st)
            cnni_fail(e, st, "%s: %s", path, cnn_optimizer_errmsg(opt));
    }
    if (!st) {
        g->init_rng = init_rng;
        g->run_rng = run_rng;
        if (p) {
            p->epoch = epoch;
            p->step = step;
            p->data_rng = data_rng;
        }
    }
    cnn_tensors_destroy(ts);
    cnn_tensors_destroy(model);
    return st;
}
