/* cnn train: the training loop: data, loss, optimiser, schedule, progress,
 * metrics, evaluation, checkpoints, Ctrl-C, and the saved model. */
#include "tool.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void cmd_train_help(FILE *out)
{
    fprintf(out,
            "usage: cnn train MODEL --data DATA [options]\n\n"
            "Trains MODEL on DATA and reports loss and accuracy after every epoch.\n\n"
            "data:\n"
            "  --data DATA          training data: a folder of MNIST-style IDX files, a CIFAR-10\n"
            "                       binary folder, a safetensors file with x and y, a folder of\n"
            "                       class sub-folders of PNG/JPEG images, or 'fashion-mnist'\n"
            "  --test DATA          test data (default: the test split next to DATA, if any)\n"
            "  --normalize M,S      (x - M) / S after scaling pixels to [0, 1]; per channel:\n"
            "                       M1,M2,M3,S1,S2,S3\n"
            "  --augment crop:P,flip  random crop after zero padding by P, random horizontal flip\n"
            "  --no-shuffle         batches in file order (the last partial batch is kept)\n"
            "  --batch-size B       samples per step (default 64)\n"
            "model and optimisation:\n"
            "  --weights W          initial weights (state_dict names); default: PyTorch's\n"
            "                       initialisation from --seed\n"
            "  --epochs E           passes over the data (default 10)\n"
            "  --loss L             cross_entropy (default for class labels), mse (default for\n"
            "                       float targets), l1, smooth_l1, nll, bce, bce_with_logits, or a\n"
            "                       call such as \"CrossEntropyLoss(label_smoothing=0.1)\"\n"
            "  --optimizer O        sgd (default), adam, adamw, rmsprop, or a call such as\n"
            "                       \"Adam(lr=1e-3, betas=(0.9, 0.99))\"\n"
            "  --lr LR              learning rate (default: 0.01 for sgd, 0.001 for adam/adamw,\n"
            "                       0.01 for rmsprop)\n"
            "  --momentum M, --nesterov, --weight-decay WD   SGD/RMSprop/Adam options\n"
            "  --scheduler S        step:SIZE[:GAMMA], multistep:E1+E2[:GAMMA], exp:GAMMA,\n"
            "                       cosine (T_max = epochs), or a call such as\n"
            "                       \"CosineAnnealingLR(T_max=30)\"; stepped once per epoch\n"
            "  --warmup N           linear warm-up over the first N epochs (LinearLR), then S\n"
            "  --clip-grad-norm X   clip the gradients' total 2-norm to X every step\n"
            "  --seed S             initialisation, data order, augmentation, dropout (default 0)\n"
            "  --threads N          threads (default: all cores); a step runs on one when the\n"
            "                       recent steps measured one faster (a shared host), unless\n"
            "  --fixed-threads      every step on N threads\n"
            "  --isa I              auto (default: the widest this CPU has), avx512, avx2 or\n"
            "                       generic: the kernels' instruction set\n"
            "  --detect-anomaly     check every layer's outputs and gradients for NaN/Inf and\n"
            "                       stop at the first layer that produces one (slower)\n"
            "output:\n"
            "  --save OUT           final weights as safetensors (loads into PyTorch)\n"
            "  --checkpoint FILE    checkpoint after every epoch and on Ctrl-C\n"
            "  --resume FILE        continue from a checkpoint, exactly as if never stopped\n"
            "  --metrics FILE       one JSON line per epoch (see cnn plot)\n"
            "  --quiet              no progress bar or per-epoch lines\n\n"
            "Progress goes to stderr: a live bar on a terminal, plain lines otherwise. Ctrl-C\n"
            "stops after the current step, saves the checkpoint (with --checkpoint) and exits 130.\n");
}

typedef struct {
    const char *model, *data, *test, *weights, *save, *checkpoint, *resume, *metrics;
    const char *loss, *optimizer, *scheduler, *normalize, *augment, *isa;
    long long epochs, batch, threads, warmup;
    double lr, momentum, weight_decay, clip;
    const char *lr_s, *momentum_s, *wd_s; /* as typed, for the optimizer's call */
    int lr_set, momentum_set, wd_set, nesterov, no_shuffle, quiet, detect_anomaly, fixed_threads;
    unsigned long long seed;
} train_opts;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int parse_args(int argc, char **argv, train_opts *o)
{
    const char *S = "train";
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->batch = 64;
    o->threads = tool_default_threads();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **sv = NULL;
        long long *iv = NULL;
        long long lo = 1, hi = 1 << 30;
        double *dv = NULL;
        int *flag = NULL;
        if (!strcmp(a, "--data")) sv = &o->data;
        else if (!strcmp(a, "--test")) sv = &o->test;
        else if (!strcmp(a, "--weights")) sv = &o->weights;
        else if (!strcmp(a, "--save")) sv = &o->save;
        else if (!strcmp(a, "--checkpoint")) sv = &o->checkpoint;
        else if (!strcmp(a, "--resume")) sv = &o->resume;
        else if (!strcmp(a, "--metrics")) sv = &o->metrics;
        else if (!strcmp(a, "--loss")) sv = &o->loss;
        else if (!strcmp(a, "--optimizer")) sv = &o->optimizer;
        else if (!strcmp(a, "--scheduler")) sv = &o->scheduler;
        else if (!strcmp(a, "--normalize")) sv = &o->normalize;
        else if (!strcmp(a, "--augment")) sv = &o->augment;
        else if (!strcmp(a, "--isa")) sv = &o->isa;
        else if (!strcmp(a, "--epochs")) { iv = &o->epochs; lo = 0; }
        else if (!strcmp(a, "--batch-size")) iv = &o->batch;
        else if (!strcmp(a, "--threads")) { iv = &o->threads; hi = 256; }
        else if (!strcmp(a, "--warmup")) { iv = &o->warmup; lo = 0; }
        else if (!strcmp(a, "--lr")) { dv = &o->lr; o->lr_set = 1; o->lr_s = i + 1 < argc ? argv[i + 1] : NULL; }
        else if (!strcmp(a, "--momentum")) { dv = &o->momentum; o->momentum_set = 1; o->momentum_s = i + 1 < argc ? argv[i + 1] : NULL; }
        else if (!strcmp(a, "--weight-decay")) { dv = &o->weight_decay; o->wd_set = 1; o->wd_s = i + 1 < argc ? argv[i + 1] : NULL; }
        else if (!strcmp(a, "--clip-grad-norm")) dv = &o->clip;
        else if (!strcmp(a, "--nesterov")) flag = &o->nesterov;
        else if (!strcmp(a, "--no-shuffle")) flag = &o->no_shuffle;
        else if (!strcmp(a, "--quiet")) flag = &o->quiet;
        else if (!strcmp(a, "--detect-anomaly")) flag = &o->detect_anomaly;
        else if (!strcmp(a, "--fixed-threads")) flag = &o->fixed_threads;
        else if (!strcmp(a, "--seed")) {
            const char *v = tool_optarg(S, argc, argv, &i);
            if (!v || !tool_parse_u64(S, a, v, &o->seed))
                return 0;
            continue;
        } else if (a[0] == '-' && a[1]) {
            tool_error(S, "unknown option '%s' (see cnn train --help)", a);
            return 0;
        } else if (!o->model) {
            o->model = a;
            continue;
        } else {
            tool_error(S, "unexpected argument '%s'", a);
            return 0;
        }
        if (flag) {
            *flag = 1;
            continue;
        }
        const char *v = tool_optarg(S, argc, argv, &i);
        if (!v)
            return 0;
        if (sv)
            *sv = v;
        else if (iv && !tool_parse_i64(S, a, v, lo, hi, iv))
            return 0;
        else if (dv && !tool_parse_double(S, a, v, dv))
            return 0;
    }
    if (!o->model || !o->data) {
        tool_error(S, "MODEL and --data are required (see cnn train --help)");
        return 0;
    }
    if (o->lr_set && !(o->lr >= 0)) {
        tool_error(S, "--lr must be a non-negative number");
        return 0;
    }
    if (o->isa && strcmp(o->isa, "auto") && strcmp(o->isa, "avx512") && strcmp(o->isa, "avx2") &&
        strcmp(o->isa, "generic")) {
        tool_error(S, "--isa is auto, avx512, avx2 or generic, got '%s'", o->isa);
        return 0;
    }
    return 1;
}

/* "--optimizer sgd --lr 0.1 --momentum 0.9" -> "SGD(lr=0.1, momentum=0.9)". */
static int optimizer_spec(const train_opts *o, char *buf, size_t n)
{
    const char *name = o->optimizer ? o->optimizer : "sgd";
    if (strchr(name, '(')) {
        if (o->lr_set || o->momentum_set || o->wd_set || o->nesterov) {
            tool_error("train", "--lr/--momentum/--weight-decay/--nesterov go with a short "
                                "--optimizer name, not a full call");
            return 0;
        }
        snprintf(buf, n, "%s", name);
        return 1;
    }
    const char *cls, *lr;
    if (!strcmp(name, "sgd")) { cls = "SGD"; lr = "0.01"; }
    else if (!strcmp(name, "adam")) { cls = "Adam"; lr = "0.001"; }
    else if (!strcmp(name, "adamw")) { cls = "AdamW"; lr = "0.001"; }
    else if (!strcmp(name, "rmsprop")) { cls = "RMSprop"; lr = "0.01"; }
    else {
        tool_error("train", "unknown --optimizer '%s' (sgd, adam, adamw, rmsprop, or a call such as "
                            "\"SGD(lr=0.1)\")", name);
        return 0;
    }
    if (o->lr_set)
        lr = o->lr_s;
    size_t u = (size_t)snprintf(buf, n, "%s(lr=%s", cls, lr);
    if (o->momentum_set) {
        if (strcmp(cls, "SGD") && strcmp(cls, "RMSprop")) {
            tool_error("train", "--momentum applies to sgd and rmsprop");
            return 0;
        }
        u += (size_t)snprintf(buf + u, n - u, ", momentum=%s", o->momentum_s);
    }
    if (o->nesterov) {
        if (strcmp(cls, "SGD")) {
            tool_error("train", "--nesterov applies to sgd");
            return 0;
        }
        u += (size_t)snprintf(buf + u, n - u, ", nesterov=True");
    }
    if (o->wd_set)
        u += (size_t)snprintf(buf + u, n - u, ", weight_decay=%s", o->wd_s);
    snprintf(buf + u, n - u, ")");
    return 1;
}

static int loss_spec(const char *name, cnn_dtype ydt, char *buf, size_t n)
{
    static const struct {
        const char *s, *cls;
    } map[] = {{"cross_entropy", "CrossEntropyLoss()"}, {"mse", "MSELoss()"}, {"l1", "L1Loss()"},
               {"smooth_l1", "SmoothL1Loss()"},         {"nll", "NLLLoss()"}, {"bce", "BCELoss()"},
               {"bce_with_logits", "BCEWithLogitsLoss()"}};
    if (!name)
        name = ydt == CNN_I64 ? "cross_entropy" : "mse";
    if (strchr(name, '(')) {
        snprintf(buf, n, "%s", name);
        return 1;
    }
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(name, map[i].s)) {
            snprintf(buf, n, "%s", map[i].cls);
            return 1;
        }
    tool_error("train", "unknown --loss '%s' (cross_entropy, mse, l1, smooth_l1, nll, bce, "
                        "bce_with_logits, or a call such as \"CrossEntropyLoss(label_smoothing=0.1)\")",
               name);
    return 0;
}

/* "--scheduler cosine --warmup 2" -> a schedule call, or "" for none. */
static int schedule_spec(const train_opts *o, char *buf, size_t n)
{
    char main_s[512] = "";
    const char *s = o->scheduler;
    long long after = o->epochs - o->warmup;
    if (after < 1)
        after = 1;
    if (s && strchr(s, '(')) {
        snprintf(main_s, sizeof main_s, "%s", s);
    } else if (s && !strcmp(s, "cosine")) {
        snprintf(main_s, sizeof main_s, "CosineAnnealingLR(T_max=%lld)", after);
    } else if (s && !strncmp(s, "step:", 5)) {
        long long size;
        double gamma = 0.1;
        char *end;
        size = strtoll(s + 5, &end, 10);
        if (*end == ':')
            gamma = strtod(end + 1, &end);
        if (*end || size < 1) {
            tool_error("train", "--scheduler step:SIZE[:GAMMA], e.g. step:30:0.1 (got '%s')", s);
            return 0;
        }
        snprintf(main_s, sizeof main_s, "StepLR(step_size=%lld, gamma=%.17g)", size, gamma);
    } else if (s && !strncmp(s, "multistep:", 10)) {
        char ms[256] = "";
        size_t u = 0;
        const char *p = s + 10;
        double gamma = 0.1;
        char *end;
        while (1) {
            long long m = strtoll(p, &end, 10);
            if (end == p)
                break;
            u += (size_t)snprintf(ms + u, sizeof ms - u, "%s%lld", u ? ", " : "", m);
            p = end;
            if (*p == '+')
                p++;
            else
                break;
        }
        if (*p == ':')
            gamma = strtod(p + 1, &end), p = end;
        if (*p || !u) {
            tool_error("train", "--scheduler multistep:E1+E2[:GAMMA], e.g. multistep:30+60:0.1 (got '%s')", s);
            return 0;
        }
        snprintf(main_s, sizeof main_s, "MultiStepLR(milestones=[%s], gamma=%.17g)", ms, gamma);
    } else if (s && !strncmp(s, "exp:", 4)) {
        char *end;
        double gamma = strtod(s + 4, &end);
        if (*end || end == s + 4) {
            tool_error("train", "--scheduler exp:GAMMA, e.g. exp:0.95 (got '%s')", s);
            return 0;
        }
        snprintf(main_s, sizeof main_s, "ExponentialLR(gamma=%.17g)", gamma);
    } else if (s) {
        tool_error("train", "unknown --scheduler '%s' (step:..., multistep:..., exp:..., cosine, or a "
                            "call such as \"StepLR(step_size=5)\")", s);
        return 0;
    }
    if (o->warmup > 0) {
        char warm[128];
        snprintf(warm, sizeof warm, "LinearLR(start_factor=%.17g, total_iters=%lld)",
                 1.0 / (double)(o->warmup + 1), o->warmup);
        if (main_s[0])
            snprintf(buf, n, "SequentialLR([%s, %s], milestones=[%lld])", warm, main_s, o->warmup);
        else
            snprintf(buf, n, "%s", warm);
    } else {
        snprintf(buf, n, "%s", main_s);
    }
    return 1;
}

/* Progress on stderr: a bar redrawn in place on a terminal, nothing until
 * the epoch line otherwise. */
typedef struct {
    int tty, quiet;
    double start, epoch_start;
} progress;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void draw_bar(progress *p, long long epoch, long long epochs, long long step, long long steps,
                     double loss, double acc, long long seen)
{
    if (!p->tty || p->quiet)
        return;
    double el = now() - p->epoch_start;
    double ips = el > 0 ? (double)seen / el : 0;
    double left = step > 0 ? el / (double)step * (double)(steps - step) : 0;
    int width = 24, fill = steps ? (int)((double)width * (double)step / (double)steps) : width;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[width] = 0;
    fprintf(stderr, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld loss %.4f", epoch, epochs, bar, step,
            steps, loss);
    if (acc >= 0)
        fprintf(stderr, " acc %.2f%%", 100 * acc);
    fprintf(stderr, " %.0f img/s ETA %d:%02d", ips, (int)left / 60, (int)left % 60);
    fflush(stderr);
}

/* Index of the largest of n logits. */
static int64_t argmax(const float *v, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

typedef struct {
    cnn_graph *g;
    cnn_dataset *ds;
    int64_t n_classes; /* model outputs per sample, for accuracy; 0: no accuracy */
    cnn_shape xs;      /* sample shape */
    cnn_shape ys;
    cnn_dtype ydt;
    int planned_train;
    int64_t planned_batch;
} runner;

static cnn_status plan_for(runner *r, int64_t batch, int train)
{
    if (r->planned_batch == batch && r->planned_train == train)
        return CNN_OK;
    cnn_shape shapes[2];
    cnn_dtype dtypes[2];
    shapes[0].ndim = r->xs.ndim + 1;
    shapes[0].dims[0] = batch;
    for (int i = 0; i < r->xs.ndim; i++)
        shapes[0].dims[i + 1] = r->xs.dims[i];
    shapes[1].ndim = r->ys.ndim + 1;
    shapes[1].dims[0] = batch;
    for (int i = 0; i < r->ys.ndim; i++)
        shapes[1].dims[i + 1] = r->ys.dims[i];
    dtypes[0] = CNN_F32;
    dtypes[1] = r->ydt;
    /* Inputs are ordered as the graph declares them: the model's, then "target". */
    cnn_status st = cnn_graph_plan(r->g, 2, shapes, dtypes, train ? CNN_PLAN_BACKWARD : 0);
    if (st)
        return st;
    r->planned_batch = batch;
    r->planned_train = train;
    return CNN_OK;
}

/* Runs one batch through the model: fills inputs, forward, loss, and the
 * number of correct predictions. */
static cnn_status run_batch(runner *r, const int64_t *idx, int64_t n, const cnn_transform *t,
                            cnn_rng *aug, int train, double *loss, int64_t *correct)
{
    cnn_status st = plan_for(r, n, train);
    if (st)
        return st;
    float *x = cnn_graph_input_data(r->g, 0);
    void *y = cnn_graph_input_data(r->g, 1);
    if (cnn_dataset_batch(r->ds, idx, n, t, aug, x, y))
        return CNN_ERR_ARGUMENT;
    if ((st = cnn_graph_forward(r->g, train)) || (st = cnn_graph_loss(r->g, loss)))
        return st;
    *correct = 0;
    if (r->n_classes > 0 && r->ydt == CNN_I64) {
        float *out;
        cnn_graph_output(r->g, 0, (void **)&out, NULL, NULL);
        const int64_t *labels = y;
        for (int64_t i = 0; i < n; i++)
            *correct += argmax(out + i * r->n_classes, r->n_classes) == labels[i];
    }
    return CNN_OK;
}

/* The metrics file is written under a temporary name (holding the earlier
 * lines when resuming) and renamed over FILE once it has a line of this
 * run, or when Ctrl-C saves a checkpoint: a run that fails before either
 * leaves an existing FILE as it was. Later lines are appended to it. */
typedef struct {
    FILE *f;
    const char *path;
    char tmp[4200];
    int published;
} metrics_file;

static int metrics_open(metrics_file *m, const char *path, int resume)
{
    m->path = path;
    snprintf(m->tmp, sizeof m->tmp, "%s.tmp.%d", path, (int)getpid());
    if (!(m->f = fopen(m->tmp, "w"))) {
        tool_error("train", "%s: cannot open for writing: %s", path, strerror(errno));
        return 0;
    }
    FILE *old = resume ? fopen(path, "r") : NULL;
    if (old) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, old)) > 0)
            fwrite(buf, 1, n, m->f);
        fclose(old);
    }
    return 1;
}

static int metrics_publish(metrics_file *m)
{
    if (!m->f)
        return 1;
    if (fflush(m->f) || ferror(m->f) || (!m->published && rename(m->tmp, m->path))) {
        tool_error("train", "%s: cannot write: %s", m->path, strerror(errno));
        return 0;
    }
    m->published = 1;
    return 1;
}

static void metrics_close(metrics_file *m)
{
    if (!m->f)
        return;
    fclose(m->f);
    if (!m->published)
        unlink(m->tmp);
}

/* Describes in buf the first parameter or buffer holding NaN or Inf;
 * returns 0 when all are finite. Checked before anything is saved, so that
 * weights are never written non-finite and a good checkpoint is never
 * replaced by a broken one. */
static int nonfinite_weights(cnn_graph *g, char *buf, size_t n)
{
    for (int i = 0; i < cnn_graph_param_count(g); i++) {
        cnn_param_info p;
        if (cnn_graph_param(g, i, &p) || p.dtype != CNN_F32)
            continue;
        int64_t cnt = 1;
        for (int d = 0; d < p.shape.ndim; d++)
            cnt *= p.shape.dims[d];
        const float *v = p.data;
        for (int64_t k = 0; k < cnt; k++)
            if (!isfinite(v[k])) {
                snprintf(buf, n, "'%s' element %lld is %g", p.name, (long long)k, (double)v[k]);
                return 1;
            }
    }
    return 0;
}

static void json_num(FILE *f, const char *key, double v)
{
    if (isfinite(v))
        fprintf(f, ", \"%s\": %.6g", key, v);
    else
        fprintf(f, ", \"%s\": null", key);
}

int cmd_train(int argc, char **argv)
{
    const char *S = "train";
    train_opts o;
    if (!parse_args(argc, argv, &o))
        return EXIT_USAGE;
    char opt_s[1024], loss_s[512], sched_s[1200];
    if (!optimizer_spec(&o, opt_s, sizeof opt_s) || !schedule_spec(&o, sched_s, sizeof sched_s))
        return EXIT_USAGE;
    /* An output that cannot be written is found now, not after hours of training. */
    const char *outs[3] = {o.save, o.checkpoint, o.metrics};
    for (int i = 0; i < 3; i++)
        if (outs[i] && !tool_check_writable(S, outs[i]))
            return EXIT_FAIL;
    int rc = EXIT_FAIL;
    cnn_graph *g = NULL;
    cnn_dataset *train_ds = NULL, *test_ds = NULL;
    cnn_optimizer *opt = NULL;
    cnn_tensors *ts = NULL;
    int64_t *order = NULL, *test_idx = NULL;
    metrics_file mf;
    memset(&mf, 0, sizeof mf);
    if (cnn_graph_create(&g) || cnn_dataset_create(&train_ds) || cnn_dataset_create(&test_ds) ||
        cnn_optimizer_create(&opt) || cnn_tensors_create(&ts)) {
        tool_error(S, "out of memory");
        goto done;
    }
    if (cnn_graph_load(g, o.model)) {
        tool_error(S, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    if (cnn_graph_input_count(g) != 1) {
        tool_error(S, "%s: cnn train needs a model with one input; this one has %d", o.model,
                   cnn_graph_input_count(g));
        goto done;
    }
    if (cnn_dataset_load(train_ds, o.data, CNN_SPLIT_TRAIN)) {
        tool_error(S, "%s", cnn_dataset_errmsg(train_ds));
        goto done;
    }
    int have_test = 0;
    if (o.test) {
        if (cnn_dataset_load(test_ds, o.test, CNN_SPLIT_TEST)) {
            tool_error(S, "%s", cnn_dataset_errmsg(test_ds));
            goto done;
        }
        have_test = 1;
    } else if (cnn_dataset_has_split(o.data, CNN_SPLIT_TEST)) {
        if (cnn_dataset_load(test_ds, o.data, CNN_SPLIT_TEST)) {
            tool_error(S, "%s", cnn_dataset_errmsg(test_ds));
            goto done;
        }
        have_test = 1;
    }
    runner r;
    memset(&r, 0, sizeof r);
    r.g = g;
    r.ds = train_ds;
    cnn_dataset_shapes(train_ds, &r.xs, &r.ys, &r.ydt);
    if (have_test) {
        cnn_shape txs, tys;
        cnn_dtype tdt;
        cnn_dataset_shapes(test_ds, &txs, &tys, &tdt);
        char a[96], b[96];
        if (txs.ndim != r.xs.ndim || memcmp(txs.dims, r.xs.dims, sizeof(int64_t) * (size_t)txs.ndim) ||
            tdt != r.ydt) {
            tool_error(S, "the test data %s has samples of shape %s, the training data %s",
                       cnn_dataset_source(test_ds), cnn_shape_format(&txs, a, sizeof a),
                       cnn_shape_format(&r.xs, b, sizeof b));
            goto done;
        }
    }
    if (!loss_spec(o.loss, r.ydt, loss_s, sizeof loss_s)) {
        rc = EXIT_USAGE;
        goto done;
    }
    if (cnn_graph_set_loss(g, loss_s)) {
        tool_error(S, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    if (cnn_graph_set_threads(g, (int)o.threads) || cnn_graph_set_adaptive_threads(g, !o.fixed_threads) ||
        (o.isa && cnn_graph_set_isa(g, o.isa)) ||
        (o.detect_anomaly && cnn_graph_set_detect_anomaly(g, 1))) {
        tool_error(S, "%s", cnn_graph_errmsg(g));
        goto done;
    }
    cnn_graph_reset_parameters(g, o.seed);
    cnn_graph_set_seed(g, o.seed ^ UINT64_C(0x5851f42d4c957f2d));
    if (o.weights) {
        if (cnn_tensors_load(ts, o.weights)) {
            tool_error(S, "%s", cnn_tensors_errmsg(ts));
            goto done;
        }
        if (cnn_graph_load_state(g, ts)) {
            tool_error(S, "%s: %s", o.weights, cnn_graph_errmsg(g));
            goto done;
        }
    }
    /* Check shapes and labels against the model before the first step. */
    int64_t B = o.batch;
    int64_t N = cnn_dataset_size(train_ds);
    if (B > N)
        B = N;
    if (plan_for(&r, B, 1)) {
        char a[96];
        tool_error(S, "%s (the samples of %s have shape %s)", cnn_graph_errmsg(g),
                   cnn_dataset_source(train_ds), cnn_shape_format(&r.xs, a, sizeof a));
        goto done;
    }
    cnn_shape out_shape;
    cnn_graph_output(g, 0, NULL, &out_shape, NULL);
    if (r.ydt == CNN_I64 && out_shape.ndim == 2) {
        r.n_classes = out_shape.dims[1];
        int64_t k = cnn_dataset_classes(train_ds);
        if (k > r.n_classes) {
            tool_error(S, "%s has labels up to %lld but the model %s gives %lld outputs per sample",
                       cnn_dataset_source(train_ds), (long long)(k - 1), o.model,
                       (long long)r.n_classes);
            goto done;
        }
        if (have_test && cnn_dataset_classes(test_ds) > r.n_classes) {
            tool_error(S, "%s has labels up to %lld but the model %s gives %lld outputs per sample",
                       cnn_dataset_source(test_ds), (long long)(cnn_dataset_classes(test_ds) - 1),
                       o.model, (long long)r.n_classes);
            goto done;
        }
    }
    if (cnn_optimizer_init(opt, g, opt_s)) {
        tool_error(S, "%s", cnn_optimizer_errmsg(opt));
        rc = EXIT_USAGE;
        goto done;
    }
    if (sched_s[0] && cnn_optimizer_set_schedule(opt, sched_s)) {
        tool_error(S, "%s", cnn_optimizer_errmsg(opt));
        rc = EXIT_USAGE;
        goto done;
    }
    cnn_transform tf;
    if (!tool_parse_transform("train", o.normalize, o.augment, &tf, r.xs.ndim ? (int)r.xs.dims[0] : 1)) {
        rc = EXIT_USAGE;
        goto done;
    }
    cnn_transform eval_tf = tf;
    eval_tf.crop_pad = 0;
    eval_tf.flip = 0;
    cnn_progress prog;
    memset(&prog, 0, sizeof prog);
    cnn_rng_seed(&prog.data_rng, o.seed ^ UINT64_C(0x9e3779b97f4a7c15));
    if (o.resume) {
        if (cnn_checkpoint_load(g, opt, &prog, o.resume)) {
            tool_error(S, "%s", cnn_graph_errmsg(g));
            goto done;
        }
    }
    if (o.metrics && !metrics_open(&mf, o.metrics, o.resume != NULL))
        goto done;
    int64_t steps_per_epoch = (N + B - 1) / B;
    order = malloc(sizeof(int64_t) * (size_t)N);
    int64_t NT = have_test ? cnn_dataset_size(test_ds) : 0;
    test_idx = malloc(sizeof(int64_t) * (size_t)(NT > 0 ? NT : 1));
    if (!order || !test_idx) {
        tool_error(S, "out of memory for %lld sample indices", (long long)N);
        goto done;
    }
    for (int64_t i = 0; i < NT; i++)
        test_idx[i] = i;
    progress pg = {isatty(2), o.quiet, now(), 0};
    signal(SIGINT, on_sigint);
    if (!o.quiet)
        fprintf(stderr, "training %s on %s: %lld samples%s, batch %lld, %s, %s%s%s; %lld thread%s, %s\n", o.model,
                cnn_dataset_source(train_ds), (long long)N,
                have_test ? " (and a test set)" : "", (long long)B, opt_s, loss_s,
                sched_s[0] ? ", " : "", sched_s, o.threads, o.threads == 1 ? "" : "s", cnn_graph_isa(g));
    double last_test_acc = NAN;
    char bad[256];
    for (int64_t epoch = prog.epoch; epoch < o.epochs; epoch++) {
        /* The epoch's order comes from the generator's state at its start, which
         * the checkpoint records, so a resumed epoch replays the same order. */
        cnn_rng order_rng = prog.data_rng;
        for (int64_t i = 0; i < N; i++)
            order[i] = i;
        if (!o.no_shuffle)
            for (int64_t i = N - 1; i > 0; i--) {
                int64_t j = (int64_t)cnn_rng_below(&order_rng, (uint64_t)(i + 1));
                int64_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        int64_t done_steps = prog.step - epoch * steps_per_epoch;
        if (done_steps < 0 || done_steps > steps_per_epoch)
            done_steps = 0;
        pg.epoch_start = now();
        int64_t wide0, single0;
        cnn_graph_thread_steps(g, &wide0, &single0);
        double loss_sum = 0;
        int64_t correct = 0, seen = 0;
        for (int64_t s = done_steps; s < steps_per_epoch; s++) {
            int64_t start = s * B, n = N - start < B ? N - start : B;
            /* Augmentation randomness is derived from (seed, step): no state to save. */
            cnn_rng aug;
            cnn_rng_seed(&aug, o.seed * UINT64_C(1000003) + (uint64_t)(epoch * steps_per_epoch + s));
            double l;
            int64_t c;
            cnn_graph_zero_grad(g);
            if (run_batch(&r, order + start, n, &tf, &aug, 1, &l, &c)) {
                if (pg.tty && !o.quiet)
                    fputc('\n', stderr);
                const char *m = cnn_graph_errmsg(g)[0] ? cnn_graph_errmsg(g) : cnn_dataset_errmsg(train_ds);
                tool_error(S, "epoch %lld, step %lld: %s", (long long)epoch + 1, (long long)s + 1, m);
                goto done;
            }
            if (!isfinite(l)) {
                if (pg.tty && !o.quiet)
                    fputc('\n', stderr);
                tool_error(S, "epoch %lld, step %lld: the loss is %g; training stopped (try a lower --lr)",
                           (long long)epoch + 1, (long long)s + 1, l);
                goto done;
            }
            if (cnn_graph_backward(g) ||
                (o.clip > 0 && cnn_graph_clip_grad_norm(g, o.clip, 2.0, NULL))) {
                if (pg.tty && !o.quiet)
                    fputc('\n', stderr);
                tool_error(S, "epoch %lld, step %lld: %s", (long long)epoch + 1, (long long)s + 1,
                           cnn_graph_errmsg(g));
                goto done;
            }
            if (cnn_optimizer_step(opt)) {
                tool_error(S, "%s", cnn_optimizer_errmsg(opt));
                goto done;
            }
            prog.step++;
            loss_sum += l * (double)n;
            correct += c;
            seen += n;
            if ((s & 7) == 7 || s + 1 == steps_per_epoch)
                draw_bar(&pg, epoch + 1, o.epochs, s + 1, steps_per_epoch, loss_sum / (double)seen,
                         r.n_classes ? (double)correct / (double)seen : -1, seen);
            if (interrupted) {
                if (pg.tty && !o.quiet)
                    fputc('\n', stderr);
                if (o.checkpoint && nonfinite_weights(g, bad, sizeof bad)) {
                    tool_error(S, "interrupted at epoch %lld, step %lld: the weights hold non-finite "
                                  "values (%s): no checkpoint saved, %s kept as it was",
                               (long long)epoch + 1, (long long)s + 1, bad, o.checkpoint);
                    goto done;
                }
                if (o.checkpoint) {
                    if (cnn_checkpoint_save(g, opt, &prog, o.checkpoint)) {
                        tool_error(S, "%s", cnn_graph_errmsg(g));
                        goto done;
                    }
                    if (!metrics_publish(&mf))
                        goto done;
                    fprintf(stderr, "interrupted at epoch %lld, step %lld: checkpoint saved to %s "
                                    "(continue with --resume %s)\n",
                            (long long)epoch + 1, (long long)s + 1, o.checkpoint, o.checkpoint);
                } else {
                    fprintf(stderr, "interrupted at epoch %lld, step %lld (no --checkpoint given: "
                                    "nothing saved)\n",
                            (long long)epoch + 1, (long long)s + 1);
                }
                rc = EXIT_INTERRUPT;
                goto done;
            }
        }
        double elapsed = now() - pg.epoch_start;
        double train_loss = seen ? loss_sum / (double)seen : NAN;
        double train_acc = (r.n_classes && seen) ? (double)correct / (double)seen : NAN;
        double test_loss = NAN, test_acc = NAN;
        if (have_test) {
            r.ds = test_ds;
            double tl = 0;
            int64_t tc = 0;
            for (int64_t start = 0; start < NT; start += B) {
                int64_t n = NT - start < B ? NT - start : B;
                double l;
                int64_t c;
                if (run_batch(&r, test_idx + start, n, &eval_tf, NULL, 0, &l, &c)) {
                    const char *m = cnn_graph_errmsg(g)[0] ? cnn_graph_errmsg(g) : cnn_dataset_errmsg(test_ds);
                    tool_error(S, "evaluating: %s", m);
                    goto done;
                }
                tl += l * (double)n;
                tc += c;
            }
            r.ds = train_ds;
            test_loss = NT ? tl / (double)NT : NAN;
            test_acc = (r.n_classes && NT) ? (double)tc / (double)NT : NAN;
            last_test_acc = test_acc;
        }
        double lr = cnn_optimizer_lr(opt);
        double ips = elapsed > 0 ? (double)seen / elapsed : 0;
        if (!o.quiet) {
            if (pg.tty)
                fputs("\r\033[K", stderr);
            fprintf(stderr, "epoch %lld/%lld: train loss %.4f", (long long)epoch + 1, (long long)o.epochs,
                    train_loss);
            if (isfinite(train_acc))
                fprintf(stderr, " acc %.2f%%", 100 * train_acc);
            if (have_test) {
                fprintf(stderr, ", test loss %.4f", test_loss);
                if (isfinite(test_acc))
                    fprintf(stderr, " acc %.2f%%", 100 * test_acc);
            }
            fprintf(stderr, ", lr %.3g, %.0f img/s, %.1f s\n", lr, ips, elapsed);
        }
        if (mf.f) {
            FILE *metrics = mf.f;
            fprintf(metrics, "{\"epoch\": %lld, \"step\": %lld", (long long)epoch + 1, (long long)prog.step);
            json_num(metrics, "train_loss", train_loss);
            json_num(metrics, "train_acc", train_acc);
            json_num(metrics, "test_loss", test_loss);
            json_num(metrics, "test_acc", test_acc);
            json_num(metrics, "lr", lr);
            json_num(metrics, "images_per_sec", ips);
            json_num(metrics, "seconds", elapsed);
            if (o.threads > 1 && !o.fixed_threads) {
                /* the epoch's steps on one thread (adaptive thread use) */
                int64_t wide1, single1;
                cnn_graph_thread_steps(g, &wide1, &single1);
                fprintf(metrics, ", \"one_thread_steps\": %lld", (long long)(single1 - single0));
            }
            fprintf(metrics, "}\n");
            if (!metrics_publish(&mf))
                goto done;
        }
        if (sched_s[0] && cnn_optimizer_schedule_step(opt)) {
            tool_error(S, "%s", cnn_optimizer_errmsg(opt));
            goto done;
        }
        prog.epoch = epoch + 1;
        prog.data_rng = order_rng;
        if (o.checkpoint && nonfinite_weights(g, bad, sizeof bad)) {
            tool_error(S, "epoch %lld: the weights hold non-finite values (%s): no checkpoint "
                          "saved, %s kept as it was",
                       (long long)epoch + 1, bad, o.checkpoint);
            goto done;
        }
        if (o.checkpoint && cnn_checkpoint_save(g, opt, &prog, o.checkpoint)) {
            tool_error(S, "%s", cnn_graph_errmsg(g));
            goto done;
        }
    }
    if (o.save && nonfinite_weights(g, bad, sizeof bad)) {
        tool_error(S, "the weights hold non-finite values (%s): not saved to %s", bad, o.save);
        goto done;
    }
    if (o.save) {
        cnn_tensors_clear(ts);
        if (cnn_graph_save_state(g, ts) || cnn_tensors_save(ts, o.save)) {
            tool_error(S, "%s%s", cnn_graph_errmsg(g), cnn_tensors_errmsg(ts));
            goto done;
        }
    }
    if (isfinite(last_test_acc))
        printf("test accuracy: %.2f%%\n", 100 * last_test_acc);
    if (o.save && !o.quiet)
        fprintf(stderr, "model saved to %s\n", o.save);
    rc = EXIT_OK;
done:
    metrics_close(&mf);
    signal(SIGINT, SIG_DFL);
    free(order);
    free(test_idx);
    cnn_tensors_destroy(ts);
    cnn_optimizer_destroy(opt);
    cnn_dataset_destroy(train_ds);
    cnn_dataset_destroy(test_ds);
    cnn_graph_destroy(g);
    return rc;
}
