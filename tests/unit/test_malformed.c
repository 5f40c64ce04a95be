/* The malformed-input corpus (tests/data/malformed/, written by its
 * make_malformed.py) replayed end to end through the tool: every case must
 * end in exit status 1 with a message naming the file and what is wrong,
 * no crash (a sanitizer build exits 86 on a report), and no output file
 * left behind. Then every prefix of a valid file of each format, which
 * must be rejected with a message, and the inputs the fuzzers once crashed
 * on (fuzz_* files), replayed through the API they crashed. */
#include "test.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static char cnn[512], data[512], out_dir[256], work[256];
static char out[16384];

/* Runs the tool in the corpus folder with args (a shell fragment; $T is the
 * output folder, $W the folder of inputs made at run time). */
static int run(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && T=%s && W=%s && %s %s 2>&1", data, out_dir, work, cnn, args);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    int st = p ? pclose(p) : -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Names of the files in the output folder, or "" when it is empty. */
static const char *leftovers(void)
{
    static char names[1024];
    names[0] = 0;
    DIR *d = opendir(out_dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        size_t u = strlen(names);
        snprintf(names + u, sizeof names - u, "%s ", de->d_name);
    }
    if (d)
        closedir(d);
    return names;
}

static void clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[600];
    while (d && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
}

/* The tool fails cleanly: exit 1 (not a crash, not a sanitizer report),
 * every fragment in its message, and nothing written. */
#define FAILS(args, ...)                                                                           \
    do {                                                                                           \
        int rc_ = run(args);                                                                       \
        CHECKF(rc_ == 1, "cnn %s: exit %d, expected 1; output:\n%s", args, rc_, out);              \
        const char *frags_[] = {__VA_ARGS__, NULL};                                                \
        for (int i_ = 0; frags_[i_]; i_++)                                                         \
            CHECKF(strstr(out, frags_[i_]) != NULL, "cnn %s: output lacks \"%s\":\n%s", args,      \
                   frags_[i_], out);                                                               \
        const char *left_ = leftovers();                                                           \
        CHECKF(!left_[0], "cnn %s: left files behind: %s", args, left_);                          \
        clear_dir(out_dir);                                                                        \
    } while (0)

#define USAGE(args, frag)                                                                          \
    do {                                                                                           \
        int rc_ = run(args);                                                                       \
        CHECKF(rc_ == 2 && strstr(out, frag), "cnn %s: exit %d, expected 2 and \"%s\":\n%s", args, \
               rc_, frag, out);                                                                    \
        const char *left_ = leftovers();                                                           \
        CHECKF(!left_[0], "cnn %s: left files behind: %s", args, left_);                          \
        clear_dir(out_dir);                                                                        \
    } while (0)

#define RUN(f) "run model.txt --input " f " --output $T/y.st"
#define WEIGHTS(f) "run model.txt --input input.safetensors --weights " f " --output $T/y.st"
#define MODEL(f) "run " f " --input input.safetensors --output $T/y.st --backward input.safetensors --grads $T/g.st"
#define TRAIN(d) "train model.txt --data " d " --epochs 1 --save $T/w.st --checkpoint $T/ck.st --quiet"
#define RESUME(c) "train model.txt --data data_good.safetensors --epochs 2 --resume " c " --save $T/w.st --quiet"

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b)
        b[len] = 0; /* model texts are parsed as strings */
    *n = b ? (size_t)len : 0;
    return b;
}

static void write_all(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(n == 0 || fwrite(b, 1, n, f) == n);
    fclose(f);
}

static const char *wp(const char *name)
{
    static char bufs[4][600];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, 600, "%s/%s", work, name);
    return b;
}

static const char *dp(const char *name)
{
    static char bufs[4][600];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, 600, "%s/%s", data, name);
    return b;
}

/* Lengths to try of an n-byte file: every one up to 80, then about 60 more
 * spread over the rest (headers live at the front). */
static size_t next_len(size_t len, size_t n)
{
    if (len < 80)
        return len + 1;
    size_t step = (n - 80) / 60;
    return len + (step ? step : 1);
}

typedef cnn_status (*loader)(const char *path, const char **msg);

static cnn_tensors *g_ts;
static cnn_dataset *g_ds;
static cnn_graph *g_graph;
static cnn_optimizer *g_opt;

static cnn_status load_st(const char *path, const char **msg)
{
    cnn_status st = cnn_tensors_load(g_ts, path);
    *msg = cnn_tensors_errmsg(g_ts);
    return st;
}

static cnn_status load_ds(const char *path, const char **msg)
{
    cnn_status st = cnn_dataset_load(g_ds, path, CNN_SPLIT_TRAIN);
    *msg = cnn_dataset_errmsg(g_ds);
    return st;
}

static cnn_status load_image(const char *path, const char **msg)
{
    float *px = NULL;
    cnn_status st = cnn_image_load(g_ds, path, &px, NULL);
    free(px);
    *msg = cnn_dataset_errmsg(g_ds);
    return st;
}

static cnn_status load_model(const char *path, const char **msg)
{
    cnn_graph_destroy(g_graph);
    g_graph = NULL;
    cnn_status st = cnn_graph_create(&g_graph);
    if (!st)
        st = cnn_graph_load(g_graph, path);
    *msg = cnn_graph_errmsg(g_graph);
    return st;
}

static cnn_status load_ck(const char *path, const char **msg)
{
    cnn_progress p;
    cnn_status st = cnn_checkpoint_load(g_graph, g_opt, &p, path);
    *msg = cnn_graph_errmsg(g_graph);
    return st;
}

/* Writes every prefix of the valid file `src` to `dst` and loads it: each
 * must fail with a message (the whole file must load). */
static void prefixes(const char *what, const char *src, const char *dst, loader load)
{
    size_t n;
    unsigned char *b = read_all(src, &n);
    CHECKF(b != NULL, "%s: cannot read %s", what, src);
    if (!b)
        return;
    int bad = 0, tried = 0;
    for (size_t len = 0; len <= n; len = next_len(len, n)) {
        write_all(dst, b, len);
        const char *msg = "";
        cnn_status st = load(dst, &msg);
        tried++;
        if (len == n ? st != CNN_OK : st == CNN_OK || !msg[0]) {
            if (bad++ < 5)
                printf("  %s: %zu of %zu bytes: status %d, message \"%s\"\n", what, len, n, st, msg);
        }
    }
    CHECKF(bad == 0, "%s: %d of %d prefixes misjudged", what, bad, tried);
    free(b);
}

int main(void)
{
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char cwd[256];
    if (!getcwd(cwd, sizeof cwd))
        return 1;
    snprintf(cnn, sizeof cnn, "%s/%s/cnn", cwd, build);
    snprintf(data, sizeof data, "%s/tests/data/malformed", cwd);
    snprintf(out_dir, sizeof out_dir, "/tmp/cnn_test_malformed_out_%d", (int)getpid());
    snprintf(work, sizeof work, "/tmp/cnn_test_malformed_work_%d", (int)getpid());
    mkdir(out_dir, 0700);
    mkdir(work, 0700);

    TEST("safetensors whose header lies: length, offsets, dtypes, shapes")
    {
        FAILS(RUN("st_truncated.safetensors"), "st_truncated.safetensors", "file truncated?");
        FAILS(RUN("st_short.safetensors"), "st_short.safetensors", "too short");
        FAILS(RUN("st_header_past_end.safetensors"), "header length 1000 exceeds the file");
        FAILS(RUN("st_header_huge.safetensors"), "header length 18446744073709551615 exceeds the limit");
        FAILS(RUN("st_offsets_overlap.safetensors"), "tensor 'b'", "overlaps the previous tensor");
        FAILS(RUN("st_offsets_gap.safetensors"), "tensor 'b'", "leaves a gap");
        FAILS(RUN("st_offsets_reversed.safetensors"), "data_offsets [8, 0]", "F32 shape [2] needs 8");
        FAILS(RUN("st_offsets_past_end.safetensors"), "cover 16 data bytes but the file holds 8");
        FAILS(RUN("st_dtype_unknown.safetensors"), "dtype \"F33\" is unknown");
        FAILS(RUN("st_dtype_unsupported.safetensors"), "dtype \"BOOL\" is not supported");
        FAILS(RUN("st_shape_lies.safetensors"), "cover 60 bytes but F32 shape [1, 1, 4, 4] needs 64");
        FAILS(RUN("st_shape_negative.safetensors"), "shape entry 0 is not a non-negative integer");
        FAILS(RUN("st_bad_json.safetensors"), "invalid JSON");
        FAILS(RUN("st_duplicate.safetensors"), "tensor 'input' appears twice");
        FAILS(RUN("st_not_object.safetensors"), "does not start with '{'");
        FAILS(RUN("st_wrong_name.safetensors"), "no tensor named 'input'");
    }

    TEST("dimension products that overflow and huge sizes are refused before allocating")
    {
        FAILS(RUN("st_shape_overflow.safetensors"), "[4294967296, 4294967296, 4294967296]",
              "more elements than supported");
        /* 1 TiB declared consistently by shape and offsets in an 8-byte file. */
        FAILS(RUN("st_huge_tensor.safetensors"), "cover 1099511627776 data bytes but the file holds 8");
        FAILS(MODEL("model_overflow.txt"), "model_overflow.txt:1:19:", "integer overflow");
        FAILS(MODEL("model_too_large.txt"), "model_too_large.txt:1:8:", "is too large");
        FAILS(TRAIN("idx_huge_header"), "60000 x 60000 x 60000", "4 GiB");
        /* A tiny gzip file cannot decompress to the 4 GiB its header declares. */
        FAILS(TRAIN("idx_gzip_huge"), "idx_gzip_huge/train-images-idx3-ubyte.gz",
              "more than a gzip file of");
    }

    TEST("weights whose names, shapes or dtypes do not match the model")
    {
        FAILS(WEIGHTS("weights_extra_key.safetensors"), "unexpected key '4.weight'");
        FAILS(WEIGHTS("weights_missing_key.safetensors"), "missing key '3.bias'");
        FAILS(WEIGHTS("weights_wrong_shape.safetensors"), "'3.weight'", "[3, 9]", "[3, 8]");
        FAILS(WEIGHTS("weights_wrong_dtype.safetensors"), "'3.bias' has dtype I64");
        FAILS(WEIGHTS("st_truncated.safetensors"), "st_truncated.safetensors", "truncated");
    }

    TEST("model files: syntax, unknown modules and arguments, wrong types, binary, empty")
    {
        FAILS(MODEL("model_syntax.txt"), "model_syntax.txt:2:5:", "never closed");
        FAILS(MODEL("model_unknown_module.txt"), "model_unknown_module.txt:2:1:", "unknown module 'Relu'",
              "did you mean 'ReLU'");
        FAILS(MODEL("model_unknown_arg.txt"), "model_unknown_arg.txt:1:17:",
              "unexpected keyword argument 'strides'");
        FAILS(MODEL("model_duplicate_arg.txt"), "model_duplicate_arg.txt:1:28:",
              "multiple values for argument 'padding'");
        FAILS(MODEL("model_wrong_type.txt"), "model_wrong_type.txt:1:26:", "must be an int", "a string");
        FAILS(MODEL("model_binary.txt"), "model_binary.txt", "NUL byte");
        FAILS(MODEL("model_empty.txt"), "model_empty.txt", "no modules");
        FAILS(MODEL("model_nested.txt"), "model_nested.txt:1:", "nested too deeply");
        FAILS(MODEL("model_shape_mismatch.txt"), "model_shape_mismatch.txt:3:", "node '2' (Linear)",
              "in_features is 9");
        FAILS(MODEL("model_empty_parameter.txt"), "model_empty_parameter.txt:1:", "LayerNorm");
        FAILS(MODEL("no_such_model.txt"), "no_such_model.txt", "cannot open");
    }

    TEST("IDX folders: wrong magic, counts, truncation, empty, label range")
    {
        FAILS(TRAIN("idx_bad_magic"), "idx_bad_magic/train-images-idx3-ubyte", "not an IDX file",
              "08 00 00 03");
        FAILS(TRAIN("idx_gzip_unnamed"), "the file is gzipped, so its name should end in .gz");
        FAILS(TRAIN("idx_count_mismatch"), "2 labels, but", "holds 3 images");
        FAILS(TRAIN("idx_truncated"), "idx_truncated/train-images-idx3-ubyte", "(truncated)");
        FAILS(TRAIN("idx_empty"), "declares 0 images", "cannot be empty");
        FAILS(TRAIN("idx_label_range"), "label 10 at index 1 is out of range");
    }

    TEST("labels out of range for the model, empty and inconsistent data sets (cnn train)")
    {
        FAILS(TRAIN("idx_label_model_range"), "labels up to 9", "model.txt gives 3 outputs");
        FAILS(TRAIN("data_label_range.safetensors"), "labels up to 5", "gives 3 outputs");
        FAILS(TRAIN("data_negative_label.safetensors"), "class index -1");
        FAILS(TRAIN("data_empty.safetensors"), "\"x\" holds no samples");
        FAILS(TRAIN("data_count_mismatch.safetensors"), "\"x\" holds 2 samples", "\"y\" holds 3 targets");
        FAILS(TRAIN("data_nan.safetensors"), "\"x\" of sample 1 holds nan");
        FAILS(TRAIN("st_truncated.safetensors"), "st_truncated.safetensors", "truncated");
        FAILS(TRAIN("no_such_data"), "no_such_data", "cannot open");
        FAILS("train model.txt --data data_good.safetensors --test idx_truncated --epochs 1 --save $T/w.st",
              "idx_truncated");
    }

    TEST("CIFAR-10 and image folders: truncated, labels beyond the names, corrupt images")
    {
        FAILS(TRAIN("cifar_truncated"), "data_batch_1.bin: 4073 bytes is not a whole");
        FAILS(TRAIN("cifar_label_range"), "test_batch.bin: record 1 has label 7",
              "expected 0..1 for 2 classes");
        FAILS(TRAIN("images_truncated"), "images_truncated/b/cut.png", "corrupt PNG", "truncated");
        FAILS(TRAIN("images_bad_jpeg"), "images_bad_jpeg/b/bad.jpg", "corrupt JPEG");
        FAILS(TRAIN("images_unsupported"), "picture.bmp", "not supported");
        FAILS(TRAIN("images_none"), "images_none/a", "holds no images");
        FAILS(TRAIN("images_png_huge"), "images_png_huge/a/big.png", "more pixels than the file can hold");
    }

    TEST("checkpoints: truncated, not a checkpoint, other version, other model, bad progress")
    {
        FAILS(RESUME("ck_not_checkpoint.safetensors"), "not a cnn checkpoint");
        FAILS(RESUME("ck_other_version.safetensors"), "checkpoint format version '99'");
        FAILS(RESUME("ck_no_progress.safetensors"), "ck_no_progress.safetensors", "no generator state");
        FAILS(RESUME("no_such_checkpoint"), "no_such_checkpoint", "cannot open");
        /* Cut and altered from a real checkpoint, whose layout depends on the
         * optimiser: made here. */
        int rc = run("train model.txt --data data_good.safetensors --epochs 1 --checkpoint $W/good.ck --quiet");
        CHECKF(rc == 0, "making a checkpoint: exit %d\n%s", rc, out);
        size_t n;
        unsigned char *b = read_all(wp("good.ck"), &n);
        CHECK(b && n > 100);
        if (b) {
            write_all(wp("truncated.ck"), b, n - 7);
            FAILS(RESUME("$W/truncated.ck"), "truncated.ck", "file truncated?");
            write_all(wp("header_only.ck"), b, 100);
            FAILS(RESUME("$W/header_only.ck"), "header_only.ck");
            free(b);
        }
        cnn_tensors *ts;
        cnn_tensors_create(&ts);
        CHECK(cnn_tensors_load(ts, wp("good.ck")) == CNN_OK);
        CHECK(cnn_tensors_set_meta(ts, "cnn.epoch", "-3") == CNN_OK);
        CHECK(cnn_tensors_save(ts, wp("negative.ck")) == CNN_OK);
        FAILS(RESUME("$W/negative.ck"), "negative.ck", "epoch -3");
        CHECK(cnn_tensors_set_meta(ts, "cnn.epoch", "1") == CNN_OK);
        CHECK(cnn_tensors_set_meta(ts, "cnn.step", "9223372036854775807") == CNN_OK);
        CHECK(cnn_tensors_save(ts, wp("huge_step.ck")) == CNN_OK);
        FAILS(RESUME("$W/huge_step.ck"), "huge_step.ck", "step 9223372036854775807");
        cnn_tensors_destroy(ts);
        /* A checkpoint of another model, and of another optimiser. */
        write_all(wp("other.txt"), "Conv2d(1, 3, 3)\nReLU()\nFlatten()\nLinear(12, 3)\n", 47);
        rc = run("train $W/other.txt --data data_good.safetensors --epochs 1 --checkpoint $W/other.ck --quiet");
        CHECKF(rc == 0, "making a checkpoint of another model: exit %d\n%s", rc, out);
        FAILS(RESUME("$W/other.ck"), "other.ck", "0.weight");
        rc = run("train model.txt --data data_good.safetensors --epochs 1 --optimizer adam "
                 "--checkpoint $W/adam.ck --quiet");
        CHECKF(rc == 0, "making an Adam checkpoint: exit %d\n%s", rc, out);
        FAILS(RESUME("$W/adam.ck"), "adam.ck", "Adam");
    }

    TEST("command lines: bad numbers and missing values exit 2 and write nothing")
    {
        USAGE("train model.txt --data data_good.safetensors --epochs -1 --save $T/w.st", "--epochs");
        USAGE("train model.txt --data data_good.safetensors --batch-size 0 --save $T/w.st", "--batch-size");
        USAGE("train model.txt --data data_good.safetensors --lr nan --save $T/w.st", "--lr");
        USAGE("train model.txt --data data_good.safetensors --lr 1e999 --save $T/w.st", "--lr");
        USAGE("train model.txt --data data_good.safetensors --threads 100000 --save $T/w.st", "--threads");
        USAGE("train model.txt --data data_good.safetensors --seed 18446744073709551616", "--seed");
        USAGE("train model.txt --data data_good.safetensors --save", "--save");
        USAGE("train model.txt --data data_good.safetensors --optimizer 'SGD(lr=0.1' --save $T/w.st",
              "never closed");
        USAGE("run model.txt --input input.safetensors --output $T/y.st --threads x", "--threads");
    }

    g_ts = NULL;
    cnn_tensors_create(&g_ts);

    TEST("files of 200000 names, metadata entries or modules are refused in seconds, not hours")
    {
        /* A 10 MB header is far below the 100 MB limit; checking its names
         * pairwise once took minutes (quadratic). Generated here rather than
         * committed. */
        int n = 200000;
        size_t cap = (size_t)n * 64 + 64, len = 8;
        char *b = malloc(cap);
        len += (size_t)snprintf(b + len, cap - len, "{");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(b + len, cap - len, "%s\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],"
                                    "\"data_offsets\":[0,0]}", i ? "," : "", i);
        len += (size_t)snprintf(b + len, cap - len, "}");
        for (int i = 0; i < 8; i++)
            b[i] = (char)((uint64_t)(len - 8) >> (8 * i));
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cnn_status st = cnn_tensors_load_buffer(g_ts, b, len, "many.safetensors");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        CHECKF(st == CNN_OK && cnn_tensors_count(g_ts) == n, "%d names: status %d, %d tensors: %s", n, st,
               cnn_tensors_count(g_ts), cnn_tensors_errmsg(g_ts));
        CHECKF(secs < 20, "%d names took %.1f s", n, secs);
        /* The same with one name twice, at the end. */
        const char *dup = ",\"t7\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}";
        memcpy(b + len - 1, dup, strlen(dup));
        len += strlen(dup) - 1;
        for (int i = 0; i < 8; i++)
            b[i] = (char)((uint64_t)(len - 8) >> (8 * i));
        CHECK_ERR(cnn_tensors_load_buffer(g_ts, b, len, "many.safetensors"), CNN_ERR_FORMAT,
                  cnn_tensors_errmsg(g_ts), "tensor 't7' appears twice");
        /* Metadata entries are bounded. */
        len = 8 + (size_t)snprintf(b + 8, cap - 8, "{\"__metadata__\":{");
        for (int i = 0; i < 20000; i++)
            len += (size_t)snprintf(b + len, cap - len, "%s\"k%d\":\"v\"", i ? "," : "", i);
        len += (size_t)snprintf(b + len, cap - len, "}}");
        for (int i = 0; i < 8; i++)
            b[i] = (char)((uint64_t)(len - 8) >> (8 * i));
        CHECK_ERR(cnn_tensors_load_buffer(g_ts, b, len, "meta.safetensors"), CNN_ERR_FORMAT,
                  cnn_tensors_errmsg(g_ts), "__metadata__ has 20000 entries");
        /* A checkpoint (format, generators, progress) carrying 200000 names
         * the model does not have. */
        len = 8 + (size_t)snprintf(b + 8, cap - 8,
                                   "{\"__metadata__\":{\"format\":\"cnn-checkpoint\",\"format_version\":\"1\","
                                   "\"cnn.epoch\":\"0\",\"cnn.step\":\"0\"},"
                                   "\"cnn.rng.init\":{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[0,32]},"
                                   "\"cnn.rng.run\":{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[32,64]},"
                                   "\"cnn.rng.data\":{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[64,96]}");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(b + len, cap - len, ",\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],"
                                    "\"data_offsets\":[96,96]}", i);
        len += (size_t)snprintf(b + len, cap - len, "}");
        for (int i = 0; i < 8; i++)
            b[i] = (char)((uint64_t)(len - 8) >> (8 * i));
        memset(b + len, 1, 96);
        write_all(wp("many.ck"), b, len + 96);
        cnn_graph *g;
        cnn_graph_create(&g);
        CHECK(cnn_graph_load(g, dp("model.txt")) == CNN_OK);
        cnn_progress p;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_ERR(cnn_checkpoint_load(g, NULL, &p, wp("many.ck")), CNN_ERR_NOT_FOUND, cnn_graph_errmsg(g),
                  "many.ck", "missing key '0.weight'");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        CHECKF(secs < 20, "a checkpoint of %d names took %.1f s", n, secs);
        cnn_graph_destroy(g);
        /* A model file of 200000 modules stops at the bound. */
        len = 0;
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(b + len, cap - len, "ReLU()\n");
        cnn_graph_create(&g);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_ERR(cnn_graph_parse(g, b, "relus.txt"), CNN_ERR_CONFIG, cnn_graph_errmsg(g),
                  "relus.txt:10001:1:", "more than 10000 modules");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        CHECKF(secs < 20, "a model of %d modules took %.1f s to refuse", n, secs);
        cnn_graph_destroy(g);
        free(b);
    }
    cnn_dataset_create(&g_ds);

    TEST("every prefix of a valid safetensors, IDX, CIFAR-10, PNG and JPEG file is rejected")
    {
        prefixes("safetensors", dp("data_good.safetensors"), wp("p.safetensors"), load_st);
        /* IDX: an images and a labels file, each cut in turn. */
        char dir[600], cmd[1400];
        snprintf(dir, sizeof dir, "%s/idx", work);
        mkdir(dir, 0700);
        snprintf(cmd, sizeof cmd, "cp %s/idx_label_model_range/* %s/", data, dir);
        CHECK(system(cmd) == 0);
        char img[700], lab[700], keep[700];
        snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", dir);
        snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte", dir);
        snprintf(keep, sizeof keep, "%s/images.keep", work);
        rename(img, keep);
        size_t n;
        unsigned char *b = read_all(keep, &n);
        int bad = 0;
        for (size_t len = 0; b && len < n; len++) {
            write_all(img, b, len);
            const char *msg;
            if (load_ds(dir, &msg) == CNN_OK || !msg[0] || !strstr(msg, "train-images"))
                bad++;
        }
        if (b)
            write_all(img, b, n);
        free(b);
        b = read_all(lab, &n);
        for (size_t len = 0; b && len < n; len++) {
            write_all(lab, b, len);
            const char *msg;
            if (load_ds(dir, &msg) == CNN_OK || !msg[0] || !strstr(msg, "train-labels"))
                bad++;
        }
        if (b)
            write_all(lab, b, n);
        free(b);
        const char *msg;
        CHECKF(load_ds(dir, &msg) == CNN_OK, "the whole IDX set: %s", msg);
        CHECKF(bad == 0, "IDX: %d prefixes misjudged", bad);
        /* CIFAR-10: a test batch of two records. */
        snprintf(dir, sizeof dir, "%s/cifar", work);
        mkdir(dir, 0700);
        unsigned char rec[2 * 3073];
        memset(rec, 9, sizeof rec);
        rec[0] = 3;
        rec[3073] = 1;
        char batch[700];
        snprintf(batch, sizeof batch, "%s/test_batch.bin", dir);
        bad = 0;
        for (size_t len = 0; len <= sizeof rec; len += len < 16 ? 1 : 397) {
            write_all(batch, rec, len);
            cnn_status st = cnn_dataset_load(g_ds, dir, CNN_SPLIT_TEST);
            if ((len == 3073 || len == 2 * 3073) ? st != CNN_OK : st == CNN_OK || !cnn_dataset_errmsg(g_ds)[0])
                bad++;
        }
        CHECKF(bad == 0, "CIFAR-10: %d prefixes misjudged", bad);
#ifdef CNN_HAVE_PNG
        prefixes("PNG", dp("valid.png"), wp("p.png"), load_image);
#endif
#ifdef CNN_HAVE_JPEG
        prefixes("JPEG", dp("valid.jpg"), wp("p.jpg"), load_image);
#endif
    }

    TEST("every prefix of a valid checkpoint is rejected and changes nothing")
    {
        CHECK(cnn_graph_create(&g_graph) == CNN_OK && cnn_optimizer_create(&g_opt) == CNN_OK);
        CHECK(cnn_graph_load(g_graph, dp("model.txt")) == CNN_OK);
        CHECK(cnn_graph_set_loss(g_graph, "CrossEntropyLoss()") == CNN_OK);
        CHECK(cnn_optimizer_init(g_opt, g_graph, "SGD(lr=0.01)") == CNN_OK);
        cnn_tensors *before, *after;
        cnn_tensors_create(&before);
        cnn_tensors_create(&after);
        CHECK(cnn_graph_save_state(g_graph, before) == CNN_OK);
        prefixes("checkpoint", wp("good.ck"), wp("p.ck"), load_ck);
        /* The last (whole) load succeeded; reload the initial state and check
         * that a failed load in between left it alone. */
        CHECK(cnn_graph_load_state(g_graph, before) == CNN_OK);
        write_all(wp("p.ck"), "12345678{}", 10);
        const char *msg;
        CHECK(load_ck(wp("p.ck"), &msg) != CNN_OK);
        CHECK(cnn_graph_save_state(g_graph, after) == CNN_OK);
        for (int i = 0; i < cnn_tensors_count(before); i++) {
            cnn_tensor_info a, c;
            cnn_tensors_get(before, i, &a);
            cnn_tensors_get(after, i, &c);
            CHECKF(a.nbytes == c.nbytes && !memcmp(a.data, c.data, a.nbytes), "'%s' changed", a.name);
        }
        cnn_tensors_destroy(before);
        cnn_tensors_destroy(after);
        cnn_optimizer_destroy(g_opt);
        cnn_graph_destroy(g_graph);
        g_graph = NULL;
    }

    TEST("every prefix of a model file fails with a file:line message or parses")
    {
        size_t n;
        unsigned char *b = read_all(dp("model.txt"), &n);
        int bad = 0;
        for (size_t len = 0; b && len <= n; len++) {
            write_all(wp("p.txt"), b, len);
            const char *msg;
            cnn_status st = load_model(wp("p.txt"), &msg);
            if (st != CNN_OK && (!msg[0] || !strstr(msg, "p.txt")))
                bad++;
        }
        free(b);
        cnn_graph_destroy(g_graph);
        g_graph = NULL;
        CHECKF(bad == 0, "model: %d prefixes failed without naming the file", bad);
    }

    TEST("inputs the fuzzers crashed on (fuzz_*) are replayed through the API")
    {
        DIR *d = opendir(data);
        struct dirent *de;
        int replayed = 0;
        while (d && (de = readdir(d)) != NULL) {
            const char *name = de->d_name;
            if (strncmp(name, "fuzz_", 5) != 0)
                continue;
            replayed++;
            const char *msg;
            if (!strncmp(name, "fuzz_safetensors_", 17)) {
                size_t n;
                unsigned char *b = read_all(dp(name), &n);
                cnn_status st = cnn_tensors_load_buffer(g_ts, b, n, name);
                CHECKF(st != CNN_OK && cnn_tensors_errmsg(g_ts)[0], "%s: status %d", name, st);
                free(b);
            } else if (!strncmp(name, "fuzz_model_", 11)) {
                /* As the fuzz target does: parse the text up to its first NUL,
                 * plan for small shapes, run forward and backward. */
                size_t n;
                char *b = (char *)read_all(dp(name), &n);
                cnn_graph *g;
                cnn_graph_create(&g);
                if (b && cnn_graph_parse(g, b, name) == CNN_OK) {
                    static const cnn_shape shapes[] = {{4, {2, 3, 8, 8}}, {3, {1, 1, 5}}, {3, {2, 0, 8}}};
                    for (int k = 0; k < 3; k++) {
                        cnn_status st = cnn_graph_plan(g, 1, &shapes[k], NULL, CNN_PLAN_BACKWARD | CNN_PLAN_INPUT_GRAD);
                        if (st == CNN_OK && cnn_graph_forward(g, 1) == CNN_OK) {
                            float *gy = cnn_graph_output_grad(g, 0);
                            cnn_shape s;
                            cnn_graph_output(g, 0, NULL, &s, NULL);
                            int64_t m = 1;
                            for (int i = 0; i < s.ndim; i++)
                                m *= s.dims[i];
                            for (int64_t i = 0; gy && i < m; i++)
                                gy[i] = 1;
                            st = cnn_graph_backward(g);
                        }
                        CHECKF(st == CNN_OK || cnn_graph_errmsg(g)[0], "%s: status %d without a message",
                               name, st);
                    }
                }
                cnn_graph_destroy(g);
                free(b);
            } else if (!strncmp(name, "fuzz_checkpoint_", 16)) {
                cnn_graph_create(&g_graph);
                cnn_optimizer_create(&g_opt);
                cnn_graph_load(g_graph, dp("model.txt"));
                cnn_optimizer_init(g_opt, g_graph, "SGD(lr=0.01)");
                cnn_status st = load_ck(dp(name), &msg);
                CHECKF(st != CNN_OK && msg[0], "%s: status %d", name, st);
                cnn_optimizer_destroy(g_opt);
                cnn_graph_destroy(g_graph);
                g_graph = NULL;
            } else if (!strncmp(name, "fuzz_options_", 13)) {
                /* As the fuzz target does: loss, optimiser and schedule specs
                 * (NUL-separated), then schedule steps; each call succeeds or
                 * fails with a message. */
                size_t n;
                char *b = (char *)read_all(dp(name), &n);
                char *t = calloc(n + 3, 1);
                if (b)
                    memcpy(t, b, n);
                const char *loss = t, *optim = loss + strlen(loss) + 1;
                if (optim > t + n)
                    optim = "";
                const char *sched = optim + strlen(optim) + 1;
                if (sched > t + n)
                    sched = "";
                cnn_graph *g;
                cnn_optimizer *o;
                cnn_graph_create(&g);
                cnn_optimizer_create(&o);
                if (cnn_graph_parse(g, "Linear(4, 3)\n", "m.txt") == CNN_OK && cnn_graph_set_loss(g, loss) == CNN_OK &&
                    cnn_optimizer_init(o, g, optim) == CNN_OK) {
                    cnn_status st = sched[0] ? cnn_optimizer_set_schedule(o, sched) : CNN_OK;
                    for (int k = 0; k < 5 && st == CNN_OK; k++)
                        st = cnn_optimizer_schedule_step(o);
                    CHECKF(st == CNN_OK || cnn_optimizer_errmsg(o)[0], "%s: status %d without a message", name, st);
                }
                cnn_optimizer_destroy(o);
                cnn_graph_destroy(g);
                free(t);
                free(b);
            } else {
                CHECKF(0, "%s: no replay rule for this fuzz target", name);
            }
        }
        if (d)
            closedir(d);
        CHECK(replayed >= 2);
    }

    cnn_tensors_destroy(g_ts);
    cnn_dataset_destroy(g_ds);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", out_dir, work);
    if (system(cmd) != 0)
        printf("  could not remove %s and %s\n", out_dir, work);
    return test_finish();
}
