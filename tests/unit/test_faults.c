/* Allocation failures: for each workflow a user runs (parse a model, plan
 * and run it forward and backward, load and save safetensors, load data
 * sets and images, set up an optimiser, save and load checkpoints), count
 * its allocations, then run it again once for every k making allocation k
 * fail. Each run must return CNN_ERR_NOMEM with a message, leak nothing
 * (LeakSanitizer checks after every run when the build has it), leave no
 * file half written, and leave the handle usable: the same call without a
 * failure then succeeds.
 *
 * Needs the fault-injection build: make test-faults (FAULT=1, with ASan).
 * Other builds compile this file to a program that says so and passes. */
#include "test.h"

#ifdef CNN_FAULT_INJECTION

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

void cnn_test_fail_alloc_after(long long n);
long long cnn_test_alloc_count(void);

static char dir[256];

static const char *tp(const char *name)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

/* The names in dir, sorted, space-separated: to see that a failed write
 * left no temporary file and did not replace the target. */
static void listing(char *buf, size_t n)
{
    buf[0] = 0;
    struct dirent **list;
    int k = scandir(dir, &list, NULL, alphasort);
    for (int i = 0; i < k; i++) {
        if (list[i]->d_name[0] != '.') {
            size_t u = strlen(buf);
            snprintf(buf + u, n - u, "%s ", list[i]->d_name);
        }
        free(list[i]);
    }
    if (k >= 0)
        free(list);
}

static int file_equals(const char *path, const void *want, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char *b = malloc(n + 1);
    size_t got = b ? fread(b, 1, n + 1, f) : 0;
    fclose(f);
    int eq = b && got == n && memcmp(b, want, n) == 0;
    free(b);
    return eq;
}

/* ---- the harness ---------------------------------------------------------
 * A workflow: setup makes its preconditions (never injected), run is the
 * work under test (its status and the message of the handle it failed on),
 * check is called after a failed run and after the recovery run (nonzero
 * means something is wrong), teardown frees everything. */
typedef struct workflow {
    const char *name;
    void (*setup)(void);
    cnn_status (*run)(const char **msg);
    int (*check_failed)(void);
    void (*teardown)(void);
} workflow;

static long long count_allocs(const workflow *w)
{
    w->setup();
    const char *msg = "";
    cnn_test_fail_alloc_after(0);
    cnn_status st = w->run(&msg);
    long long n = cnn_test_alloc_count();
    CHECKF(st == CNN_OK, "%s: fails without injection: %s", w->name, msg);
    w->teardown();
    return n;
}

static void sweep(const workflow *w)
{
    long long n = count_allocs(w);
    CHECKF(n > 0, "%s: no allocations counted", w->name);
    int wrong = 0, leaks = 0;
    for (long long k = 1; k <= n; k++) {
        w->setup();
        const char *msg = "";
        cnn_test_fail_alloc_after(k);
        cnn_status st = w->run(&msg);
        cnn_test_fail_alloc_after(0);
        if (st != CNN_ERR_NOMEM || !msg || !msg[0]) {
            if (wrong++ < 5)
                printf("  %s: allocation %lld of %lld failed: status %d (%s), message \"%s\"\n",
                       w->name, k, n, st, cnn_status_string(st), msg ? msg : "(null)");
        } else if (w->check_failed && w->check_failed()) {
            if (wrong++ < 5)
                printf("  %s: allocation %lld of %lld: the failed run left a wrong state behind\n",
                       w->name, k, n);
        }
        /* The handle is still usable: the same work now succeeds. */
        st = w->run(&msg);
        if (st != CNN_OK && wrong++ < 5)
            printf("  %s: after allocation %lld failed, running again fails: %s\n", w->name, k, msg);
        w->teardown();
#ifdef HAVE_LSAN
        if (__lsan_do_recoverable_leak_check() && leaks++ < 3)
            printf("  %s: allocation %lld of %lld failed: memory leaked (report above)\n", w->name,
                   k, n);
#endif
    }
    printf("  %s: %lld allocations, each made to fail in turn\n", w->name, n);
    CHECKF(wrong == 0 && leaks == 0, "%s: %d wrong results, %d leaks", w->name, wrong, leaks);
}

/* ---- models ------------------------------------------------------------------ */
static const char *SEQ_MODEL =
    "# a small CNN\n"
    "Conv2d(1, 4, kernel_size=3, padding=1)\n"
    "BatchNorm2d(4)\n"
    "ReLU()\n"
    "MaxPool2d(2)\n"
    "Dropout(0.1)\n"
    "Flatten()\n"
    "Linear(4 * 4 * 4, 10)\n";
static const char *GRAPH_MODEL =
    "a = Conv2d(1, 2, 3, padding=1)(input)\n"
    "b = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Tanh())(input)\n"
    "c = Concat(dim=1)(a, b)\n"
    "d = Add()(a, b)\n"
    "e = AvgPool2d(2)(c)\n"
    "outputs = e, d\n";

static cnn_graph *g;
static cnn_optimizer *opt;
static cnn_tensors *ts;
static cnn_dataset *ds;

static void setup_empty_graph(void) { CHECK(cnn_graph_create(&g) == CNN_OK); }

static void teardown_all(void)
{
    cnn_optimizer_destroy(opt);
    cnn_graph_destroy(g);
    cnn_tensors_destroy(ts);
    cnn_dataset_destroy(ds);
    opt = NULL;
    g = NULL;
    ts = NULL;
    ds = NULL;
}

static cnn_status run_parse(const char **msg)
{
    /* The handle must be empty to parse again: a failed parse leaves it so. */
    cnn_graph_destroy(g);
    g = NULL;
    cnn_status st = cnn_graph_create(&g);
    if (st) {
        *msg = "cnn_graph_create: out of memory";
        return st;
    }
    st = cnn_graph_parse(g, SEQ_MODEL, "seq.txt");
    if (!st)
        st = cnn_graph_set_loss(g, "CrossEntropyLoss(label_smoothing=0.1)");
    *msg = cnn_graph_errmsg(g);
    if (st)
        return st;
    cnn_graph_destroy(g);
    g = NULL;
    st = cnn_graph_create(&g);
    if (st) {
        *msg = "cnn_graph_create: out of memory";
        return st;
    }
    st = cnn_graph_parse(g, GRAPH_MODEL, "graph.txt");
    *msg = cnn_graph_errmsg(g);
    return st;
}

static void setup_parsed(void)
{
    CHECK(cnn_graph_create(&g) == CNN_OK);
    CHECK(cnn_graph_parse(g, SEQ_MODEL, "seq.txt") == CNN_OK);
    CHECK(cnn_graph_set_loss(g, "CrossEntropyLoss()") == CNN_OK);
}

/* Plans for a batch of 2 (the first time, or for another batch size after
 * a plan for 3), runs forward and backward, and reads the summary. */
static cnn_status plan_and_run(const char **msg, int64_t batch, int threads)
{
    cnn_shape shapes[2] = {{4, {batch, 1, 8, 8}}, {1, {batch}}};
    cnn_dtype dtypes[2] = {CNN_F32, CNN_I64};
    const char *text;
    double loss;
    cnn_status st = cnn_graph_set_threads(g, threads);
    if (!st)
        st = cnn_graph_plan(g, 2, shapes, dtypes, CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD);
    if (!st) {
        float *x = cnn_graph_input_data(g, 0);
        int64_t *y = cnn_graph_input_data(g, 1);
        for (int i = 0; i < batch * 64; i++)
            x[i] = (float)(i % 9) / 9.0f;
        for (int i = 0; i < batch; i++)
            y[i] = i % 10;
        cnn_graph_zero_grad(g);
        st = cnn_graph_forward(g, 1);
    }
    if (!st)
        st = cnn_graph_loss(g, &loss);
    if (!st)
        st = cnn_graph_backward(g);
    if (!st)
        st = cnn_graph_summary(g, CNN_SUMMARY_JSON, &text);
    if (!st)
        st = cnn_graph_summary(g, CNN_SUMMARY_TEXT, &text);
    *msg = cnn_graph_errmsg(g);
    return st;
}

static cnn_status run_plan(const char **msg) { return plan_and_run(msg, 2, 1); }
static cnn_status run_plan_threads(const char **msg) { return plan_and_run(msg, 2, 2); }

static void setup_planned(void)
{
    setup_parsed();
    cnn_shape shapes[2] = {{4, {3, 1, 8, 8}}, {1, {3}}};
    cnn_dtype dtypes[2] = {CNN_F32, CNN_I64};
    CHECK(cnn_graph_plan(g, 2, shapes, dtypes, CNN_PLAN_BACKWARD) == CNN_OK);
}

/* cnn_graph_set_profiling returns nothing (profiling just stays off when
 * its records cannot be allocated), so it is turned on outside the sweep. */
static void setup_profiling(void)
{
    setup_planned();
    cnn_graph_set_profiling(g, 1);
}

static cnn_status run_profile(const char **msg)
{
    cnn_status st = plan_and_run(msg, 2, 1);
    cnn_layer_info li;
    if (!st)
        st = cnn_graph_layer(g, 0, &li);
    if (!st && li.calls < 1) {
        *msg = "profiling counted no calls";
        return CNN_ERR_STATE;
    }
    *msg = cnn_graph_errmsg(g);
    return st;
}

/* ---- safetensors --------------------------------------------------------------- */
static unsigned char *st_bytes;
static size_t st_len;
static char before_list[2048];

static void setup_tensors(void)
{
    CHECK(cnn_tensors_create(&ts) == CNN_OK);
    listing(before_list, sizeof before_list);
}

static cnn_status run_tensors_load(const char **msg)
{
    cnn_status st = cnn_tensors_load_buffer(ts, st_bytes, st_len, "mem.safetensors");
    if (!st)
        st = cnn_tensors_load(ts, tp("w.safetensors"));
    if (!st)
        st = cnn_tensors_convert(ts, cnn_tensors_find(ts, "h"), CNN_F32);
    *msg = cnn_tensors_errmsg(ts);
    return st;
}

static cnn_status run_tensors_save(const char **msg)
{
    cnn_tensors_clear(ts);
    cnn_shape s = {2, {3, 5}};
    float v[15] = {0};
    cnn_status st = cnn_tensors_add(ts, "a.weight", CNN_F32, &s, v, NULL);
    if (!st)
        st = cnn_tensors_set_meta(ts, "format", "pt");
    if (!st)
        st = cnn_tensors_save(ts, tp("saved.safetensors"));
    *msg = cnn_tensors_errmsg(ts);
    return st;
}

/* A failed save leaves the folder as it was: no temporary file, and the
 * previous file (written by setup) untouched. */
static const char PREVIOUS[] = "previous contents";
static void setup_save(void)
{
    FILE *f = fopen(tp("saved.safetensors"), "wb");
    CHECK(f && fwrite(PREVIOUS, 1, sizeof PREVIOUS, f) == sizeof PREVIOUS);
    if (f)
        fclose(f);
    setup_tensors();
}

static int check_save_failed(void)
{
    char now[2048];
    listing(now, sizeof now);
    return strcmp(now, before_list) != 0 || !file_equals(tp("saved.safetensors"), PREVIOUS, sizeof PREVIOUS);
}

/* ---- optimiser and checkpoints ---------------------------------------------------- */
static cnn_status run_optimizer(const char **msg)
{
    cnn_optimizer_destroy(opt);
    opt = NULL;
    cnn_status st = cnn_optimizer_create(&opt);
    if (st) {
        *msg = "cnn_optimizer_create: out of memory";
        return st;
    }
    st = cnn_optimizer_init(opt, g, "AdamW(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01, amsgrad=True)");
    if (!st)
        st = cnn_optimizer_set_schedule(
            opt, "SequentialLR([LinearLR(start_factor=0.1, total_iters=2), "
                 "MultiStepLR(milestones=[3, 5], gamma=0.5)], milestones=[2])");
    if (!st)
        st = cnn_optimizer_step(opt);
    if (!st)
        st = cnn_optimizer_schedule_step(opt);
    *msg = cnn_optimizer_errmsg(opt);
    return st;
}

static void setup_trained(void)
{
    setup_planned();
    CHECK(cnn_optimizer_create(&opt) == CNN_OK);
    CHECK(cnn_optimizer_init(opt, g, "SGD(lr=0.1, momentum=0.9)") == CNN_OK);
    CHECK(cnn_optimizer_set_schedule(opt, "StepLR(step_size=1, gamma=0.5)") == CNN_OK);
    const char *msg;
    CHECK(plan_and_run(&msg, 3, 1) == CNN_OK);
    CHECK(cnn_optimizer_step(opt) == CNN_OK);
    listing(before_list, sizeof before_list);
}

static cnn_status run_ck_save(const char **msg)
{
    cnn_progress p = {3, 17, {{1, 2, 3, 4}}};
    cnn_status st = cnn_checkpoint_save(g, opt, &p, tp("saved.safetensors"));
    *msg = cnn_graph_errmsg(g);
    return st;
}

static void setup_ck_save(void)
{
    FILE *f = fopen(tp("saved.safetensors"), "wb");
    CHECK(f && fwrite(PREVIOUS, 1, sizeof PREVIOUS, f) == sizeof PREVIOUS);
    if (f)
        fclose(f);
    setup_trained();
}

static cnn_tensors *state_before;
static cnn_status run_ck_load(const char **msg)
{
    cnn_progress p;
    cnn_status st = cnn_checkpoint_load(g, opt, &p, tp("ck.safetensors"));
    *msg = cnn_graph_errmsg(g);
    if (!st && (p.epoch != 3 || p.step != 17)) {
        *msg = "the progress read back differs";
        return CNN_ERR_FORMAT;
    }
    return st;
}

static void setup_ck_load(void)
{
    setup_trained();
    CHECK(cnn_tensors_create(&state_before) == CNN_OK);
    CHECK(cnn_graph_save_state(g, state_before) == CNN_OK);
}

/* A failed load leaves the model's weights as they were. */
static int check_ck_load_failed(void)
{
    cnn_tensors *now;
    int differ = 0;
    if (cnn_tensors_create(&now) || cnn_graph_save_state(g, now))
        return 1;
    for (int i = 0; i < cnn_tensors_count(state_before); i++) {
        cnn_tensor_info a, b;
        cnn_tensors_get(state_before, i, &a);
        cnn_tensors_get(now, i, &b);
        differ |= a.nbytes != b.nbytes || memcmp(a.data, b.data, a.nbytes) != 0;
    }
    cnn_tensors_destroy(now);
    return differ;
}

static void teardown_ck_load(void)
{
    cnn_tensors_destroy(state_before);
    state_before = NULL;
    teardown_all();
}

/* ---- data sets and images ------------------------------------------------------------ */
static void setup_dataset(void) { CHECK(cnn_dataset_create(&ds) == CNN_OK); }

static cnn_status run_dataset(const char **msg)
{
    cnn_status st = cnn_dataset_load(ds, dir, CNN_SPLIT_TRAIN);
    if (!st)
        st = cnn_dataset_load(ds, tp("data.safetensors"), CNN_SPLIT_TRAIN);
    float *px = NULL;
    if (!st)
        st = cnn_image_load(ds, tp("img/c/a.png"), &px, NULL);
    free(px);
    if (!st)
        st = cnn_dataset_load(ds, tp("img"), CNN_SPLIT_TRAIN);
    *msg = cnn_dataset_errmsg(ds);
    return st;
}

static cnn_status run_png_save(const char **msg)
{
    float v[12] = {0, 0.5f, 1, 0.25f, 0, 0.5f, 1, 0.25f, 0, 0.5f, 1, 0.25f};
    cnn_shape s = {3, {3, 2, 2}};
    cnn_status st = cnn_image_save_png(ds, tp("saved.safetensors"), v, &s, 0, 1);
    *msg = cnn_dataset_errmsg(ds);
    return st;
}

static void setup_png_save(void)
{
    FILE *f = fopen(tp("saved.safetensors"), "wb");
    CHECK(f && fwrite(PREVIOUS, 1, sizeof PREVIOUS, f) == sizeof PREVIOUS);
    if (f)
        fclose(f);
    setup_dataset();
    listing(before_list, sizeof before_list);
}

static void write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    if (f)
        fclose(f);
}

/* The files the load workflows read: an IDX set, a safetensors data set and
 * weights, a checkpoint, an image folder. */
static void make_files(void)
{
    unsigned char img[16 + 3 * 16], lab[8 + 3];
    memcpy(img, "\0\0\x08\x03\0\0\0\x03\0\0\0\x04\0\0\0\x04", 16);
    for (int i = 0; i < 48; i++)
        img[16 + i] = (unsigned char)(i * 5);
    memcpy(lab, "\0\0\x08\x01\0\0\0\x03\x01\x02\x00", 11);
    write_file(tp("train-images-idx3-ubyte"), img, sizeof img);
    write_file(tp("train-labels-idx1-ubyte"), lab, sizeof lab);

    cnn_tensors *t;
    CHECK(cnn_tensors_create(&t) == CNN_OK);
    cnn_shape xs = {4, {3, 1, 4, 4}}, ys = {1, {3}}, hs = {1, {2}};
    float x[48] = {0};
    int64_t y[3] = {0, 1, 1};
    uint16_t h[2] = {0x3c00, 0xc000};
    CHECK(cnn_tensors_add(t, "x", CNN_F32, &xs, x, NULL) == CNN_OK);
    CHECK(cnn_tensors_add(t, "y", CNN_I64, &ys, y, NULL) == CNN_OK);
    CHECK(cnn_tensors_add(t, "h", CNN_F16, &hs, h, NULL) == CNN_OK);
    CHECK(cnn_tensors_set_meta(t, "note", "fault injection") == CNN_OK);
    CHECK(cnn_tensors_save(t, tp("data.safetensors")) == CNN_OK);
    CHECK(cnn_tensors_save(t, tp("w.safetensors")) == CNN_OK);
    cnn_tensors_destroy(t);
    FILE *f = fopen(tp("w.safetensors"), "rb");
    st_bytes = malloc(4096);
    st_len = f && st_bytes ? fread(st_bytes, 1, 4096, f) : 0;
    if (f)
        fclose(f);

    mkdir(tp("img"), 0700);
    mkdir(tp("img/c"), 0700);
    mkdir(tp("img/d"), 0700);
    cnn_dataset *d;
    CHECK(cnn_dataset_create(&d) == CNN_OK);
    float px[3 * 4 * 4];
    for (int i = 0; i < 48; i++)
        px[i] = (float)i / 47.0f;
    cnn_shape ps = {3, {3, 4, 4}};
    CHECK(cnn_image_save_png(d, tp("img/c/a.png"), px, &ps, 0, 1) == CNN_OK);
    CHECK(cnn_image_save_png(d, tp("img/d/b.png"), px, &ps, 0, 1) == CNN_OK);
    cnn_dataset_destroy(d);

    setup_trained();
    cnn_progress p = {3, 17, {{1, 2, 3, 4}}};
    CHECK(cnn_checkpoint_save(g, opt, &p, tp("ck.safetensors")) == CNN_OK);
    teardown_all();
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/cnn_test_faults_%d", (int)getpid());
    mkdir(dir, 0700);
    make_files();

    static const workflow flows[] = {
        {"parse a model and attach a loss", setup_empty_graph, run_parse, NULL, teardown_all},
        {"plan, forward, backward, summary", setup_parsed, run_plan, NULL, teardown_all},
        {"plan again for another batch", setup_planned, run_plan, NULL, teardown_all},
        {"plan and run with 2 threads", setup_parsed, run_plan_threads, NULL, teardown_all},
        {"profiling", setup_profiling, run_profile, NULL, teardown_all},
        {"load safetensors", setup_tensors, run_tensors_load, NULL, teardown_all},
        {"save safetensors", setup_save, run_tensors_save, check_save_failed, teardown_all},
        {"set up an optimiser and a schedule", setup_planned, run_optimizer, NULL, teardown_all},
        {"save a checkpoint", setup_ck_save, run_ck_save, check_save_failed, teardown_all},
        {"load a checkpoint", setup_ck_load, run_ck_load, check_ck_load_failed, teardown_ck_load},
        {"load data sets and images", setup_dataset, run_dataset, NULL, teardown_all},
        {"save a PNG", setup_png_save, run_png_save, check_save_failed, teardown_all},
    };
    for (size_t i = 0; i < sizeof flows / sizeof flows[0]; i++) {
        TEST(flows[i].name)
        {
            sweep(&flows[i]);
        }
    }
    free(st_bytes);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("  could not remove %s\n", dir);
    return test_finish();
}

#else

int main(void)
{
    printf("test_faults needs the fault-injection build: run make test-faults\n");
    return test_finish();
}

#endif
