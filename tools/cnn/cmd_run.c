/* cnn run: one forward (and optionally backward) pass of a model on tensors
 * read from safetensors files; the contract PyTorch parity tests use. */
#include "tool.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cmd_run_help(FILE *out)
{
    fprintf(out,
            "usage: cnn run MODEL --input X.safetensors --output Y.safetensors\n"
            "               [--weights W.safetensors] [--backward GY.safetensors --grads G.safetensors]\n"
            "               [--train] [--state-out S.safetensors] [--seed N] [--threads N]\n\n"
            "Runs MODEL (a model file) once on the tensors of X and writes the result.\n\n"
            "  --input X       tensor 'input' (batch dimension included); a model whose first\n"
            "                  module takes more inputs reads them by name too ('indices')\n"
            "  --output Y      receives 'output' (and 'indices', int64, when the last module\n"
            "                  returns indices)\n"
            "  --weights W     parameters and buffers under their state_dict names; without it\n"
            "                  they get PyTorch's default initialisation from --seed\n"
            "  --backward GY   gradient of the output as tensor 'output'; requires --grads\n"
            "  --grads G       receives the gradient of the input as 'input' and of every\n"
            "                  parameter under its state_dict name\n"
            "  --train         training mode (batch statistics, dropout); eval mode otherwise\n"
            "  --state-out S   all parameters and buffers after the run (running statistics)\n"
            "  --seed N        seed for initialisation and random layers (default 0)\n"
            "  --threads N     threads to use (default: all cores)\n\n"
            "Files are written under a temporary name and renamed when complete: on any error\n"
            "no output file is left behind.\n");
}

typedef struct {
    const char *model, *input, *output, *weights, *backward, *grads, *state_out;
    int train;
    unsigned long long seed;
    long long threads;
} run_opts;

static int parse(int argc, char **argv, run_opts *o)
{
    const char *S = "run";
    memset(o, 0, sizeof *o);
    o->threads = tool_default_threads();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--input") == 0)
            dst = &o->input;
        else if (strcmp(a, "--output") == 0)
            dst = &o->output;
        else if (strcmp(a, "--weights") == 0)
            dst = &o->weights;
        else if (strcmp(a, "--backward") == 0)
            dst = &o->backward;
        else if (strcmp(a, "--grads") == 0)
            dst = &o->grads;
        else if (strcmp(a, "--state-out") == 0)
            dst = &o->state_out;
        if (dst) {
            if (!(*dst = tool_optarg(S, argc, argv, &i)))
                return 0;
        } else if (strcmp(a, "--train") == 0) {
            o->train = 1;
        } else if (strcmp(a, "--seed") == 0) {
            const char *v = tool_optarg(S, argc, argv, &i);
            if (!v || !tool_parse_u64(S, "--seed", v, &o->seed))
                return 0;
        } else if (strcmp(a, "--threads") == 0) {
            const char *v = tool_optarg(S, argc, argv, &i);
            if (!v || !tool_parse_i64(S, "--threads", v, 1, 256, &o->threads))
                return 0;
        } else if (a[0] == '-' && a[1]) {
            tool_error(S, "unknown option '%s' (see cnn run --help)", a);
            return 0;
        } else if (!o->model) {
            o->model = a;
        } else {
            tool_error(S, "unexpected argument '%s' (the model is '%s')", a, o->model);
            return 0;
        }
    }
    if (!o->model || !o->input || !o->output) {
        tool_error(S, "MODEL, --input and --output are required (see cnn run --help)");
        return 0;
    }
    if (!!o->backward != !!o->grads) {
        tool_error(S, "--backward and --grads go together");
        return 0;
    }
    return 1;
}

/* Files this run wrote, removed again if a later step fails. */
typedef struct {
    const char *paths[3];
    int n;
} written_files;

static void undo(written_files *w)
{
    for (int i = 0; i < w->n; i++)
        unlink(w->paths[i]);
}

static int save(cnn_tensors *ts, const char *path, written_files *w)
{
    if (cnn_tensors_save(ts, path) != CNN_OK) {
        tool_error("run", "%s", cnn_tensors_errmsg(ts));
        undo(w);
        return 0;
    }
    w->paths[w->n++] = path;
    return 1;
}

int cmd_run(int argc, char **argv)
{
    const char *S = "run";
    run_opts o;
    if (!parse(argc, argv, &o))
        return EXIT_USAGE;
    int rc = EXIT_FAIL;
    cnn_graph *g = NULL;
    cnn_tensors *x = NULL, *w = NULL, *gy = NULL, *out = NULL, *grads = NULL, *state = NULL;
    if (cnn_graph_create(&g) || cnn_tensors_create(&x) || cnn_tensors_create(&w) ||
        cnn_tensors_create(&gy) || cnn_tensors_create(&out) || cnn_tensors_create(&grads) ||
        cnn_tensors_create(&state)) {
        tool_error(S, "out of memory");
        goto done;
    }
    if (cnn_graph_load(g, o.model)) {
        tool_error(S, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    if (cnn_graph_set_threads(g, (int)o.threads)) {
        tool_error(S, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    cnn_graph_reset_parameters(g, o.seed);
    cnn_graph_set_seed(g, o.seed);
    if (o.weights) {
        if (cnn_tensors_load(w, o.weights)) {
            tool_error(S, "%s", cnn_tensors_errmsg(w));
            goto done;
        }
        if (cnn_graph_load_state(g, w)) {
            tool_error(S, "%s: %s", o.weights, cnn_graph_errmsg(g));
            goto done;
        }
    }
    if (cnn_tensors_load(x, o.input)) {
        tool_error(S, "%s", cnn_tensors_errmsg(x));
        goto done;
    }
    int nin = cnn_graph_input_count(g);
    cnn_shape shapes[8];
    cnn_dtype dtypes[8];
    int idx[8];
    if (nin > 8) {
        tool_error(S, "%s: the model has %d inputs; cnn run supports up to 8", o.model, nin);
        goto done;
    }
    char in_list[512];
    size_t used = 0;
    in_list[0] = 0;
    for (int i = 0; i < nin && used < sizeof in_list; i++)
        used += (size_t)snprintf(in_list + used, sizeof in_list - used, "%s'%s'", i ? ", " : "",
                                 cnn_graph_input_name(g, i));
    for (int i = 0; i < nin; i++) {
        const char *name = cnn_graph_input_name(g, i);
        idx[i] = cnn_tensors_find(x, name);
        if (idx[i] < 0) {
            tool_error(S, "%s: no tensor named '%s' (the model's input%s: %s)", o.input, name,
                       nin > 1 ? "s are" : " is", in_list);
            goto done;
        }
        cnn_tensor_info info;
        cnn_tensors_get(x, idx[i], &info);
        /* Integer tensors (indices, class targets) must be int64, as PyTorch
         * requires; floating tensors become float32. */
        int is_int = info.dtype == CNN_I64 || info.dtype == CNN_I32 || info.dtype == CNN_U8;
        cnn_dtype want = is_int ? CNN_I64 : CNN_F32;
        if (is_int && info.dtype != CNN_I64) {
            tool_error(S, "%s: tensor '%s' is %s; integer inputs (indices, class targets) must be I64",
                       o.input, name, cnn_dtype_name(info.dtype));
            goto done;
        }
        if (info.dtype != want && cnn_tensors_convert(x, idx[i], want)) {
            tool_error(S, "%s: tensor '%s' is %s, expected %s", o.input, name,
                       cnn_dtype_name(info.dtype), cnn_dtype_name(want));
            goto done;
        }
        cnn_tensors_get(x, idx[i], &info);
        shapes[i] = info.shape;
        dtypes[i] = want;
    }
    for (int k = 0; k < cnn_tensors_count(x); k++) {
        cnn_tensor_info info;
        cnn_tensors_get(x, k, &info);
        int is_input = 0;
        for (int i = 0; i < nin; i++)
            is_input |= idx[i] == k;
        if (!is_input) {
            tool_error(S, "%s: unexpected tensor '%s' (the model's input%s: %s)", o.input,
                       info.name, nin > 1 ? "s are" : " is", in_list);
            goto done;
        }
    }
    if (o.backward && cnn_tensors_load(gy, o.backward)) {
        tool_error(S, "%s", cnn_tensors_errmsg(gy));
        goto done;
    }
    unsigned flags = o.backward ? (CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD) : 0;
    if (cnn_graph_plan(g, nin, shapes, dtypes, flags)) {
        tool_error(S, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    for (int i = 0; i < nin; i++) {
        cnn_tensor_info info;
        cnn_tensors_get(x, idx[i], &info);
        if (info.nbytes)
            memcpy(cnn_graph_input_data(g, i), info.data, info.nbytes);
    }
    if (cnn_graph_forward(g, o.train)) {
        tool_error(S, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    for (int i = 0; i < cnn_graph_output_count(g); i++) {
        void *data;
        cnn_shape shape;
        cnn_dtype dt;
        cnn_graph_output(g, i, &data, &shape, &dt);
        if (cnn_tensors_add(out, cnn_graph_output_name(g, i), dt, &shape, data, NULL)) {
            tool_error(S, "%s", cnn_tensors_errmsg(out));
            goto done;
        }
    }
    if (o.backward) {
        /* GY holds the gradient of every float output, under the output's name. */
        int any = 0;
        for (int i = 0; i < cnn_graph_output_count(g); i++) {
            const char *oname = cnn_graph_output_name(g, i);
            cnn_shape oshape;
            cnn_dtype odt;
            cnn_graph_output(g, i, NULL, &oshape, &odt);
            if (odt != CNN_F32)
                continue;
            int k = cnn_tensors_find(gy, oname);
            if (k < 0) {
                tool_error(S, "%s: no tensor named '%s' (the gradient of the model's output '%s')",
                           o.backward, oname, oname);
                goto done;
            }
            if (cnn_tensors_convert(gy, k, CNN_F32)) {
                tool_error(S, "%s: %s", o.backward, cnn_tensors_errmsg(gy));
                goto done;
            }
            cnn_tensor_info info;
            cnn_tensors_get(gy, k, &info);
            int same = info.shape.ndim == oshape.ndim;
            for (int d = 0; same && d < oshape.ndim; d++)
                same = info.shape.dims[d] == oshape.dims[d];
            if (!same) {
                char a[160], b[160];
                tool_error(S, "%s: tensor '%s' has shape %s but the model's output has shape %s",
                           o.backward, oname, cnn_shape_format(&info.shape, a, sizeof a),
                           cnn_shape_format(&oshape, b, sizeof b));
                goto done;
            }
            float *dst = cnn_graph_output_grad(g, i);
            if (dst) {
                if (info.nbytes)
                    memcpy(dst, info.data, info.nbytes);
                any = 1;
            }
        }
        if (!any) {
            tool_error(S, "the model's outputs do not depend on anything with a gradient");
            goto done;
        }
        if (cnn_graph_backward(g)) {
            tool_error(S, "%s", cnn_graph_errmsg(g));
            goto done;
        }
        for (int i = 0; i < nin; i++) {
            const float *gx = cnn_graph_input_grad(g, i);
            if (!gx)
                continue;
            if (cnn_tensors_add(grads, cnn_graph_input_name(g, i), CNN_F32, &shapes[i], gx, NULL)) {
                tool_error(S, "%s", cnn_tensors_errmsg(grads));
                goto done;
            }
        }
        if (cnn_graph_save_grads(g, grads)) {
            tool_error(S, "%s", cnn_graph_errmsg(g));
            goto done;
        }
    }
    if (o.state_out && cnn_graph_save_state(g, state)) {
        tool_error(S, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    written_files wf = {{0}, 0};
    if (!save(out, o.output, &wf))
        goto done;
    if (o.grads && !save(grads, o.grads, &wf))
        goto done;
    if (o.state_out && !save(state, o.state_out, &wf))
        goto done;
    rc = EXIT_OK;
done:
    cnn_tensors_destroy(x);
    cnn_tensors_destroy(w);
    cnn_tensors_destroy(gy);
    cnn_tensors_destroy(out);
    cnn_tensors_destroy(grads);
    cnn_tensors_destroy(state);
    cnn_graph_destroy(g);
    return rc;
}
