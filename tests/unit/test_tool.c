/* Every subcommand of the tool as a user meets it: what train, eval,
 * predict, summary, bench, plot and viz print and write (numbers, lines,
 * files), and their errors: exit status, a message naming the file and what
 * was expected, and no output file left behind or an earlier one lost.
 * Runs in a temporary folder on small data sets it writes there and on the
 * 2,000-image Fashion-MNIST subset in data/. */
#include "test.h"
#include "io/json.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256], cnn[512];
static char out[1 << 17], err[1 << 16];

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* ---- running the tool ------------------------------------------------------ */

static size_t slurp(FILE *f, char *buf, size_t cap)
{
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    return n;
}

/* Runs `cnn args` (a shell fragment) in the temporary folder. With merge,
 * stdout and stderr both go to out; otherwise stdout to out and stderr to
 * err. Returns the exit status (128 + signal if killed). */
static int run_io(const char *args, int merge)
{
    char cmd[4096];
    if (merge)
        snprintf(cmd, sizeof cmd, "cd %s && %s %s 2>&1", dir, cnn, args);
    else
        snprintf(cmd, sizeof cmd, "cd %s && %s %s 2>%s/.stderr", dir, cnn, args, dir);
    FILE *p = popen(cmd, "r");
    slurp(p, out, sizeof out);
    int st = p ? pclose(p) : -1;
    err[0] = 0;
    if (!merge) {
        char path[512];
        snprintf(path, sizeof path, "%s/.stderr", dir);
        FILE *f = fopen(path, "r");
        slurp(f, err, sizeof err);
        if (f)
            fclose(f);
        unlink(path);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run(const char *args) { return run_io(args, 1); }

/* The exit status is code and the output (stdout and stderr) holds every
 * fragment. */
#define EXPECT(args, code, ...)                                                                    \
    do {                                                                                           \
        int rc_ = run(args);                                                                       \
        CHECKF(rc_ == (code), "cnn %s: exit %d, expected %d; output:\n%s", args, rc_, code, out);  \
        const char *frags_[] = {__VA_ARGS__, NULL};                                                \
        for (int i_ = 0; frags_[i_]; i_++)                                                         \
            CHECKF(strstr(out, frags_[i_]) != NULL, "cnn %s: output lacks \"%s\":\n%s", args,      \
                   frags_[i_], out);                                                               \
    } while (0)

/* ---- files in the temporary folder ------------------------------------------ */

static const char *tp(const char *name)
{
    static char paths[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(paths[k], sizeof paths[k], "%s/%s", dir, name);
    return paths[k];
}

static int exists(const char *name)
{
    struct stat st;
    return stat(tp(name), &st) == 0;
}

/* The whole file, NUL-terminated (free()), or NULL. */
static char *read_all(const char *name, size_t *len)
{
    FILE *f = fopen(tp(name), "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

static int same_file(const char *a, const char *b)
{
    size_t na, nb;
    char *x = read_all(a, &na), *y = read_all(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static int has_content(const char *name, const char *text)
{
    char *s = read_all(name, NULL);
    int ok = s && strcmp(s, text) == 0;
    free(s);
    return ok;
}

static void write_bytes(const char *name, const void *data, size_t n)
{
    FILE *f = fopen(tp(name), "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static void write_text(const char *name, const char *text) { write_bytes(name, text, strlen(text)); }

/* Names of files in the folder that contain `part` (temporary files of an
 * atomic write are "NAME.tmp.*"); 0 if none. */
static int count_names_with(const char *sub, const char *part)
{
    DIR *d = opendir(tp(sub));
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, part) != NULL;
    if (d)
        closedir(d);
    return n;
}

static int count_lines(const char *s, const char *prefix)
{
    int n = 0;
    for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, prefix, strlen(prefix)) == 0;
    return n;
}

static int count_occurrences(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        n++;
    return n;
}

/* An MNIST-style IDX pair prefix-images-idx3-ubyte / prefix-labels-idx1-ubyte
 * (uncompressed) in folder sub: n_img images of h x w, n_lab labels k % 10
 * except the last, which is last_label when >= 0; the image file loses its
 * last `cut` bytes. */
static void write_idx(const char *sub, const char *prefix, int n_img, int n_lab, int h, int w, int last_label,
                      int cut)
{
    mkdir(tp(sub), 0700);
    size_t n = 16 + (size_t)n_img * (size_t)(h * w);
    unsigned char *b = malloc(n > 8 + (size_t)n_lab ? n : 8 + (size_t)n_lab);
    unsigned char head[16] = {0, 0, 8, 3, 0, 0, (unsigned char)(n_img >> 8), (unsigned char)n_img, 0, 0, 0,
                              (unsigned char)h, 0, 0, 0, (unsigned char)w};
    memcpy(b, head, 16);
    for (size_t i = 16; i < n; i++)
        b[i] = (unsigned char)(i * 7 % 251);
    char name[256];
    snprintf(name, sizeof name, "%s/%s-images-idx3-ubyte", sub, prefix);
    write_bytes(name, b, n - (size_t)cut);
    unsigned char lh[8] = {0, 0, 8, 1, 0, 0, (unsigned char)(n_lab >> 8), (unsigned char)n_lab};
    memcpy(b, lh, 8);
    for (int i = 0; i < n_lab; i++)
        b[8 + i] = (unsigned char)(i % 10);
    if (last_label >= 0)
        b[8 + n_lab - 1] = (unsigned char)last_label;
    snprintf(name, sizeof name, "%s/%s-labels-idx1-ubyte", sub, prefix);
    write_bytes(name, b, 8 + (size_t)n_lab);
    free(b);
}

/* A safetensors data file: x float32 n x c x h x w, y int64 labels k % classes
 * except the last, which is last_label when >= 0. */
static void write_xy(const char *name, int n, int c, int h, int w, int classes, int last_label)
{
    cnn_tensors *ts;
    cnn_tensors_create(&ts);
    cnn_shape xs = {4, {n, c, h, w}}, ys = {1, {n}};
    float *x;
    int64_t *y;
    cnn_tensors_add(ts, "x", CNN_F32, &xs, NULL, (void **)&x);
    cnn_tensors_add(ts, "y", CNN_I64, &ys, NULL, (void **)&y);
    for (int64_t i = 0; i < (int64_t)n * c * h * w; i++)
        x[i] = (float)((i * 13) % 17) / 17.0f;
    for (int i = 0; i < n; i++)
        y[i] = i % classes;
    if (last_label >= 0)
        y[n - 1] = last_label;
    cnn_tensors_save(ts, tp(name));
    cnn_tensors_destroy(ts);
}

/* The pixels of test image `seed` (h x w bytes, as floats byte / 255). */
static void image_pixels(float *v, int h, int w, int seed)
{
    for (int i = 0; i < h * w; i++)
        v[i] = (float)((i * (seed + 3) + seed * 41) % 256) / 255.0f;
}

static void write_png(const char *name, int h, int w, int seed)
{
    float *v = malloc(sizeof(float) * (size_t)(h * w));
    image_pixels(v, h, w, seed);
    cnn_dataset *io;
    cnn_dataset_create(&io);
    cnn_shape s = {2, {h, w}};
    if (cnn_image_save_png(io, tp(name), v, &s, 0.0f, 1.0f))
        printf("  cannot write %s: %s\n", name, cnn_dataset_errmsg(io));
    cnn_dataset_destroy(io);
    free(v);
}

/* A tensor 'name' of shape (n, 1, h, w) holding the pixels of test images
 * seed, seed + 1, ... */
static void write_images_tensor(const char *file, const char *name, int n, int h, int w, int seed)
{
    cnn_tensors *ts;
    cnn_tensors_create(&ts);
    cnn_shape s = {4, {n, 1, h, w}};
    float *x;
    cnn_tensors_add(ts, name, CNN_F32, &s, NULL, (void **)&x);
    for (int i = 0; i < n; i++)
        image_pixels(x + (size_t)i * (size_t)(h * w), h, w, seed + i);
    cnn_tensors_save(ts, tp(file));
    cnn_tensors_destroy(ts);
}

/* ---- reading what the tool wrote ---------------------------------------------- */

static int parse_json(const char *text, cnni_json *j)
{
    cnn_err e;
    memset(&e, 0, sizeof e);
    if (!text || cnni_json_parse(text, strlen(text), j, &e)) {
        printf("  not JSON (%s): %.300s\n", e.msg, text ? text : "(null)");
        memset(j, 0, sizeof *j);
        return 0;
    }
    return 1;
}

static double jnum(const cnni_json *o, const char *key)
{
    const cnni_json *v = o ? cnni_json_get(o, key) : NULL;
    return v && v->type == CNNI_JNUM ? v->num : NAN;
}

/* The loss and accuracy of "... loss L acc A%" after `key` in line. */
static int loss_acc(const char *line, const char *key, double *loss, double *acc)
{
    const char *p = strstr(line, key);
    return p && sscanf(p + strlen(key), " loss %lf acc %lf%%", loss, acc) == 2;
}

/* One line of predict's output after "FILE: ": up to max entries
 * "k (name) p%" separated by ", ". Returns the count. */
static int parse_prediction(const char *line, int64_t *cls, double *prob, char (*names)[32], int max)
{
    const char *p = strstr(line, ": ");
    int n = 0;
    if (!p)
        return 0;
    p += 2;
    while (n < max) {
        long long k;
        int used;
        if (sscanf(p, "%lld%n", &k, &used) != 1)
            break;
        p += used;
        names[n][0] = 0;
        if (!strncmp(p, " (", 2)) {
            const char *close = strchr(p, ')');
            if (!close)
                break;
            snprintf(names[n], sizeof names[n], "%.*s", (int)(close - p - 2), p + 2);
            p = close + 1;
        }
        if (sscanf(p, " %lf%%%n", &prob[n], &used) != 1)
            break;
        cls[n++] = k;
        p += used;
        if (strncmp(p, ", ", 2))
            break;
        p += 2;
    }
    return n;
}

/* The line of text starting with prefix, copied into buf; 0 if none. */
static int find_line(const char *text, const char *prefix, char *buf, size_t n)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, prefix, strlen(prefix))) {
            const char *e = strchr(p, '\n');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            snprintf(buf, n, "%.*s", (int)len, p);
            return 1;
        }
    return 0;
}

/* Runs the tool in the background (stdout and stderr to `log`), waits until
 * file `wait_for` appears, sends SIGINT and returns the exit status; -1 if
 * the run ended before the file appeared. */
static int run_interrupted(const char *args, const char *wait_for, const char *log)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && exec %s %s >%s 2>&1", dir, cnn, args, log);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st, done = 0;
    for (int i = 0; i < 200000 && !done; i++) {
        if (exists(wait_for))
            break;
        done = waitpid(pid, &st, WNOHANG) == pid;
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    if (done)
        return -1;
    kill(pid, SIGINT);
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- the tests -------------------------------------------------------------------- */

/* A small network with every kind of state_dict entry: parameters, running
 * statistics and num_batches_tracked. */
static const char *small_model = "Conv2d(1, 4, 3, stride=2)\nBatchNorm2d(4)\nReLU()\nFlatten()\nLinear(4 * 13 * 13, 10)\n";
static const char *const small_names[9] = {"0.weight",       "0.bias",        "1.weight",
                                           "1.bias",         "1.running_mean", "1.running_var",
                                           "1.num_batches_tracked", "4.weight", "4.bias"};

/* What train printed as the final test accuracy of s.st. */
static double trained_test_acc = NAN;

static void test_help(void)
{
    TEST("every command: --help, --version, unknown command")
    {
        static const char *const cmds[] = {"train", "eval", "predict", "run", "summary", "bench", "plot", "viz"};
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
            char args[64], want[64];
            snprintf(args, sizeof args, "%s --help", cmds[i]);
            snprintf(want, sizeof want, "usage: cnn %s", cmds[i]);
            EXPECT(args, 0, want);
            snprintf(args, sizeof args, "help %s", cmds[i]);
            EXPECT(args, 0, want);
            /* --help wins over a wrong command line */
            snprintf(args, sizeof args, "%s --bogus --help", cmds[i]);
            EXPECT(args, 0, want);
        }
        char want[64];
        snprintf(want, sizeof want, "cnn %s\n", cnn_version());
        EXPECT("--version", 0, want);
        CHECK(strcmp(out, want) == 0);
        EXPECT("--help", 0, "usage: cnn COMMAND", "train", "eval", "predict", "summary", "bench", "plot", "viz",
               "exit status");
        EXPECT("frobnicate", 2, "unknown command 'frobnicate'", "usage");
        EXPECT("", 2, "usage");
    }
}

static void test_train(void)
{
    TEST("train: a header, one line per epoch, --save, --metrics")
    {
        EXPECT("train small.txt --data fm --epochs 2 --batch-size 100 --seed 1 --threads 2 --save s.st "
               "--metrics m.jsonl",
               0, "training small.txt on fm: 2000 samples (and a test set), batch 100, SGD(lr=0.01), "
                  "CrossEntropyLoss(); 2 threads, ",
               "model saved to s.st\n");
        CHECK(count_lines(out, "training ") == 1 && count_lines(out, "epoch ") == 2);
        char l1[512] = "", l2[512] = "";
        double trl[2] = {0}, tra[2] = {0}, tel[2] = {0}, tea[2] = {0}, final_acc = -1;
        CHECK(find_line(out, "epoch 1/2: ", l1, sizeof l1) && find_line(out, "epoch 2/2: ", l2, sizeof l2));
        const char *lines[2] = {l1, l2};
        for (int e = 0; e < 2; e++) {
            CHECKF(loss_acc(lines[e], "train", &trl[e], &tra[e]) && loss_acc(lines[e], "test", &tel[e], &tea[e]),
                   "epoch line: %s", lines[e]);
            CHECKF(trl[e] > 0 && trl[e] < 3 && tra[e] >= 0 && tra[e] <= 100 && tel[e] > 0 && tea[e] >= 0 &&
                       tea[e] <= 100 && strstr(lines[e], ", lr 0.01, ") && strstr(lines[e], " img/s, "),
                   "epoch line: %s", lines[e]);
        }
        /* Ten classes: better than chance after two epochs, the loss falling. */
        CHECKF(tea[1] > 20 && trl[1] < trl[0], "%s\n%s", l1, l2);
        char fin[128];
        CHECK(find_line(out, "test accuracy: ", fin, sizeof fin) && sscanf(fin, "test accuracy: %lf%%", &final_acc) == 1);
        CHECKF(fabs(final_acc - tea[1]) < 1e-9, "final %s vs last epoch's test acc %.2f", fin, tea[1]);
        trained_test_acc = final_acc;

        /* The saved tensors are the state_dict, in the model's order of names. */
        cnn_tensors *ts;
        cnn_graph *g;
        cnn_tensors_create(&ts);
        cnn_graph_create(&g);
        CHECK(cnn_tensors_load(ts, tp("s.st")) == CNN_OK);
        CHECK(cnn_graph_load(g, tp("small.txt")) == CNN_OK);
        CHECKF(cnn_tensors_count(ts) == 9 && cnn_graph_param_count(g) == 9, "%d tensors",
               cnn_tensors_count(ts));
        for (int i = 0; i < 9; i++) {
            int k = cnn_tensors_find(ts, small_names[i]);
            cnn_param_info pi;
            cnn_tensor_info ti;
            cnn_graph_param(g, i, &pi);
            CHECKF(!strcmp(pi.name, small_names[i]), "parameter %d is '%s'", i, pi.name);
            CHECKF(k >= 0, "s.st lacks '%s'", small_names[i]);
            if (k < 0)
                continue;
            cnn_tensors_get(ts, k, &ti);
            CHECKF(ti.dtype == pi.dtype && ti.shape.ndim == pi.shape.ndim &&
                       !memcmp(ti.shape.dims, pi.shape.dims, sizeof(int64_t) * (size_t)ti.shape.ndim),
                   "'%s' has another dtype or shape than the model's", small_names[i]);
        }
        int kb = cnn_tensors_find(ts, "1.num_batches_tracked");
        cnn_tensor_info nb;
        CHECK(kb >= 0 && cnn_tensors_get(ts, kb, &nb) == CNN_OK && nb.dtype == CNN_I64 &&
              *(int64_t *)nb.data == 40); /* 2 epochs of 20 steps */
        cnn_graph_destroy(g);
        cnn_tensors_destroy(ts);

        /* One JSON line per epoch with the documented keys, agreeing with the printed lines. */
        char *m = read_all("m.jsonl", NULL);
        CHECK(m && count_lines(m, "{") == 2);
        static const char *const keys[] = {"epoch", "step", "train_loss", "train_acc", "test_loss",
                                           "test_acc", "lr", "images_per_sec", "seconds"};
        char *line = m;
        for (int e = 0; m && e < 2; e++) {
            char *nl = strchr(line, '\n');
            CHECK(nl != NULL);
            if (!nl)
                break;
            *nl = 0;
            cnni_json j;
            /* with --threads 2, adaptive thread use adds the steps it ran on one thread */
            CHECK(parse_json(line, &j) && j.type == CNNI_JOBJ && j.n == 10);
            const double single = jnum(&j, "one_thread_steps");
            CHECKF(single >= 0 && single <= 20 && single == floor(single), "one_thread_steps %g", single);
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                CHECKF(isfinite(jnum(&j, keys[k])), "metrics line %d: no number '%s': %s", e + 1, keys[k], line);
            CHECK(jnum(&j, "epoch") == e + 1 && jnum(&j, "step") == 20 * (e + 1) && jnum(&j, "lr") == 0.01);
            CHECKF(fabs(jnum(&j, "train_loss") - trl[e]) < 6e-5 && fabs(100 * jnum(&j, "train_acc") - tra[e]) < 6e-3 &&
                       fabs(jnum(&j, "test_loss") - tel[e]) < 6e-5 && fabs(100 * jnum(&j, "test_acc") - tea[e]) < 6e-3,
                   "metrics line %d disagrees with the printed one: %s", e + 1, line);
            cnni_json_free(&j);
            line = nl + 1;
        }
        free(m);
    }

    TEST("train: --quiet prints the final test accuracy only")
    {
        EXPECT("train small.txt --data fm --epochs 1 --batch-size 200 --threads 2 --quiet", 0, "test accuracy: ");
        double acc;
        CHECKF(sscanf(out, "test accuracy: %lf%%\n", &acc) == 1 && count_lines(out, "") == 1 &&
                   out[strlen(out) - 1] == '\n',
               "%s", out);
    }

    TEST("train: --isa picks the kernels' instruction set; the first line names it")
    {
        EXPECT("train small.txt --data fm --epochs 1 --batch-size 200 --threads 1 --isa generic", 0, "1 thread, generic",
               "test accuracy: ");
    }

    TEST("train: --checkpoint then --resume gives the same weights as one run")
    {
        /* Adam's moments, a schedule, batch norm statistics, dropout and the
         * shuffling all have state that the checkpoint must carry. */
        write_text("drop.txt", "Conv2d(1, 4, 3, stride=2)\nBatchNorm2d(4)\nReLU()\nFlatten()\nDropout(0.25)\n"
                               "Linear(4 * 13 * 13, 10)\n");
#define RESUME_ARGS "train drop.txt --data fm --batch-size 100 --optimizer adam --scheduler step:1:0.5 --seed 3 --threads 2"
        EXPECT(RESUME_ARGS " --epochs 2 --save a.st --checkpoint a.ckpt --quiet", 0, "test accuracy");
        EXPECT(RESUME_ARGS " --epochs 1 --checkpoint b.ckpt --metrics b.jsonl", 0, "epoch 1/1:");
        char first[512] = "";
        find_line(out, "epoch 1/1: ", first, sizeof first);
        EXPECT(RESUME_ARGS " --epochs 2 --resume b.ckpt --checkpoint b.ckpt --metrics b.jsonl --save b.st", 0,
               "epoch 2/2: ", "model saved to b.st");
        CHECKF(count_lines(out, "epoch ") == 1, "the resumed run trained again:\n%s", out);
        CHECKF(same_file("a.st", "b.st"), "weights after 1 + 1 epochs differ from 2 epochs in one run");
        CHECKF(same_file("a.ckpt", "b.ckpt"), "the final checkpoints differ");
        char *m = read_all("b.jsonl", NULL);
        CHECKF(m && count_lines(m, "{\"epoch\": 1, \"step\": 20,") == 1 && count_lines(m, "{\"epoch\": 2, \"step\": 40,") == 1 &&
                   count_lines(m, "{") == 2,
               "metrics after resuming:\n%s", m ? m : "(none)");
        free(m);
        /* The epochs count belongs to the cosine schedule: a different one is refused by name. */
        EXPECT("train drop.txt --data fm --batch-size 100 --scheduler cosine --epochs 1 --checkpoint c.ckpt --quiet", 0, "");
        EXPECT("train drop.txt --data fm --batch-size 100 --scheduler cosine --epochs 3 --resume c.ckpt --save c3.st",
               1, "c.ckpt", "CosineAnnealingLR(T_max=1)", "CosineAnnealingLR(T_max=3)");
        CHECK(!exists("c3.st"));
    }

    TEST("train: Ctrl-C saves a checkpoint, exits 130, and --resume continues exactly")
    {
        write_xy("xy16.st", 16, 1, 28, 28, 10, -1);
        write_text("tiny.txt", "Conv2d(1, 8, 3, stride=2)\nReLU()\nFlatten()\nLinear(8 * 13 * 13, 10)\n");
#define INT_ARGS "train tiny.txt --data xy16.st --batch-size 8 --epochs 100 --momentum 0.9 --threads 1 --seed 5"
        EXPECT(INT_ARGS " --quiet --save straight.st", 0, "");
        int rc = run_interrupted(INT_ARGS " --checkpoint i.ckpt --metrics i.jsonl", "i.ckpt", "int.log");
        char *log = read_all("int.log", NULL);
        if (rc == 0) {
            printf("  note: the run ended before the interrupt; Ctrl-C not checked\n");
        } else {
            CHECKF(rc == 130 && log && strstr(log, "interrupted at epoch ") &&
                       strstr(log, "checkpoint saved to i.ckpt (continue with --resume i.ckpt)"),
                   "exit %d:\n%s", rc, log ? log : "");
            EXPECT(INT_ARGS " --checkpoint i.ckpt --metrics i.jsonl --resume i.ckpt --save resumed.st --quiet", 0, "");
            CHECKF(same_file("straight.st", "resumed.st"), "interrupted and resumed weights differ from one run");
            char *m = read_all("i.jsonl", NULL);
            int ok = m != NULL;
            for (int e = 1; ok && e <= 100; e++) {
                char want[64];
                snprintf(want, sizeof want, "{\"epoch\": %d, \"step\": %d,", e, 2 * e);
                ok = count_lines(m, want) == 1;
                CHECKF(ok, "metrics after the interrupt lack epoch %d once", e);
            }
            CHECK(m && count_lines(m, "{") == 100);
            free(m);
        }
        free(log);
    }

    TEST("train: the same seed gives the same weights, for 1 or 2 threads, adaptive or --fixed-threads; another "
         "seed others")
    {
#define SEED_ARGS "train small.txt --data fm --epochs 1 --batch-size 100 --quiet"
        EXPECT(SEED_ARGS " --seed 7 --threads 1 --save t1.st --checkpoint t1.ckpt", 0, "");
        EXPECT(SEED_ARGS " --seed 7 --threads 2 --save t2.st", 0, "");
        EXPECT(SEED_ARGS " --seed 7 --threads 2 --save t2b.st", 0, "");
        EXPECT(SEED_ARGS " --seed 7 --threads 2 --fixed-threads --save t2f.st --metrics t2f.jsonl", 0, "");
        EXPECT(SEED_ARGS " --seed 8 --threads 2 --save t3.st", 0, "");
        CHECKF(same_file("t1.st", "t2.st"), "1 and 2 threads gave different weights");
        CHECKF(same_file("t2.st", "t2b.st"), "the same seed gave different weights");
        CHECKF(same_file("t2.st", "t2f.st"), "adaptive and fixed threads gave different weights");
        char *fm = read_all("t2f.jsonl", NULL);
        CHECKF(fm && strstr(fm, "\"seconds\"") && !strstr(fm, "one_thread_steps"),
               "--fixed-threads: metrics should not count one-thread steps: %s", fm ? fm : "(none)");
        free(fm);
        CHECKF(!same_file("t2.st", "t3.st"), "seeds 7 and 8 gave the same weights");
    }

    TEST("train: safetensors x/y, image folders and CIFAR-10 binary folders")
    {
        write_xy("xy.st", 24, 1, 28, 28, 10, -1);
        EXPECT("train small.txt --data xy.st --epochs 2 --batch-size 8 --save xy_w.st", 0,
               "training small.txt on xy.st: 24 samples, batch 8,", "epoch 1/2: train loss", "epoch 2/2: train loss",
               "model saved to xy_w.st");
        /* No test set: no test figures and no made-up test accuracy. */
        CHECKF(!strstr(out, "test") && exists("xy_w.st"), "%s", out);

        /* class folders with train and test splits */
        static const char *const cls[3] = {"boot", "coat", "shirt"};
        char name[128];
        mkdir(tp("imgs"), 0700);
        mkdir(tp("imgs/train"), 0700);
        mkdir(tp("imgs/test"), 0700);
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "imgs/train/%s", cls[k]);
            mkdir(tp(name), 0700);
            snprintf(name, sizeof name, "imgs/test/%s", cls[k]);
            mkdir(tp(name), 0700);
            for (int i = 0; i < 4; i++) {
                snprintf(name, sizeof name, "imgs/train/%s/%d.png", cls[k], i);
                write_png(name, 28, 28, 10 * k + i);
            }
            snprintf(name, sizeof name, "imgs/test/%s/0.png", cls[k]);
            write_png(name, 28, 28, 10 * k + 7);
        }
        write_text("three.txt", "Conv2d(1, 4, 3, stride=2)\nReLU()\nFlatten()\nLinear(4 * 13 * 13, 3)\n");
        EXPECT("train three.txt --data imgs --epochs 2 --batch-size 4 --lr 0.1 --save img_w.st", 0,
               "training three.txt on imgs/train: 12 samples (and a test set), batch 4,", "epoch 2/2: ", "test accuracy: ");
        double loss = NAN, acc = NAN;
        char l[512] = "";
        find_line(out, "epoch 2/2: ", l, sizeof l);
        CHECKF(loss_acc(l, "test", &loss, &acc) && acc >= 0 && acc <= 100 &&
                   (fabs(acc * 3 / 100 - floor(acc * 3 / 100 + 0.5)) < 1e-3),
               "3 test images cannot give %s", l);
        /* the folder names are the class names */
        EXPECT("predict three.txt --weights img_w.st --labels imgs --top 3 imgs/test/coat/0.png", 0,
               "(boot)", "(coat)", "(shirt)");

        /* CIFAR-10: 5 training files of 2 records and a test file of 3 */
        mkdir(tp("cifar"), 0700);
        unsigned char rec[3 * 3073];
        for (int f = 0; f <= 5; f++) {
            int nrec = f == 5 ? 3 : 2;
            for (int r = 0; r < nrec; r++) {
                rec[r * 3073] = (unsigned char)((f * 2 + r) % 10);
                for (int i = 1; i < 3073; i++)
                    rec[r * 3073 + i] = (unsigned char)((i * (f + 2) + r) % 256);
            }
            if (f == 5)
                snprintf(name, sizeof name, "cifar/test_batch.bin");
            else
                snprintf(name, sizeof name, "cifar/data_batch_%d.bin", f + 1);
            write_bytes(name, rec, (size_t)nrec * 3073);
        }
        write_text("rgb.txt", "Conv2d(3, 4, 3, stride=2)\nReLU()\nFlatten()\nLinear(4 * 15 * 15, 10)\n");
        EXPECT("train rgb.txt --data cifar --epochs 1 --batch-size 4 --save rgb_w.st --normalize 0.5,0.5,0.5,0.25,0.25,0.25",
               0, "training rgb.txt on cifar: 10 samples (and a test set), batch 4,", "test accuracy: ");
        EXPECT("eval rgb.txt --weights rgb_w.st --data cifar", 0, "cifar: 3 samples, loss ", "0 airplane",
               "9 truck");
    }
}

static void test_train_errors(void)
{
    write_idx("trunc", "train", 20, 20, 28, 28, -1, 100);
    write_idx("mism", "train", 20, 19, 28, 28, -1, 0);
    write_idx("lab12", "train", 20, 20, 28, 28, 12, 0);
    write_idx("size", "train", 20, 20, 32, 32, -1, 0);
    write_xy("xy12.st", 16, 1, 28, 28, 10, 12);
    write_xy("xy32.st", 16, 1, 32, 32, 10, -1);
    write_xy("xy5.st", 5, 1, 28, 28, 5, -1);
    mkdir(tp("badpng"), 0700);
    mkdir(tp("badpng/a"), 0700);
    mkdir(tp("badpng/b"), 0700);
    write_png("badpng/a/0.png", 28, 28, 1);
    write_bytes("badpng/b/0.png", "\x89PNG\r\n\x1a\n then nothing", 22);
    mkdir(tp("mixed"), 0700);
    mkdir(tp("mixed/a"), 0700);
    mkdir(tp("mixed/b"), 0700);
    write_png("mixed/a/0.png", 28, 28, 1);
    write_png("mixed/b/0.png", 30, 28, 2);
    write_text("bad.txt", "Conv2d(1, 4, 3, stride=2)\nReLU(\nFlatten()\n");
    write_text("wide.txt", "Conv2d(1, 8, 3, stride=2)\nBatchNorm2d(8)\nReLU()\nFlatten()\nLinear(8 * 13 * 13, 10)\n");
    write_text("bn1d.txt", "Conv2d(1, 4, 3, stride=2)\nFlatten()\nBatchNorm1d(676)\nLinear(676, 5)\n");

    TEST("train: command-line errors exit 2 and write nothing")
    {
        EXPECT("train small.txt --save o.st", 2, "--data are required");
        EXPECT("train --data fm --save o.st", 2, "MODEL and --data are required");
        EXPECT("train small.txt --data fm --frobnicate --save o.st", 2, "unknown option '--frobnicate'");
        EXPECT("train small.txt --data fm --isa sse9 --save o.st", 2, "--isa", "'sse9'");
        EXPECT("train small.txt --data fm --epochs -1 --save o.st", 2, "--epochs expects an integer from 0", "'-1'");
        EXPECT("train small.txt --data fm --batch-size 0 --save o.st", 2, "--batch-size", "'0'");
        EXPECT("train small.txt --data fm --seed -3 --save o.st", 2, "--seed", "'-3'");
        EXPECT("train small.txt --data fm --optimizer adagrad --save o.st", 2, "unknown --optimizer 'adagrad'");
        EXPECT("train small.txt --data fm --scheduler step:x --save o.st", 2, "--scheduler step:SIZE");
        EXPECT("train small.txt --data fm --normalize 0.5 --save o.st", 2, "--normalize", "'0.5'");
        EXPECT("train small.txt --data fm --epochs", 2, "option --epochs needs a value");
        EXPECT("train small.txt extra.txt --data fm", 2, "unexpected argument 'extra.txt'");
        CHECK(!exists("o.st"));
    }

    TEST("train: bad data, models and checkpoints: exit 1, named, earlier outputs kept")
    {
        /* Every failing run is given the same outputs, which already exist. */
        write_text("keep.st", "previous weights");
        write_text("keep.jsonl", "previous metrics");
        write_text("keep.ckpt", "previous checkpoint");
#define OUTS " --epochs 1 --batch-size 4 --save keep.st --metrics keep.jsonl --checkpoint keep.ckpt"
        EXPECT("train small.txt --data nodata" OUTS, 1, "nodata", "cannot open");
        EXPECT("train small.txt --data trunc" OUTS, 1, "trunc/train-images-idx3-ubyte", "15680", "15580", "truncated");
        EXPECT("train small.txt --data mism" OUTS, 1, "mism/train-labels-idx1-ubyte", "19 labels", "20 images");
        EXPECT("train small.txt --data lab12" OUTS, 1, "lab12/train-labels-idx1-ubyte", "label 12", "10 classes");
        EXPECT("train small.txt --data xy12.st" OUTS, 1, "xy12.st", "labels up to 12", "10 outputs");
        EXPECT("train small.txt --data size" OUTS, 1, "small.txt:5", "Linear", "676", "size", "[1, 32, 32]");
        EXPECT("train small.txt --data xy.st --test xy32.st" OUTS, 1, "xy32.st", "[1, 32, 32]", "[1, 28, 28]");
        EXPECT("train small.txt --data badpng" OUTS, 1, "badpng/b/0.png", "PNG");
        EXPECT("train small.txt --data mixed" OUTS, 1, "mixed/b/0.png", "mixed/a/0.png", "same size");
        EXPECT("train bad.txt --data fm" OUTS, 1, "bad.txt:2:", "never closed");
        EXPECT("train missing.txt --data fm" OUTS, 1, "missing.txt", "cannot open");
        EXPECT("train small.txt --data fm --weights t1.st --resume nothere.ckpt" OUTS, 1, "nothere.ckpt",
               "cannot open");
        EXPECT("train small.txt --data fm --resume t1.st" OUTS, 1, "t1.st", "not a cnn checkpoint");
        /* a checkpoint of a network with 4 channels for one with 8 */
        EXPECT("train wide.txt --data fm --resume t1.ckpt" OUTS, 1, "t1.ckpt", "0.weight", "[4, 1, 3, 3]",
               "[8, 1, 3, 3]");
        EXPECT("train wide.txt --data fm --weights t1.st" OUTS, 1, "t1.st", "0.weight", "[4, 1, 3, 3]",
               "[8, 1, 3, 3]");
        /* Fails at the second step (a batch of one for BatchNorm1d), after
         * the outputs were opened. */
        EXPECT("train bn1d.txt --data xy5.st" OUTS, 1, "epoch 1, step 2", "bn1d.txt:3", "BatchNorm1d",
               "more than 1 value per channel");
        /* Outputs that cannot be written are refused before any training. */
        EXPECT("train small.txt --data fm --epochs 1 --save nodir/o.st", 1, "nodir/o.st", "nodir does not exist");
        CHECK(strstr(out, "epoch 1") == NULL);
        EXPECT("train small.txt --data fm --epochs 1 --metrics nodir/m.jsonl", 1, "nodir/m.jsonl");
        EXPECT("train small.txt --data fm --epochs 1 --checkpoint .", 1, "is a folder");
        CHECK(has_content("keep.st", "previous weights"));
        CHECK(has_content("keep.jsonl", "previous metrics"));
        CHECK(has_content("keep.ckpt", "previous checkpoint"));
        CHECKF(count_names_with(".", ".tmp") == 0, "a temporary file was left behind");
    }
}

static void test_eval(void)
{
    TEST("eval: loss, accuracy and a confusion matrix that add up; --json agrees")
    {
        EXPECT("eval small.txt --weights s.st --data fm --batch-size 100 --threads 2", 0, "fm: 500 samples, loss ",
               "confusion matrix (rows: true class, columns: predicted):");
        double loss = NAN, acc = NAN;
        long long correct = -1, n = -1;
        CHECKF(sscanf(out, "fm: %lld samples, loss %lf, accuracy %lf%% (%lld correct)", &n, &loss, &acc, &correct) == 4,
               "%s", out);
        long long m[10][10] = {{0}}, total = 0, diag = 0;
        int rows = 0;
        for (int r = 0; r < 10; r++) {
            char prefix[32], line[512];
            snprintf(prefix, sizeof prefix, "%d %s", r, fashion_names[r]);
            if (!find_line(out, prefix, line, sizeof line))
                continue;
            const char *p = line + 14;
            int cols = 0;
            for (int c = 0; c < 10; c++) {
                int used;
                if (sscanf(p, "%lld%n", &m[r][c], &used) != 1)
                    break;
                p += used;
                cols++;
                total += m[r][c];
                diag += r == c ? m[r][c] : 0;
            }
            rows += cols == 10;
        }
        CHECKF(rows == 10, "%d complete rows named after the classes:\n%s", rows, out);
        CHECKF(total == 500 && n == 500 && diag == correct && fabs(100.0 * (double)diag / 500 - acc) < 0.006,
               "matrix sum %lld, diagonal %lld; printed %lld correct, %.2f%%", total, diag, correct, acc);
        /* the accuracy train printed for these weights on the same test set */
        CHECKF(fabs(acc - trained_test_acc) < 1e-9, "eval: %.2f%%, train: %.2f%%", acc, trained_test_acc);
        EXPECT("eval small.txt --weights s.st --data fm --batch-size 100 --threads 2 --json", 0, "{");
        cnni_json j;
        CHECK(parse_json(out, &j) && j.type == CNNI_JOBJ);
        CHECK(jnum(&j, "samples") == 500 && fabs(jnum(&j, "loss") - loss) < 6e-5 &&
              fabs(jnum(&j, "accuracy") * 500 - (double)correct) < 1e-6);
        const cnni_json *cm = cnni_json_get(&j, "confusion"), *d = cnni_json_get(&j, "data");
        CHECK(d && d->type == CNNI_JSTR && !strcmp(d->str, "fm"));
        CHECK(cm && cm->type == CNNI_JARR && cm->n == 10);
        for (int r = 0; cm && r < cm->n && r < 10; r++) {
            const cnni_json *row = &cm->items[r];
            CHECK(row->type == CNNI_JARR && row->n == 10);
            for (int c = 0; row->type == CNNI_JARR && c < row->n && c < 10; c++)
                CHECKF(row->items[c].type == CNNI_JNUM && row->items[c].num == (double)m[r][c],
                       "confusion[%d][%d] is %g in JSON, %lld in text", r, c, row->items[c].num, m[r][c]);
        }
        cnni_json_free(&j);
        /* names are quoted as JSON strings */
        write_xy("q\"x\\y.st", 4, 1, 28, 28, 10, -1);
        EXPECT("eval small.txt --weights s.st --data 'q\"x\\y.st' --json", 0, "{");
        CHECK(parse_json(out, &j) && (d = cnni_json_get(&j, "data")) && d->type == CNNI_JSTR &&
              !strcmp(d->str, "q\"x\\y.st") && jnum(&j, "samples") == 4);
        cnni_json_free(&j);
        /* the training split, and safetensors data without class names */
        EXPECT("eval small.txt --weights s.st --data fm --split train", 0, "fm: 2000 samples, loss ");
        EXPECT("eval small.txt --weights s.st --data xy.st", 0, "xy.st: 24 samples, loss ", "\n9  ");
    }

    TEST("eval: errors")
    {
        EXPECT("eval wide.txt --weights s.st --data fm", 1, "s.st", "'0.weight'", "[4, 1, 3, 3]", "[8, 1, 3, 3]");
        EXPECT("eval small.txt --weights nothere.st --data fm", 1, "nothere.st", "cannot open");
        EXPECT("eval small.txt --weights s.st --data nodata", 1, "nodata", "cannot open");
        EXPECT("eval small.txt --weights s.st --data xy12.st", 1, "xy12.st", "labels up to 12", "10 outputs");
        EXPECT("eval small.txt --weights s.st --data xy32.st", 1, "small.txt:5", "[1, 32, 32]");
        EXPECT("eval small.txt --data fm", 2, "--weights and --data are required");
        EXPECT("eval small.txt --weights s.st --data fm --split valid", 2, "--split is test or train", "'valid'");
        EXPECT("eval small.txt --weights s.st --data fm --batch-size x", 2, "--batch-size", "'x'");
        EXPECT("eval small.txt --weights s.st --data fm --bogus", 2, "unknown option '--bogus'");
    }
}

static void test_predict(void)
{
    write_png("p0.png", 28, 28, 0);
    write_png("p1.png", 28, 28, 1);
    write_png("big.png", 32, 32, 2);
    write_images_tensor("p01.st", "input", 2, 28, 28, 0);
    write_images_tensor("px.st", "x", 3, 28, 28, 0);

    TEST("predict: PNG files and tensors, probabilities, --top, --labels")
    {
        int rc = run_io("predict small.txt --weights s.st p0.png p1.png", 0);
        CHECKF(rc == 0 && count_lines(out, "") == 2, "exit %d:\n%s%s", rc, out, err);
        char png_lines[2][512] = {"", ""};
        for (int f = 0; f < 2; f++) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "p%d.png: ", f);
            CHECKF(find_line(out, prefix, png_lines[f], sizeof png_lines[f]), "no line for p%d.png:\n%s", f, out);
            int64_t cls[8];
            double prob[8];
            char names[8][32];
            int n = parse_prediction(png_lines[f], cls, prob, names, 8);
            CHECKF(n == 3, "default top 3: %s", png_lines[f]);
            for (int k = 0; k < n; k++) {
                CHECKF(cls[k] >= 0 && cls[k] < 10 && prob[k] > 0 && prob[k] <= 100 && !names[k][0] &&
                           (k == 0 || (prob[k] <= prob[k - 1] && cls[k] != cls[k - 1])),
                       "%s", png_lines[f]);
            }
            CHECK(n < 3 || cls[0] != cls[2]);
        }
        /* The same pixels as a batch tensor give the same lines. */
        rc = run_io("predict small.txt --weights s.st p01.st", 0);
        CHECKF(rc == 0 && count_lines(out, "p01.st[") == 2 && count_lines(out, "") == 2, "exit %d:\n%s%s", rc, out, err);
        for (int f = 0; f < 2; f++) {
            char prefix[32], line[512];
            snprintf(prefix, sizeof prefix, "p01.st[%d]: ", f);
            CHECKF(find_line(out, prefix, line, sizeof line) && !strcmp(strchr(line, ':'), strchr(png_lines[f], ':')),
                   "%s\nvs the PNG's\n%s", line, png_lines[f]);
        }
        EXPECT("predict small.txt --weights s.st px.st", 0, "px.st[0]: ", "px.st[1]: ", "px.st[2]: ");
        /* every class, with Fashion-MNIST's names; the probabilities add up to 1 */
        rc = run_io("predict small.txt --weights s.st --labels fashion-mnist --top 12 p0.png", 0);
        int64_t cls[12];
        double prob[12], sum = 0;
        char names[12][32];
        int n = parse_prediction(out, cls, prob, names, 12);
        CHECKF(rc == 0 && n == 10, "exit %d, %d classes:\n%s%s", rc, n, out, err);
        for (int k = 0; k < n; k++) {
            sum += prob[k];
            CHECKF(cls[k] >= 0 && cls[k] < 10 && !strcmp(names[k], fashion_names[cls[k]]),
                   "class %lld named '%s'", (long long)cls[k], names[k]);
        }
        CHECKF(fabs(sum - 100) < 0.06, "probabilities add up to %.2f%%", sum);
        int64_t cls3[3];
        double prob3[3];
        int n3 = parse_prediction(png_lines[0], cls3, prob3, names, 3);
        rc = run_io("predict small.txt --weights s.st --top 1 p0.png", 0);
        n = parse_prediction(out, cls, prob, names, 12);
        CHECKF(rc == 0 && n == 1 && n3 == 3 && cls[0] == cls3[0] && prob[0] == prob3[0] && count_lines(out, "") == 1,
               "--top 1:\n%s\nvs\n%s", out, png_lines[0]);
    }

    TEST("predict: errors")
    {
        EXPECT("predict small.txt --weights s.st big.png", 1, "big.png", "small.txt:5", "[1, 1, 32, 32]");
        EXPECT("predict small.txt --weights s.st missing.png", 1, "missing.png", "cannot open");
        CHECK(!strstr(out, "not a PNG"));
        EXPECT("predict small.txt --weights s.st badpng/b/0.png", 1, "badpng/b/0.png", "PNG");
        EXPECT("predict small.txt --weights s.st small.txt", 1, "small.txt", "not a PNG or JPEG image either");
        EXPECT("predict small.txt --weights s.st t1.st", 1, "t1.st", "no float tensor named 'input' or 'x'");
        EXPECT("predict wide.txt --weights s.st p0.png", 1, "s.st", "'0.weight'", "[4, 1, 3, 3]", "[8, 1, 3, 3]");
        EXPECT("predict small.txt --weights s.st --labels nodata p0.png", 1, "nodata");
        EXPECT("predict small.txt --weights s.st", 2, "at least one FILE");
        EXPECT("predict small.txt p0.png", 2, "--weights");
        EXPECT("predict small.txt --weights s.st --top 0 p0.png", 2, "--top expects an integer from 1", "'0'");
    }
}

static void test_summary(void)
{
    TEST("summary: the Fashion-MNIST network's table and totals; --json agrees")
    {
        EXPECT("summary models/fashion_cnn.txt --input-shape 1,28,28", 0, "Total params: 422,028",
               "Trainable params: 421,834\n", "Non-trainable params: 194\n", "Multiply-adds per sample: 4,354,048",
               " 0 (Conv2d)      (N, 32, 28, 28) 320", " 3 (MaxPool2d)   (N, 32, 14, 14)",
               " 7 (MaxPool2d)   (N, 64, 7, 7)", " 8 (Flatten)     (N, 3136)", " 10 (Linear)     (N, 128)        401,536",
               " 13 (Linear)     (N, 10)         1,290", "Memory at batch 1: forward pass ");
        int rows = 0;
        for (int i = 0; i < 14; i++) {
            char prefix[16];
            snprintf(prefix, sizeof prefix, " %d (", i);
            rows += count_lines(out, prefix);
        }
        CHECKF(rows == 14, "%d layer rows", rows);
        EXPECT("summary models/fashion_cnn.txt --input-shape 1x28x28 --batch 4 --json", 0, "{");
        cnni_json j;
        CHECK(parse_json(out, &j) && j.type == CNNI_JOBJ);
        CHECK(jnum(&j, "total_params") == 422028 && jnum(&j, "trainable_params") == 421834 &&
              jnum(&j, "non_trainable_params") == 194 && jnum(&j, "macs") == 4 * 4354048.0 && jnum(&j, "batch") == 4);
        const cnni_json *layers = cnni_json_get(&j, "layers"), *inputs = cnni_json_get(&j, "inputs");
        const cnni_json *shape = inputs && inputs->type == CNNI_JARR && inputs->n == 1
                                     ? cnni_json_get(&inputs->items[0], "shape") : NULL;
        CHECK(shape && shape->type == CNNI_JARR && shape->n == 4 && shape->items[0].num == 4 &&
              shape->items[1].num == 1 && shape->items[2].num == 28 && shape->items[3].num == 28);
        CHECK(layers && layers->type == CNNI_JARR && layers->n == 14);
        double params = 0, trainable = 0;
        for (int i = 0; layers && i < layers->n; i++) {
            params += jnum(&layers->items[i], "params");
            trainable += jnum(&layers->items[i], "trainable_params");
        }
        CHECKF(params == 422028 && trainable == 421834, "layers add up to %g (%g trainable)", params, trainable);
        if (layers && layers->n == 14) {
            const cnni_json *last = &layers->items[13], *os = cnni_json_get(last, "output_shapes");
            const cnni_json *type = cnni_json_get(last, "type");
            CHECK(type && type->type == CNNI_JSTR && !strcmp(type->str, "Linear"));
            CHECK(os && os->n == 1 && os->items[0].n == 2 && os->items[0].items[0].num == 4 &&
                  os->items[0].items[1].num == 10);
        }
        cnni_json_free(&j);
    }

    TEST("summary: a graph model (Inception)")
    {
        EXPECT("summary models/inception_small.txt --input-shape 1,28,28", 0, "Trainable params: 49,542\n",
               "i1 (Concat)", "(N, 64, 14, 14)", "i1a, i1b, i1c, i1d", "i2 (Concat)", "(N, 128, 7, 7)",
               "head.3 (Linear)", "(N, 10)");
        EXPECT("summary models/inception_small.txt --input-shape 1,28,28 --json", 0, "{");
        cnni_json j;
        CHECK(parse_json(out, &j) && jnum(&j, "trainable_params") == 49542);
        const cnni_json *layers = cnni_json_get(&j, "layers");
        int concat = 0;
        for (int i = 0; layers && i < layers->n; i++) {
            const cnni_json *t = cnni_json_get(&layers->items[i], "type"), *in = cnni_json_get(&layers->items[i], "inputs");
            if (t && t->type == CNNI_JSTR && !strcmp(t->str, "Concat"))
                concat += in && in->type == CNNI_JARR && in->n == 4;
        }
        CHECK(concat == 2);
        cnni_json_free(&j);
    }

    TEST("summary: errors")
    {
        EXPECT("summary models/fashion_cnn.txt", 2, "--input-shape are required");
        EXPECT("summary models/fashion_cnn.txt --input-shape 1,a,28", 2, "--input-shape '1,a,28'");
        EXPECT("summary models/fashion_cnn.txt --input-shape 1,32,32", 1, "fashion_cnn.txt:14", "node '10' (Linear)",
               "[1, 4096]", "in_features is 3136");
        EXPECT("summary models/fashion_cnn.txt --input-shape 3,28,28", 1, "fashion_cnn.txt:4", "node '0' (Conv2d)",
               "[1, 3, 28, 28]", "1 channels", "3 channels");
        EXPECT("summary missing.txt --input-shape 1,28,28", 1, "missing.txt", "cannot open");
        EXPECT("summary bad.txt --input-shape 1,28,28", 1, "bad.txt:2:");
    }
}

static void test_bench(void)
{
    TEST("bench: one row per layer, totals and images/s; --json; --train")
    {
        EXPECT("bench small.txt --input-shape 1,28,28 --batch 8 --iterations 2 --warmup 1 --threads 1", 0,
               "small.txt, batch 8, forward, 1 thread, ", "mean of 2 iterations");
        static const char *const rows[5] = {"0 (Conv2d) ", "1 (BatchNorm2d) ", "2 (ReLU) ", "3 (Flatten) ", "4 (Linear) "};
        for (int i = 0; i < 5; i++)
            CHECKF(count_lines(out, rows[i]) == 1, "no row '%s':\n%s", rows[i], out);
        char line[256];
        double step = 0, ips = 0;
        CHECK(find_line(out, "total ", line, sizeof line));
        CHECKF(find_line(out, "step ", line, sizeof line) && sscanf(line, "step %lf ms, %lf images/s", &step, &ips) == 2 &&
                   step > 0 && ips > 0,
               "%s", line);
        EXPECT("bench small.txt --input-shape 1,28,28 --batch 8 --iterations 2 --warmup 1 --threads 1 --train --json", 0, "{");
        cnni_json j;
        CHECK(parse_json(out, &j) && j.type == CNNI_JOBJ);
        const cnni_json *layers = cnni_json_get(&j, "layers"), *train = cnni_json_get(&j, "train");
        CHECK(jnum(&j, "batch") == 8 && jnum(&j, "threads") == 1 && jnum(&j, "images_per_sec") > 0 &&
              jnum(&j, "step_ms") > 0 && train && train->type == CNNI_JBOOL && train->boolean);
        CHECK(layers && layers->type == CNNI_JARR && layers->n == 5);
        double bwd = 0;
        for (int i = 0; layers && i < layers->n; i++) {
            const cnni_json *t = cnni_json_get(&layers->items[i], "type");
            CHECK(t && t->type == CNNI_JSTR && !strncmp(rows[i] + 3, t->str, strlen(t->str)));
            CHECK(jnum(&layers->items[i], "forward_ms") >= 0);
            bwd += jnum(&layers->items[i], "backward_ms");
        }
        CHECKF(bwd > 0, "--train timed no backward pass");
        cnni_json_free(&j);
        write_text("q\"m\\x.txt", small_model);
        EXPECT("bench 'q\"m\\x.txt' --input-shape 1,28,28 --batch 1 --iterations 1 --warmup 0 --json", 0, "{");
        const cnni_json *m;
        CHECK(parse_json(out, &j) && (m = cnni_json_get(&j, "model")) && m->type == CNNI_JSTR &&
              !strcmp(m->str, "q\"m\\x.txt"));
        cnni_json_free(&j);
        EXPECT("bench models/inception_small.txt --input-shape 1,28,28 --batch 2 --iterations 1 --warmup 0 --isa generic", 0,
               "generic", "i1 (Concat)", "images/s");
    }

    TEST("bench: errors")
    {
        EXPECT("bench small.txt", 2, "--input-shape are required");
        EXPECT("bench small.txt --input-shape 1,28,28 --iterations 0", 2, "--iterations", "'0'");
        EXPECT("bench small.txt --input-shape 1,28,28 --isa sse9", 2, "--isa", "'sse9'");
        EXPECT("bench small.txt --input-shape x", 2, "--input-shape 'x'");
        EXPECT("bench small.txt --input-shape 1,28 --iterations 1", 1, "small.txt:1", "Conv2d", "4-d");
        EXPECT("bench missing.txt --input-shape 1,28,28", 1, "missing.txt", "cannot open");
    }
}

static void test_plot(void)
{
    TEST("plot: an SVG of the training curves")
    {
        EXPECT("plot m.jsonl -o curves.svg", 0, "");
        CHECK(out[0] == 0);
        char *svg = read_all("curves.svg", NULL);
        CHECK(svg && (!strncmp(svg, "<svg", 4) || !strncmp(svg, "<?xml", 5)));
        if (svg) {
            size_t n = strlen(svg);
            CHECK(n > 20 && !strcmp(svg + n - 7, "</svg>\n"));
            CHECK(count_occurrences(svg, "<svg") == 1 && count_occurrences(svg, "</svg>") == 1);
            CHECK(count_occurrences(svg, "<text") == count_occurrences(svg, "</text>"));
            CHECK(count_occurrences(svg, "<") == count_occurrences(svg, ">"));
            CHECK(strstr(svg, ">Loss<") && strstr(svg, ">Accuracy<") && strstr(svg, ">train<") && strstr(svg, ">test<"));
            /* four curves (train and test loss and accuracy) of two points each */
            CHECK(count_occurrences(svg, "<polyline") == 4);
            for (const char *p = strstr(svg, "points='"); p; p = strstr(p + 1, "points='")) {
                const char *e = strchr(p + 8, '\'');
                int pts = 0;
                for (const char *q = p + 8; e && q < e; q++)
                    pts += *q == ',';
                CHECKF(pts == 2, "a curve with %d points", pts);
            }
        }
        free(svg);
    }

    TEST("plot: errors name the file and line; nothing written")
    {
        write_text("keep.svg", "previous plot");
        write_text("bad.jsonl", "{\"epoch\": 1, \"train_loss\": 2.1}\n\n{\"epoch\": 2, \"train_loss\": }\n");
        write_text("noepoch.jsonl", "{\"train_loss\": 2.1}\n");
        write_text("empty.jsonl", "\n");
        EXPECT("plot nothere.jsonl -o keep.svg", 1, "nothere.jsonl", "cannot open");
        EXPECT("plot bad.jsonl -o keep.svg", 1, "bad.jsonl:3:", "not a metrics line");
        EXPECT("plot noepoch.jsonl -o keep.svg", 1, "noepoch.jsonl:1:", "\"epoch\"");
        EXPECT("plot empty.jsonl -o keep.svg", 1, "empty.jsonl", "no metrics lines");
        EXPECT("plot m.jsonl -o nodir/c.svg", 1, "nodir/c.svg", "cannot write");
        EXPECT("plot m.jsonl", 2, "-o OUT.svg are required");
        EXPECT("plot m.jsonl -o x.svg --bogus", 2, "unknown option '--bogus'");
        CHECK(has_content("keep.svg", "previous plot") && !exists("x.svg"));
        CHECKF(count_names_with(".", ".tmp") == 0, "a temporary file was left behind");
    }
}

static void test_viz(void)
{
    TEST("viz: PNG pictures of the input, feature maps and kernels")
    {
        int rc = run_io("viz small.txt --weights s.st p0.png -o vz", 0);
        CHECKF(rc == 0, "exit %d:\n%s%s", rc, out, err);
        /* the input, 5 layers' outputs, the convolution's kernels */
        CHECKF(count_lines(out, "vz/") == 7 && count_lines(out, "") == 7, "%s", out);
        static const struct {
            const char *name;
            int64_t h, w;
        } want[] = {
            {"vz/00-input-image.png", 56, 56},   /* 28 x 28 enlarged twice */
            {"vz/01-0-output.png", 52, 211},     /* 4 maps of 13 x 13, x4, in a row with 1-pixel gaps */
            {"vz/01-0-kernels.png", 195, 48},    /* 4 x 1 kernels of 3 x 3, x16 */
            {"vz/02-1-output.png", 52, 211},
            {"vz/03-2-output.png", 52, 211},
            {"vz/04-3-output.png", 1, 676},
            {"vz/05-4-output.png", 8, 80},       /* 10 outputs, x8 */
        };
        cnn_dataset *io;
        cnn_dataset_create(&io);
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            char line[128];
            snprintf(line, sizeof line, "%s\n", tp(want[i].name) + strlen(dir) + 1);
            CHECKF(strstr(out, line) != NULL, "%s not listed:\n%s", want[i].name, out);
            size_t n;
            char *png = read_all(want[i].name, &n);
            CHECKF(png && n > 8 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG file", want[i].name);
            free(png);
            float *px = NULL;
            cnn_shape s;
            CHECKF(cnn_image_load(io, tp(want[i].name), &px, &s) == CNN_OK, "%s: %s", want[i].name, cnn_dataset_errmsg(io));
            CHECKF(s.ndim == 3 && s.dims[0] == 1 && s.dims[1] == want[i].h && s.dims[2] == want[i].w,
                   "%s is %lldx%lldx%lld, expected 1x%lldx%lld", want[i].name, (long long)s.dims[0],
                   (long long)s.dims[1], (long long)s.dims[2], (long long)want[i].h, (long long)want[i].w);
            /* each tile is scaled from black to white */
            float lo = 1, hi = 0;
            for (int64_t k = 0; px && k < s.dims[1] * s.dims[2]; k++) {
                lo = px[k] < lo ? px[k] : lo;
                hi = px[k] > hi ? px[k] : hi;
            }
            CHECKF(lo == 0 && hi == 1, "%s spans %g..%g", want[i].name, lo, hi);
            free(px);
        }
        cnn_dataset_destroy(io);
        write_images_tensor("one.st", "input", 1, 28, 28, 0);
        rc = run_io("viz small.txt --weights s.st one.st -o vz2 --normalize 0.5,0.25", 0);
        CHECKF(rc == 0 && count_lines(out, "vz2/") == 7, "exit %d:\n%s%s", rc, out, err);
    }

    TEST("viz: errors, and no folder made for them")
    {
        EXPECT("viz small.txt --weights s.st missing.png -o vz3", 1, "missing.png", "cannot open");
        EXPECT("viz small.txt --weights s.st big.png -o vz3", 1, "big.png", "small.txt:5", "[1, 1, 32, 32]");
        EXPECT("viz small.txt --weights s.st small.txt -o vz3", 1, "small.txt", "neither an image nor a safetensors file");
        EXPECT("viz small.txt --weights s.st xy.st -o vz3", 1, "xy.st", "no float tensor named 'input'");
        EXPECT("viz wide.txt --weights s.st p0.png -o vz3", 1, "s.st", "'0.weight'", "[4, 1, 3, 3]", "[8, 1, 3, 3]");
        EXPECT("viz small.txt --weights s.st p0.png -o vz3 --normalize 1,0", 2, "--normalize", "positive");
        CHECK(!exists("vz3"));
        EXPECT("viz small.txt --weights s.st p0.png", 2, "-o DIR are required");
        EXPECT("viz small.txt --weights s.st p0.png -o nodir/sub", 1, "nodir/sub", "cannot create the folder");
    }
}

int main(void)
{
#if !defined(CNN_HAVE_PNG) || !defined(CNN_HAVE_ZLIB)
    printf("SKIP test_tool: cnn was built without libpng or zlib (the test data are PNG and gzip files)\n");
    return test_finish();
#endif
    snprintf(dir, sizeof dir, "/tmp/cnn_test_tool_%d", (int)getpid());
    if (mkdir(dir, 0700) != 0) {
        printf("cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char cwd[256], target[512];
    if (!getcwd(cwd, sizeof cwd))
        return 1;
    snprintf(cnn, sizeof cnn, "%s/%s/cnn", cwd, build);
    /* The shipped data and models under short names: messages quote them. */
    snprintf(target, sizeof target, "%s/data/fashion-mnist-subset", cwd);
    if (symlink(target, tp("fm")) != 0)
        return 1;
    snprintf(target, sizeof target, "%s/models", cwd);
    if (symlink(target, tp("models")) != 0)
        return 1;
    write_text("small.txt", small_model);

    test_help();
    test_train();
    test_train_errors();
    test_eval();
    test_predict();
    test_summary();
    test_bench();
    test_plot();
    test_viz();

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("  could not remove %s\n", dir);
    return test_finish();
}
