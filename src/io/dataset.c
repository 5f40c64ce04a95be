/* cnn_dataset: format detection, safetensors data files, image folders,
 * batches and transforms. The IDX, CIFAR-10 and PNG/JPEG readers live in
 * idx.c, cifar.c and image.c. */
#include "../core/tensors.h"
#include "dataset_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

/* Folders nested deeper than this inside a class folder are taken for a
 * symbolic-link loop (torchvision's os.walk follows links too). */
#define MAX_DEPTH 64

struct cnn_dataset {
    cnni_ds d;
    int loaded;
    cnn_err err;
};

/* ---- helpers shared with the format readers ------------------------------ */

void cnni_ds_free(cnni_ds *d)
{
    cnni_afree(d->x);
    cnni_afree(d->y);
    if (d->names)
        for (int64_t k = 0; k < d->classes; k++)
            cnni_free(d->names[k]);
    cnni_free(d->names);
    cnni_free(d->source);
    memset(d, 0, sizeof *d);
}

int64_t cnni_ds_bytes(const cnni_ds *d)
{
    return d->n * (d->x_numel * (int64_t)cnni_dtype_size(d->x_dtype) +
                   d->y_numel * (int64_t)cnni_dtype_size(d->y_dtype));
}

int64_t cnni_dataset_bytes(const cnn_dataset *ds) { return ds ? cnni_ds_bytes(&ds->d) : 0; }

char *cnni_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    int slash = a > 0 && dir[a - 1] != '/';
    char *p = cnni_malloc(a + (size_t)slash + b + 1);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    if (slash)
        p[a] = '/';
    memcpy(p + a + (size_t)slash, name, b + 1);
    return p;
}

int cnni_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cnni_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int cnni_exists_in(const char *dir, const char *name, int is_dir)
{
    char p[PATH_MAX];
    size_t a = strlen(dir);
    int n = snprintf(p, sizeof p, "%s%s%s", dir, a && dir[a - 1] == '/' ? "" : "/", name);
    if (n < 0 || (size_t)n >= sizeof p)
        return 0;
    return is_dir ? cnni_is_dir(p) : cnni_is_file(p);
}

static int contains_ci(const char *s, const char *word)
{
    size_t m = strlen(word);
    for (; *s; s++) {
        size_t i = 0;
        while (i < m && s[i] && (s[i] | 0x20) == word[i])
            i++;
        if (i == m)
            return 1;
    }
    return 0;
}

/* ---- handle ---------------------------------------------------------------- */

cnn_status cnn_dataset_create(cnn_dataset **out)
{
    if (!out)
        return CNN_ERR_ARGUMENT;
    *out = cnni_calloc(1, sizeof(cnn_dataset));
    return *out ? CNN_OK : CNN_ERR_NOMEM;
}

void cnn_dataset_destroy(cnn_dataset *ds)
{
    if (!ds)
        return;
    cnni_ds_free(&ds->d);
    cnni_free(ds);
}

const char *cnn_dataset_errmsg(const cnn_dataset *ds)
{
    if (!ds)
        return "no data set (NULL handle)";
    return ds->err.msg;
}

/* ---- the name "fashion-mnist" ---------------------------------------------- */

static char *dup_real(const char *path)
{
    char buf[PATH_MAX];
    return cnni_strdup(realpath(path, buf) ? buf : path);
}

cnn_status cnni_fashion_resolve(const char *env_dir, const char *system_dir, char **out,
                                cnn_err *e)
{
    *out = NULL;
    if (env_dir && *env_dir)
        *out = cnni_strdup(env_dir);
    else if (system_dir && cnni_idx_detect(system_dir))
        *out = cnni_strdup(system_dir);
    else if (cnni_idx_detect(CNNI_FASHION_SUBSET_DIR))
        *out = dup_real(CNNI_FASHION_SUBSET_DIR);
    else {
        /* Beside the executable: build/cnn and build/tests/x in a checkout. */
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n < 0)
            n = 0;
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            /* In a checkout (build/cnn, build/tests/x), or installed
             * (PREFIX/bin/cnn with the subset in PREFIX/share/cnn). */
            static const char *const up[] = {"/../" CNNI_FASHION_SUBSET_DIR,
                                             "/../../" CNNI_FASHION_SUBSET_DIR,
                                             "/../share/cnn/fashion-mnist-subset"};
            for (int i = 0; i < 3; i++) {
                char cand[PATH_MAX + 64];
                snprintf(cand, sizeof cand, "%s%s", exe, up[i]);
                if (cnni_idx_detect(cand)) {
                    if (!(*out = dup_real(cand)))
                        return cnni_oom(e);
                    return CNN_OK;
                }
            }
        }
        return cnni_fail(e, CNN_ERR_NOT_FOUND,
                         "fashion-mnist: not found (looked in %s, which the Debian package "
                         "dataset-fashion-mnist installs, then in %s relative to the working "
                         "folder and to the cnn executable, and in share/cnn beside an installed cnn; "
                         "CNN_FASHION_MNIST_DIR names another "
                         "folder)",
                         system_dir ? system_dir : "(none)", CNNI_FASHION_SUBSET_DIR);
    }
    return *out ? CNN_OK : cnni_oom(e);
}

/* ---- format detection --------------------------------------------------------- */

enum { KIND_FILE = 1, KIND_IDX, KIND_CIFAR, KIND_IMAGES, KIND_IMAGES_SPLIT };

typedef struct {
    char *path; /* the folder or file to read (cnni_malloc) */
    int kind;
    int fashion;
} target;

/* Whether dir has at least one sub-folder. */
static int has_subdir(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    int found = 0;
    struct dirent *de;
    while (!found && (de = readdir(dp)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        found = cnni_exists_in(dir, de->d_name, 1);
    }
    closedir(dp);
    return found;
}

static cnn_status resolve(const char *path, target *t, cnn_err *e)
{
    memset(t, 0, sizeof *t);
    struct stat st;
    if (strcmp(path, "fashion-mnist") == 0 && stat(path, &st) != 0) {
        cnn_status s = cnni_fashion_resolve(getenv("CNN_FASHION_MNIST_DIR"),
                                            CNNI_FASHION_SYSTEM_DIR, &t->path, e);
        if (s)
            return s;
        t->kind = KIND_IDX;
        t->fashion = 1;
        return CNN_OK;
    }
    if (stat(path, &st) != 0)
        return cnni_fail(e, errno == ENOENT ? CNN_ERR_NOT_FOUND : CNN_ERR_IO, "%s: cannot open: %s",
                         path, strerror(errno));
    if (S_ISREG(st.st_mode))
        t->kind = KIND_FILE;
    else if (!S_ISDIR(st.st_mode))
        return cnni_fail(e, CNN_ERR_IO, "%s: neither a file nor a folder", path);
    if (!(t->path = cnni_strdup(path)))
        return cnni_oom(e);
    if (t->kind)
        return CNN_OK;
    if (cnni_idx_detect(path)) {
        t->kind = KIND_IDX;
        char real[PATH_MAX];
        t->fashion = contains_ci(realpath(path, real) ? real : path, "fashion");
        return CNN_OK;
    }
    if (cnni_cifar_detect(path)) {
        t->kind = KIND_CIFAR;
        return CNN_OK;
    }
    /* The CIFAR-10 archive unpacks into cifar-10-batches-bin/. */
    char *sub = cnni_path_join(path, "cifar-10-batches-bin");
    if (!sub)
        return cnni_oom(e);
    if (cnni_cifar_detect(sub)) {
        cnni_free(t->path);
        t->path = sub;
        t->kind = KIND_CIFAR;
        return CNN_OK;
    }
    cnni_free(sub);
    if (cnni_exists_in(path, "train", 1) || cnni_exists_in(path, "test", 1)) {
        t->kind = KIND_IMAGES_SPLIT;
        return CNN_OK;
    }
    if (has_subdir(path)) {
        t->kind = KIND_IMAGES;
        return CNN_OK;
    }
    return cnni_fail(e, CNN_ERR_NOT_FOUND,
                     "%s: no data set found (expected MNIST-style IDX files such as "
                     "train-images-idx3-ubyte.gz, CIFAR-10 files data_batch_1.bin .. "
                     "data_batch_5.bin and test_batch.bin, or one sub-folder of PNG/JPEG "
                     "images per class)",
                     path);
}

/* ---- safetensors data files ---------------------------------------------------- */

static cnn_status tensor_fail(cnn_tensors *ts, const char *path, cnn_err *e)
{
    const char *m = cnn_tensors_errmsg(ts);
    cnn_status code = ts->err.code ? ts->err.code : CNN_ERR_FORMAT;
    if (strstr(m, path))
        return cnni_fail(e, code, "%s", m);
    return cnni_fail(e, code, "%s: %s", path, m);
}

/* Converts tensor i to the dtype the data set keeps: x to U8 or F32, y to
 * I64 (class indices) or F32. */
static cnn_status normalise_dtype(cnn_tensors *ts, int i, int is_x, const char *path, cnn_err *e)
{
    cnn_dtype dt = ts->t[i].dtype, want;
    switch (dt) {
    case CNN_U8: want = is_x ? CNN_U8 : CNN_I64; break;
    case CNN_F32: case CNN_F64: case CNN_F16: case CNN_BF16: want = CNN_F32; break;
    case CNN_I32: case CNN_I64:
        if (is_x)
            return cnni_fail(e, CNN_ERR_FORMAT, "%s: \"x\" has dtype %s (expected F32 or U8)", path,
                             cnn_dtype_name(dt));
        want = CNN_I64;
        break;
    default:
        return cnni_fail(e, CNN_ERR_FORMAT, "%s: \"%s\" has dtype %s", path, is_x ? "x" : "y",
                         cnn_dtype_name(dt));
    }
    if (want != dt && cnn_tensors_convert(ts, i, want))
        return tensor_fail(ts, path, e);
    return CNN_OK;
}

/* Checks the "x" and "y" of a loaded file and moves their buffers into d. */
static cnn_status take_xy(cnni_ds *d, cnn_tensors *ts, const char *path, cnn_err *e)
{
    char sx[128], sy[128];
    int ix = cnn_tensors_find(ts, "x"), iy = cnn_tensors_find(ts, "y");
    if (ix < 0 || iy < 0)
        return cnni_fail(e, CNN_ERR_NOT_FOUND,
                         "%s: no tensor named \"%s\" (expected \"x\": the samples, N x ..., and "
                         "\"y\": the targets, N or N x ...)",
                         path, ix < 0 ? "x" : "y");
    cnni_named *x = &ts->t[ix], *y = &ts->t[iy];
    if (x->shape.ndim < 1 || y->shape.ndim < 1)
        return cnni_fail(e, CNN_ERR_FORMAT,
                         "%s: \"%s\" is a scalar (expected N x ..., one entry per sample)", path,
                         x->shape.ndim < 1 ? "x" : "y");
    cnni_shape_str(&x->shape, sx, sizeof sx);
    cnni_shape_str(&y->shape, sy, sizeof sy);
    if (x->shape.dims[0] != y->shape.dims[0])
        return cnni_fail(e, CNN_ERR_FORMAT,
                         "%s: \"x\" holds %lld samples (shape %s) but \"y\" holds %lld targets "
                         "(shape %s); expected one target per sample",
                         path, (long long)x->shape.dims[0], sx, (long long)y->shape.dims[0], sy);
    if (x->shape.dims[0] == 0)
        return cnni_fail(e, CNN_ERR_FORMAT,
                         "%s: \"x\" holds no samples (shape %s; expected at least one)", path, sx);
    cnn_status st = normalise_dtype(ts, ix, 1, path, e);
    if (!st)
        st = normalise_dtype(ts, iy, 0, path, e);
    if (st)
        return st;
    x = &ts->t[ix];
    y = &ts->t[iy];
    int64_t n = x->shape.dims[0];
    int64_t xn = cnni_numel(&x->shape), yn = cnni_numel(&y->shape);
    if (x->dtype == CNN_F32)
        for (int64_t i = 0; i < xn; i++)
            if (!isfinite(((float *)x->data)[i]))
                return cnni_fail(e, CNN_ERR_NUMERIC,
                                 "%s: \"x\" of sample %lld holds %g (expected finite values)",
                                 path, (long long)(i / (xn / n)), ((float *)x->data)[i]);
    int64_t classes = 0;
    if (y->dtype == CNN_F32) {
        for (int64_t i = 0; i < yn; i++)
            if (!isfinite(((float *)y->data)[i]))
                return cnni_fail(e, CNN_ERR_NUMERIC,
                                 "%s: \"y\" of sample %lld holds %g (expected finite values)",
                                 path, (long long)(i / (yn / n)), ((float *)y->data)[i]);
    } else {
        for (int64_t i = 0; i < yn; i++) {
            int64_t v = ((int64_t *)y->data)[i];
            if (v < 0 || v >= INT32_MAX)
                return cnni_fail(e, CNN_ERR_FORMAT,
                                 "%s: \"y\" of sample %lld is the class index %lld (expected 0 "
                                 ".. %d)",
                                 path, (long long)(i / (yn / n)), (long long)v, INT32_MAX - 1);
            if (v + 1 > classes)
                classes = v + 1;
        }
    }
    d->n = n;
    d->x_dtype = x->dtype;
    d->x_shape.ndim = x->shape.ndim - 1;
    for (int k = 1; k < x->shape.ndim; k++)
        d->x_shape.dims[k - 1] = x->shape.dims[k];
    d->x_numel = xn / n;
    d->y_dtype = y->dtype;
    d->y_shape.ndim = y->shape.ndim - 1;
    for (int k = 1; k < y->shape.ndim; k++)
        d->y_shape.dims[k - 1] = y->shape.dims[k];
    d->y_numel = yn / n;
    d->classes = classes;
    /* Take the buffers over rather than copy them: both are cnni_amalloc'd. */
    d->x = x->data;
    d->y = y->data;
    x->data = NULL;
    x->nbytes = 0;
    y->data = NULL;
    y->nbytes = 0;
    return CNN_OK;
}

static cnn_status load_safetensors(cnni_ds *d, const char *path, cnn_err *e)
{
    cnn_tensors *ts;
    if (cnn_tensors_create(&ts))
        return cnni_oom(e);
    cnn_status st = cnn_tensors_load(ts, path) ? tensor_fail(ts, path, e) : take_xy(d, ts, path, e);
    cnn_tensors_destroy(ts);
    return st;
}

/* ---- image folders -------------------------------------------------------------- */

typedef struct {
    char **v;
    int n, cap;
} strlist;

static int strlist_push(strlist *l, char *s)
{
    if (!s || !cnni_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(char *))) {
        cnni_free(s);
        return 0;
    }
    l->v[l->n++] = s;
    return 1;
}

static void strlist_free(strlist *l)
{
    for (int i = 0; i < l->n; i++)
        cnni_free(l->v[i]);
    cnni_free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sort_strlist(strlist *l)
{
    if (l->n > 1)
        qsort(l->v, (size_t)l->n, sizeof(char *), cmp_str);
}

/* Names in dir, sorted: sub-folders (links followed) into dirs, everything
 * else into files, as os.walk splits them. Either list may be NULL. */
static cnn_status list_dir(const char *dir, strlist *dirs, strlist *files, cnn_err *e)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return cnni_fail(e, CNN_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    cnn_status st = CNN_OK;
    struct dirent *de;
    while (!st && (de = readdir(dp)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *p = cnni_path_join(dir, de->d_name);
        if (!p) {
            st = cnni_oom(e);
            break;
        }
        strlist *to = cnni_is_dir(p) ? dirs : files;
        cnni_free(p);
        if (to && !strlist_push(to, cnni_strdup(de->d_name)))
            st = cnni_oom(e);
    }
    closedir(dp);
    if (dirs)
        sort_strlist(dirs);
    if (files)
        sort_strlist(files);
    return st;
}

/* dir and every folder below it, as full paths (unsorted). */
static cnn_status collect_dirs(const char *dir, int depth, strlist *out, cnn_err *e)
{
    if (depth > MAX_DEPTH)
        return cnni_fail(e, CNN_ERR_FORMAT,
                         "%s: folders nested more than %d deep (a symbolic link loop?)", dir,
                         MAX_DEPTH);
    if (!strlist_push(out, cnni_strdup(dir)))
        return cnni_oom(e);
    strlist sub = {0};
    cnn_status st = list_dir(dir, &sub, NULL, e);
    for (int i = 0; !st && i < sub.n; i++) {
        char *p = cnni_path_join(dir, sub.v[i]);
        if (!p)
            st = cnni_oom(e);
        else
            st = collect_dirs(p, depth + 1, out, e);
        cnni_free(p);
    }
    strlist_free(&sub);
    return st;
}

typedef struct {
    strlist paths;
    int64_t *labels;
    int cap;
} samples;

/* Appends the images of class k found in dir, in torchvision's order: the
 * folders sorted by path, the files of each sorted by name. */
static cnn_status collect_class(const char *dir, int64_t k, samples *s, cnn_err *e)
{
    strlist dirs = {0};
    cnn_status st = collect_dirs(dir, 0, &dirs, e);
    sort_strlist(&dirs);
    int before = s->paths.n;
    for (int i = 0; !st && i < dirs.n; i++) {
        strlist files = {0};
        st = list_dir(dirs.v[i], NULL, &files, e);
        for (int j = 0; !st && j < files.n; j++) {
            int kind = cnni_image_ext_kind(files.v[j]);
            if (kind == CNNI_IMG_NONE)
                continue;
            char *p = cnni_path_join(dirs.v[i], files.v[j]);
            if (!p) {
                st = cnni_oom(e);
                break;
            }
            if (kind == CNNI_IMG_UNSUPPORTED) {
                st = cnni_fail(e, CNN_ERR_UNSUPPORTED,
                               "%s: this image format is not supported (expected .png, .jpg or "
                               ".jpeg; convert the image, or move it out of the folder)",
                               p);
                cnni_free(p);
                break;
            }
            if (!cnni_grow((void **)&s->labels, &s->cap, s->paths.n + 1, sizeof(int64_t))) {
                cnni_free(p);
                st = cnni_oom(e);
                break;
            }
            if (!strlist_push(&s->paths, p)) {
                st = cnni_oom(e);
                break;
            }
            s->labels[s->paths.n - 1] = k;
        }
        strlist_free(&files);
    }
    strlist_free(&dirs);
    if (!st && s->paths.n == before)
        st = cnni_fail(e, CNN_ERR_NOT_FOUND,
                       "%s: class folder holds no images (expected .png, .jpg or .jpeg files)",
                       dir);
    return st;
}

static cnn_status load_images(cnni_ds *d, const char *root, cnn_err *e)
{
    strlist classes = {0};
    samples s;
    memset(&s, 0, sizeof s);
    cnni_image first, img;
    memset(&first, 0, sizeof first);
    memset(&img, 0, sizeof img);
    cnn_status st = list_dir(root, &classes, NULL, e);
    if (!st && classes.n == 0)
        st = cnni_fail(e, CNN_ERR_NOT_FOUND,
                       "%s: no class sub-folders (expected one folder of images per class)", root);
    for (int k = 0; !st && k < classes.n; k++) {
        char *p = cnni_path_join(root, classes.v[k]);
        st = p ? collect_class(p, k, &s, e) : cnni_oom(e);
        cnni_free(p);
    }
    int64_t n = s.paths.n, per = 0, total = 0;
    if (!st)
        st = cnni_image_decode(s.paths.v[0], &first, e);
    if (!st) {
        per = first.c * first.h * first.w;
        if (!cnni_mul_ok(n, per, &total))
            st = cnni_fail(e, CNN_ERR_OVERFLOW, "%s: %lld images of %lld bytes are too many", root,
                           (long long)n, (long long)per);
    }
    if (!st) {
        d->x = cnni_amalloc_large((size_t)total);
        d->y = cnni_amalloc((size_t)n * sizeof(int64_t));
        if (!d->x || !d->y)
            st = cnni_fail(e, CNN_ERR_NOMEM, "%s: out of memory for %lld images (%lld bytes)", root,
                           (long long)n, (long long)total);
    }
    for (int64_t i = 0; !st && i < n; i++) {
        const cnni_image *im = &first;
        if (i > 0) {
            st = cnni_image_decode(s.paths.v[i], &img, e);
            if (st)
                break;
            if (img.c != first.c || img.h != first.h || img.w != first.w) {
                st = cnni_fail(e, CNN_ERR_SHAPE,
                               "%s: image is %lldx%lldx%lld (C x H x W) but %s, the first image, "
                               "is %lldx%lldx%lld (expected every image to have the same size and "
                               "channel count)",
                               s.paths.v[i], (long long)img.c, (long long)img.h, (long long)img.w,
                               s.paths.v[0], (long long)first.c, (long long)first.h,
                               (long long)first.w);
                break;
            }
            im = &img;
        }
        memcpy((uint8_t *)d->x + i * per, im->pix, (size_t)per);
        ((int64_t *)d->y)[i] = s.labels[i];
        cnni_free(img.pix);
        img.pix = NULL;
    }
    cnni_free(img.pix);
    cnni_free(first.pix);
    if (!st) {
        d->n = n;
        d->x_dtype = CNN_U8;
        d->x_shape.ndim = 3;
        d->x_shape.dims[0] = first.c;
        d->x_shape.dims[1] = first.h;
        d->x_shape.dims[2] = first.w;
        d->x_numel = per;
        d->y_dtype = CNN_I64;
        d->y_shape.ndim = 0;
        d->y_numel = 1;
        d->classes = classes.n;
        d->names = classes.v; /* the sorted folder names become the class names */
        classes.v = NULL;
        classes.n = 0;
    }
    strlist_free(&classes);
    strlist_free(&s.paths);
    cnni_free(s.labels);
    return st;
}

/* ---- loading ------------------------------------------------------------------------ */

static const char *split_name(int split) { return split == CNN_SPLIT_TEST ? "test" : "train"; }

cnn_status cnn_dataset_load(cnn_dataset *ds, const char *path, int split)
{
    if (!ds)
        return CNN_ERR_ARGUMENT;
    cnn_err *e = &ds->err;
    cnni_err_clear(e);
    cnni_ds_free(&ds->d);
    ds->loaded = 0;
    if (!path)
        return cnni_fail(e, CNN_ERR_ARGUMENT, "cnn_dataset_load: NULL path");
    if (split != CNN_SPLIT_TRAIN && split != CNN_SPLIT_TEST)
        return cnni_fail(e, CNN_ERR_ARGUMENT,
                         "cnn_dataset_load: split %d (expected CNN_SPLIT_TRAIN or CNN_SPLIT_TEST)",
                         split);
    target t;
    cnn_status st = resolve(path, &t, e);
    cnni_ds *d = &ds->d;
    char *source = NULL;
    if (!st) {
        switch (t.kind) {
        case KIND_FILE: st = load_safetensors(d, t.path, e); break;
        case KIND_IDX: st = cnni_idx_load(d, t.path, split, t.fashion, e); break;
        case KIND_CIFAR: st = cnni_cifar_load(d, t.path, split, e); break;
        case KIND_IMAGES_SPLIT:
            source = cnni_path_join(t.path, split_name(split));
            if (!source)
                st = cnni_oom(e);
            else if (!cnni_is_dir(source))
                st = cnni_fail(e, CNN_ERR_NOT_FOUND,
                               "%s: no %s split (expected a \"%s\" sub-folder of class folders)",
                               t.path, split_name(split), split_name(split));
            else
                st = load_images(d, source, e);
            break;
        default: st = load_images(d, t.path, e); break;
        }
    }
    if (!st) {
        d->source = source ? source : t.path;
        if (source)
            cnni_free(t.path);
        ds->loaded = 1;
        return CNN_OK;
    }
    cnni_free(source);
    cnni_free(t.path);
    cnni_ds_free(d);
    return st;
}

int cnn_dataset_has_split(const char *path, int split)
{
    if (!path || (split != CNN_SPLIT_TRAIN && split != CNN_SPLIT_TEST))
        return 0;
    cnn_err scratch;
    target t;
    if (resolve(path, &t, &scratch))
        return 0;
    int has = 0;
    switch (t.kind) {
    case KIND_IDX: has = cnni_idx_has_split(t.path, split); break;
    case KIND_CIFAR: has = cnni_cifar_has_split(t.path, split); break;
    case KIND_IMAGES_SPLIT: has = cnni_exists_in(t.path, split_name(split), 1); break;
    default: has = split == CNN_SPLIT_TRAIN; break;
    }
    cnni_free(t.path);
    return has;
}

/* ---- queries ------------------------------------------------------------------------ */

int64_t cnn_dataset_size(const cnn_dataset *ds) { return ds && ds->loaded ? ds->d.n : 0; }

cnn_status cnn_dataset_shapes(const cnn_dataset *ds, cnn_shape *x, cnn_shape *y,
                              cnn_dtype *y_dtype)
{
    if (!ds)
        return CNN_ERR_ARGUMENT;
    /* The message goes on the handle, which is only const in this view. */
    if (!ds->loaded)
        return cnni_fail((cnn_err *)&ds->err, CNN_ERR_STATE,
                         "cnn_dataset_shapes: no data set loaded (call cnn_dataset_load first)");
    if (x)
        *x = ds->d.x_shape;
    if (y)
        *y = ds->d.y_shape;
    if (y_dtype)
        *y_dtype = ds->d.y_dtype;
    return CNN_OK;
}

int64_t cnn_dataset_classes(const cnn_dataset *ds) { return ds && ds->loaded ? ds->d.classes : 0; }

const char *cnn_dataset_class_name(const cnn_dataset *ds, int64_t k)
{
    if (!ds || !ds->loaded || !ds->d.names || k < 0 || k >= ds->d.classes)
        return NULL;
    return ds->d.names[k];
}

const char *cnn_dataset_source(const cnn_dataset *ds)
{
    return ds && ds->loaded ? ds->d.source : NULL;
}

/* ---- batches and transforms ---------------------------------------------------------- */

static cnn_status check_transform(const cnn_dataset *ds, const cnn_transform *t, cnn_rng *rng,
                                  cnn_err *e)
{
    const cnni_ds *d = &ds->d;
    char sb[128];
    cnni_shape_str(&d->x_shape, sb, sizeof sb);
    int64_t channels = d->x_shape.ndim >= 3 ? d->x_shape.dims[0] : 1;
    if (t->crop_pad < 0)
        return cnni_fail(e, CNN_ERR_ARGUMENT, "transform: crop_pad %d (expected 0 or more)",
                         t->crop_pad);
    if ((t->crop_pad > 0 || t->flip) && d->x_shape.ndim < 2)
        return cnni_fail(e, CNN_ERR_ARGUMENT,
                         "transform: crop and flip need samples of at least 2 dimensions (... x H "
                         "x W), but samples have shape %s",
                         sb);
    if ((t->crop_pad > 0 || t->flip) && !rng)
        return cnni_fail(e, CNN_ERR_ARGUMENT,
                         "transform: random crop and flip need a generator (rng is NULL)");
    if (t->n_norm < 0 || t->n_norm > 8 || (t->n_norm > 1 && t->n_norm != channels))
        return cnni_fail(e, CNN_ERR_ARGUMENT,
                         "transform: n_norm %d (expected 0, 1 or the %lld channels of samples of "
                         "shape %s, at most 8)",
                         t->n_norm, (long long)channels, sb);
    for (int k = 0; k < t->n_norm; k++)
        if (!isfinite(t->mean[k]) || !isfinite(t->std[k]) || t->std[k] == 0)
            return cnni_fail(e, CNN_ERR_ARGUMENT,
                             "transform: mean[%d] = %g, std[%d] = %g (expected finite values and "
                             "a non-zero std)",
                             k, t->mean[k], k, t->std[k]);
    return CNN_OK;
}

/* Element base + i of the samples as float32, ToTensor-scaled for bytes. */
static inline float sample_at(const cnni_ds *d, const float *lut, int64_t base, int64_t i)
{
    if (d->x_dtype == CNN_U8)
        return lut[((const uint8_t *)d->x)[base + i]];
    return ((const float *)d->x)[base + i];
}

/* dst[i] = src[i] / 255, as ToTensor computes it (a float division, the
 * lookup table's values). Whole vectors are stored: the batch is written
 * over lines that left the caches during the last step, and scalar stores
 * would let only a few of those lines be fetched at a time. */
static void bytes_to_unit(const uint8_t *src, int64_t n, float *dst)
{
    int64_t i = 0;
#if defined(__SSE2__)
    const __m128 d255 = _mm_set1_ps(255.0f);
    const __m128i zero = _mm_setzero_si128();
    for (; i + 16 <= n; i += 16) {
        const __m128i b = _mm_loadu_si128((const __m128i *)(src + i));
        const __m128i lo = _mm_unpacklo_epi8(b, zero), hi = _mm_unpackhi_epi8(b, zero);
        _mm_storeu_ps(dst + i, _mm_div_ps(_mm_cvtepi32_ps(_mm_unpacklo_epi16(lo, zero)), d255));
        _mm_storeu_ps(dst + i + 4, _mm_div_ps(_mm_cvtepi32_ps(_mm_unpackhi_epi16(lo, zero)), d255));
        _mm_storeu_ps(dst + i + 8, _mm_div_ps(_mm_cvtepi32_ps(_mm_unpacklo_epi16(hi, zero)), d255));
        _mm_storeu_ps(dst + i + 12, _mm_div_ps(_mm_cvtepi32_ps(_mm_unpackhi_epi16(hi, zero)), d255));
    }
#endif
    for (; i < n; i++)
        dst[i] = (float)src[i] / 255.0f;
}

static void copy_sample(const cnni_ds *d, const float *lut, int64_t idx, const cnn_transform *t,
                        cnn_rng *rng, float *dst)
{
    int64_t S = d->x_numel, base = idx * S;
    int pad = t ? t->crop_pad : 0;
    int flip = t ? t->flip : 0;
    if (pad <= 0 && !flip && d->x_dtype == CNN_U8) {
        bytes_to_unit((const uint8_t *)d->x + base, S, dst);
    } else if (pad <= 0 && !flip) {
        for (int64_t i = 0; i < S; i++)
            dst[i] = sample_at(d, lut, base, i);
    } else {
        int nd = d->x_shape.ndim;
        int64_t H = d->x_shape.dims[nd - 2], W = d->x_shape.dims[nd - 1];
        int64_t planes = S / (H * W);
        /* torchvision's RandomCrop draws the row offset, then the column
         * offset, in [0, 2 * padding]; RandomHorizontalFlip draws after. */
        int64_t oi = 0, oj = 0;
        if (pad > 0) {
            oi = (int64_t)cnni_rng_below(rng, 2 * (uint64_t)pad + 1) - pad;
            oj = (int64_t)cnni_rng_below(rng, 2 * (uint64_t)pad + 1) - pad;
        }
        int flipped = flip && cnni_rng_uniform(rng) < 0.5;
        for (int64_t p = 0; p < planes; p++) {
            float *out = dst + p * H * W;
            int64_t pbase = base + p * H * W;
            for (int64_t yy = 0; yy < H; yy++) {
                int64_t sy = yy + oi;
                for (int64_t xx = 0; xx < W; xx++) {
                    int64_t sx = (flipped ? W - 1 - xx : xx) + oj;
                    out[yy * W + xx] = (sy < 0 || sy >= H || sx < 0 || sx >= W)
                                           ? 0.0f
                                           : sample_at(d, lut, pbase, sy * W + sx);
                }
            }
        }
    }
    if (t && t->n_norm > 0) {
        int64_t per = t->n_norm == 1 ? S : S / t->n_norm;
        for (int c = 0; c < t->n_norm; c++) {
            float m = t->mean[c], s = t->std[c];
            for (int64_t i = c * per; i < (c + 1) * per; i++)
                dst[i] = (dst[i] - m) / s;
        }
    }
}

cnn_status cnn_dataset_batch(cnn_dataset *ds, const int64_t *indices, int64_t n,
                             const cnn_transform *t, cnn_rng *rng, float *x, void *y)
{
    if (!ds)
        return CNN_ERR_ARGUMENT;
    cnn_err *e = &ds->err;
    cnni_err_clear(e);
    const cnni_ds *d = &ds->d;
    if (!ds->loaded)
        return cnni_fail(e, CNN_ERR_STATE,
                         "cnn_dataset_batch: no data set loaded (call cnn_dataset_load first)");
    if (n < 0 || (n > 0 && (!indices || !x)))
        return cnni_fail(e, CNN_ERR_ARGUMENT,
                         "cnn_dataset_batch: n = %lld with indices %s and x %s (expected n >= 0 "
                         "and both given)",
                         (long long)n, indices ? "given" : "NULL", x ? "given" : "NULL");
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= d->n)
            return cnni_fail(e, CNN_ERR_ARGUMENT,
                             "cnn_dataset_batch: index %lld (at position %lld) is out of range "
                             "(expected 0 .. %lld for %s, which holds %lld samples)",
                             (long long)indices[i], (long long)i, (long long)d->n - 1, d->source,
                             (long long)d->n);
    if (t) {
        cnn_status st = check_transform(ds, t, rng, e);
        if (st)
            return st;
    }
    float lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = (float)v / 255.0f; /* exactly ToTensor's img.float().div(255) */
    size_t ysize = (size_t)d->y_numel * cnni_dtype_size(d->y_dtype);
    const size_t sample_bytes = (size_t)d->x_numel * cnni_dtype_size(d->x_dtype);
    for (int64_t i = 0; i < n; i++) {
        /* The samples are scattered over a data set far larger than the
         * caches: the next one is fetched while this one is converted. */
        if (i + 1 < n)
            for (size_t b = 0; b < sample_bytes; b += 64)
                __builtin_prefetch((const char *)d->x + (size_t)indices[i + 1] * sample_bytes + b);
        copy_sample(d, lut, indices[i], t, rng, x + i * d->x_numel);
        if (y)
            memcpy((char *)y + (size_t)i * ysize, (const char *)d->y + (size_t)indices[i] * ysize,
                   ysize);
    }
    return CNN_OK;
}

/* ---- single images --------------------------------------------------------------------- */

cnn_status cnn_image_load(cnn_dataset *ds, const char *path, float **data, cnn_shape *shape)
{
    if (!ds)
        return CNN_ERR_ARGUMENT;
    cnn_err *e = &ds->err;
    cnni_err_clear(e);
    if (!path || !data)
        return cnni_fail(e, CNN_ERR_ARGUMENT, "cnn_image_load: NULL %s", path ? "data" : "path");
    *data = NULL;
    cnni_image img;
    cnn_status st = cnni_image_decode(path, &img, e);
    if (st)
        return st;
    int64_t n = img.c * img.h * img.w;
    float *out = cnni_malloc((size_t)n * sizeof(float));
    if (!out) {
        cnni_free(img.pix);
        return cnni_fail(e, CNN_ERR_NOMEM, "%s: out of memory for %lld floats", path, (long long)n);
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)img.pix[i] / 255.0f;
    if (shape) {
        memset(shape, 0, sizeof *shape);
        shape->ndim = 3;
        shape->dims[0] = img.c;
        shape->dims[1] = img.h;
        shape->dims[2] = img.w;
    }
    cnni_free(img.pix);
    *data = out;
    return CNN_OK;
}

cnn_status cnn_image_save_png(cnn_dataset *ds, const char *path, const float *data,
                              const cnn_shape *shape, float lo, float hi)
{
    if (!ds)
        return CNN_ERR_ARGUMENT;
    cnn_err *e = &ds->err;
    cnni_err_clear(e);
    if (!path || !data || !shape)
        return cnni_fail(e, CNN_ERR_ARGUMENT, "cnn_image_save_png: NULL %s",
                         !path ? "path" : !data ? "data" : "shape");
    char sb[128];
    cnni_shape_str(shape, sb, sizeof sb);
    int64_t c = 0, h = 0, w = 0;
    if (shape->ndim == 2) {
        c = 1;
        h = shape->dims[0];
        w = shape->dims[1];
    } else if (shape->ndim == 3) {
        c = shape->dims[0];
        h = shape->dims[1];
        w = shape->dims[2];
    }
    if ((c != 1 && c != 3) || h < 1 || w < 1)
        return cnni_fail(e, CNN_ERR_ARGUMENT,
                         "%s: cannot save shape %s as a PNG (expected H x W, or C x H x W with C = "
                         "1 or 3, and positive sizes)",
                         path, sb);
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo))
        return cnni_fail(e, CNN_ERR_ARGUMENT,
                         "%s: value range [%g, %g] (expected finite lo < hi)", path, lo, hi);
    int64_t n;
    cnn_status st = cnni_shape_numel(shape, &n, e, "image");
    if (st)
        return st;
    if (n > CNNI_DS_MAX_DECODED)
        return cnni_fail(e, CNN_ERR_OVERFLOW, "%s: image of shape %s is larger than 4 GiB", path,
                         sb);
    uint8_t *planes = cnni_malloc((size_t)n);
    if (!planes)
        return cnni_oom(e);
    double scale = 255.0 / ((double)hi - (double)lo);
    for (int64_t i = 0; i < n; i++) {
        double v = ((double)data[i] - lo) * scale;
        /* NaN maps to 0 like values below lo; infinities clamp. */
        planes[i] = !(v > 0) ? 0 : v >= 255 ? 255 : (uint8_t)floor(v + 0.5);
    }
    st = cnni_image_write_png(path, planes, c, h, w, e);
    cnni_free(planes);
    return st;
}
