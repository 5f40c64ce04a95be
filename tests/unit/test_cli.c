/* The command-line tool as a user meets it: exit codes, messages that name
 * the file and key, and no output file left behind on any error. */
#include "test.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256], cnn[512];
static char out[8192];

/* Runs the tool with args (a shell fragment); returns the exit status and
 * leaves stderr+stdout in out. */
static int run(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd %s && %s %s 2>&1", dir, cnn, args);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    int st = p ? pclose(p) : -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int exists(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_text(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void write_tensor(const char *file, const char *name, int ndim, const int64_t *dims, cnn_dtype dt)
{
    cnn_tensors *ts;
    cnn_tensors_create(&ts);
    cnn_shape s = {ndim, {0}};
    for (int i = 0; i < ndim; i++)
        s.dims[i] = dims[i];
    void *data;
    cnn_tensors_add(ts, name, dt, &s, NULL, &data);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= dims[i];
    for (int64_t i = 0; i < n && dt == CNN_F32; i++)
        ((float *)data)[i] = (float)(i % 7) - 3;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    cnn_tensors_save(ts, path);
    cnn_tensors_destroy(ts);
}

#define EXPECT(args, code, ...)                                                                    \
    do {                                                                                           \
        int rc_ = run(args);                                                                       \
        CHECKF(rc_ == (code), "cnn %s: exit %d, expected %d; output:\n%s", args, rc_, code, out);  \
        const char *frags_[] = {__VA_ARGS__, NULL};                                                \
        for (int i_ = 0; frags_[i_]; i_++)                                                         \
            CHECKF(strstr(out, frags_[i_]) != NULL, "cnn %s: output lacks \"%s\":\n%s", args,      \
                   frags_[i_], out);                                                               \
    } while (0)

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/cnn_test_cli_%d", (int)getpid());
    mkdir(dir, 0700);
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char cwd[256];
    if (!getcwd(cwd, sizeof cwd))
        return 1;
    snprintf(cnn, sizeof cnn, "%s/%s/cnn", cwd, build);

    write_text("m.txt", "Conv2d(2, 3, 3, padding=1)\n");
    int64_t xd[4] = {2, 2, 5, 5}, yd[4] = {2, 3, 5, 5}, bad[4] = {2, 3, 4, 4};
    write_tensor("x.st", "input", 4, xd, CNN_F32);
    write_tensor("gy.st", "output", 4, yd, CNN_F32);
    write_tensor("gybad.st", "output", 4, bad, CNN_F32);
    write_tensor("xname.st", "image", 4, xd, CNN_F32);

    TEST("version, help and usage errors")
    {
        EXPECT("--version", 0, "cnn 0.");
        EXPECT("--help", 0, "usage: cnn COMMAND", "run");
        EXPECT("run --help", 0, "--backward GY");
        EXPECT("", 2, "usage");
        EXPECT("frobnicate", 2, "unknown command 'frobnicate'");
        EXPECT("run m.txt", 2, "--input and --output are required");
        EXPECT("run m.txt --input x.st --output y.st --threads 0", 2, "--threads expects an integer from 1");
        EXPECT("run m.txt --input x.st --output y.st --bogus", 2, "unknown option '--bogus'");
        EXPECT("run m.txt --input x.st --output y.st --backward gy.st", 2, "--backward and --grads go together");
        EXPECT("run m.txt --input x.st --output y.st --seed -1", 2, "--seed");
        CHECK(!exists("y.st"));
    }

    TEST("a successful run writes output, gradients and state")
    {
        EXPECT("run m.txt --input x.st --output y.st --backward gy.st --grads g.st --state-out s.st --seed 3", 0, "");
        CHECK(exists("y.st") && exists("g.st") && exists("s.st"));
        cnn_tensors *ts;
        cnn_tensors_create(&ts);
        char path[512];
        snprintf(path, sizeof path, "%s/g.st", dir);
        CHECK(cnn_tensors_load(ts, path) == CNN_OK);
        CHECK(cnn_tensors_find(ts, "input") >= 0 && cnn_tensors_find(ts, "0.weight") >= 0 &&
              cnn_tensors_find(ts, "0.bias") >= 0 && cnn_tensors_count(ts) == 3);
        cnn_tensors_destroy(ts);
        unlink(path);
        snprintf(path, sizeof path, "%s/y.st", dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/s.st", dir);
        unlink(path);
    }

    TEST("errors name the file and what was expected, and leave no output")
    {
        EXPECT("run missing.txt --input x.st --output y.st", 1, "missing.txt", "cannot open");
        EXPECT("run m.txt --input nothere.st --output y.st", 1, "nothere.st", "cannot open");
        EXPECT("run m.txt --input xname.st --output y.st", 1, "xname.st", "no tensor named 'input'");
        EXPECT("run m.txt --input x.st --output y.st --backward gybad.st --grads g.st", 1,
               "gybad.st", "[2, 3, 4, 4]", "[2, 3, 5, 5]");
        EXPECT("run m.txt --input x.st --output y.st --weights gy.st", 1, "gy.st", "missing key '0.weight'");
        write_text("bad.txt", "Conv2d(2, 3, 3)\nReLU(\n");
        EXPECT("run bad.txt --input x.st --output y.st", 1, "bad.txt:2:5:", "never closed");
        write_text("mis.txt", "Conv2d(3, 3, 3)\n");
        EXPECT("run mis.txt --input x.st --output y.st", 1, "mis.txt:1", "node '0' (Conv2d)", "3 channels");
        write_text("trunc.st", "12345678{}");
        EXPECT("run m.txt --input trunc.st --output y.st", 1, "trunc.st");
        CHECK(!exists("y.st") && !exists("g.st"));
        /* Output into a folder that does not exist: clear message, nothing written. */
        EXPECT("run m.txt --input x.st --output nodir/y.st", 1, "nodir/y.st");
    }

    TEST("an existing output file is replaced only by a complete one")
    {
        write_text("y.st", "previous");
        EXPECT("run mis.txt --input x.st --output y.st", 1, "channels");
        char path[512];
        snprintf(path, sizeof path, "%s/y.st", dir);
        FILE *f = fopen(path, "r");
        char buf[32] = {0};
        CHECK(f && fread(buf, 1, sizeof buf - 1, f) == 8 && strcmp(buf, "previous") == 0);
        if (f)
            fclose(f);
    }

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("  could not remove %s\n", dir);
    return test_finish();
}
