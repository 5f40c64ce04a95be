/* CIFAR-10 binary version: data_batch_1.bin .. data_batch_5.bin (training)
 * and test_batch.bin (test), each a sequence of 3073-byte records: one
 * label byte, then 1024 red, 1024 green and 1024 blue bytes of a 32 x 32
 * image (already planar, so records are split into samples and labels
 * without reordering). batches.meta.txt, when present, lists the class names
 * one per line. */
#include "dataset_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_PIXELS 3072
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_TRAIN_FILES 5
#define CIFAR_MAX_CLASSES 256 /* a label is one byte */
#define CIFAR_META_MAX (1 << 16)

static const char *const default_names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};

static void file_name(int split, int i, char *buf, size_t n)
{
    if (split == CNN_SPLIT_TEST)
        snprintf(buf, n, "test_batch.bin");
    else
        snprintf(buf, n, "data_batch_%d.bin", i + 1);
}

int cnni_cifar_has_split(const char *dir, int split)
{
    return cnni_exists_in(dir, split == CNN_SPLIT_TEST ? "test_batch.bin" : "data_batch_1.bin", 0);
}

int cnni_cifar_detect(const char *dir)
{
    return cnni_cifar_has_split(dir, CNN_SPLIT_TRAIN) || cnni_cifar_has_split(dir, CNN_SPLIT_TEST);
}

/* Reads the class names of batches.meta.txt into d (the ten standard names
 * when the file is absent). */
static cnn_status read_names(cnni_ds *d, const char *dir, cnn_err *e)
{
    if (!cnni_exists_in(dir, "batches.meta.txt", 0)) {
        d->classes = 10;
        d->names = cnni_calloc(10, sizeof(char *));
        if (!d->names)
            return cnni_oom(e);
        for (int k = 0; k < 10; k++)
            if (!(d->names[k] = cnni_strdup(default_names[k])))
                return cnni_oom(e);
        return CNN_OK;
    }
    char *path = cnni_path_join(dir, "batches.meta.txt");
    if (!path)
        return cnni_oom(e);
    char *text;
    size_t len;
    cnn_status st = cnni_read_file(path, &text, &len, CIFAR_META_MAX, e);
    if (st) {
        cnni_free(path);
        return st;
    }
    int count = 0;
    d->names = cnni_calloc(CIFAR_MAX_CLASSES, sizeof(char *));
    if (!d->names)
        st = cnni_oom(e);
    for (char *line = text; !st && line < text + len;) {
        char *end = memchr(line, '\n', (size_t)(text + len - line));
        if (!end)
            end = text + len;
        char *a = line, *b = end;
        while (a < b && (*a == ' ' || *a == '\t' || *a == '\r'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
            b--;
        if (b > a) {
            if (count == CIFAR_MAX_CLASSES)
                st = cnni_fail(e, CNN_ERR_FORMAT,
                               "%s: more than %d class names (labels are single bytes)", path,
                               CIFAR_MAX_CLASSES);
            else if (!(d->names[count++] = cnni_strndup(a, (size_t)(b - a))))
                st = cnni_oom(e);
        }
        line = end + 1;
    }
    if (!st && count == 0)
        st = cnni_fail(e, CNN_ERR_FORMAT,
                       "%s: no class names (expected one name per line, e.g. \"airplane\")", path);
    cnni_free(text);
    cnni_free(path);
    d->classes = count;
    return st;
}

cnn_status cnni_cifar_load(cnni_ds *d, const char *dir, int split, cnn_err *e)
{
    int nfiles = split == CNN_SPLIT_TEST ? 1 : CIFAR_TRAIN_FILES;
    char *paths[CIFAR_TRAIN_FILES] = {0};
    int64_t records[CIFAR_TRAIN_FILES] = {0};
    int64_t total = 0;
    cnn_status st = read_names(d, dir, e);
    for (int i = 0; !st && i < nfiles; i++) {
        char name[32];
        file_name(split, i, name, sizeof name);
        paths[i] = cnni_path_join(dir, name);
        if (!paths[i]) {
            st = cnni_oom(e);
            break;
        }
        struct stat sb;
        if (stat(paths[i], &sb) != 0) {
            st = split == CNN_SPLIT_TEST
                     ? cnni_fail(e, CNN_ERR_NOT_FOUND, "%s: no test split: expected test_batch.bin",
                                 dir)
                     : cnni_fail(e, CNN_ERR_NOT_FOUND,
                                 "%s: missing (CIFAR-10's training split is data_batch_1.bin .. "
                                 "data_batch_5.bin)",
                                 paths[i]);
            break;
        }
        if (!S_ISREG(sb.st_mode)) {
            st = cnni_fail(e, CNN_ERR_IO, "%s: not a regular file", paths[i]);
            break;
        }
        int64_t size = (int64_t)sb.st_size;
        if (size == 0 || size % CIFAR_RECORD != 0) {
            st = cnni_fail(e, CNN_ERR_FORMAT,
                           "%s: %lld bytes is not a whole, non-zero number of %d-byte records (1 "
                           "label byte + %d pixel bytes each)",
                           paths[i], (long long)size, CIFAR_RECORD, CIFAR_PIXELS);
            break;
        }
        records[i] = size / CIFAR_RECORD;
        total += records[i];
    }
    int64_t xbytes = 0;
    if (!st && !cnni_mul_ok(total, CIFAR_PIXELS, &xbytes))
        st = cnni_fail(e, CNN_ERR_OVERFLOW, "%s: %lld records are too many", dir, (long long)total);
    if (!st) {
        d->x = cnni_amalloc_large((size_t)xbytes);
        d->y = cnni_amalloc((size_t)total * sizeof(int64_t));
        if (!d->x || !d->y)
            st = cnni_fail(e, CNN_ERR_NOMEM, "%s: out of memory for %lld images", dir,
                           (long long)total);
    }
    int64_t at = 0;
    for (int i = 0; !st && i < nfiles; i++) {
        FILE *fp = fopen(paths[i], "rb");
        if (!fp) {
            st = cnni_fail(e, CNN_ERR_IO, "%s: cannot open: %s", paths[i], strerror(errno));
            break;
        }
        unsigned char rec[CIFAR_RECORD];
        for (int64_t r = 0; r < records[i]; r++, at++) {
            if (fread(rec, 1, CIFAR_RECORD, fp) != CIFAR_RECORD) {
                st = cnni_fail(e, CNN_ERR_IO, "%s: cannot read record %lld: %s", paths[i],
                               (long long)r,
                               ferror(fp) ? strerror(errno) : "unexpected end of file");
                break;
            }
            if (rec[0] >= d->classes) {
                st = cnni_fail(e, CNN_ERR_FORMAT,
                               "%s: record %lld has label %d (expected 0..%lld for %lld classes)",
                               paths[i], (long long)r, rec[0], (long long)d->classes - 1,
                               (long long)d->classes);
                break;
            }
            ((int64_t *)d->y)[at] = rec[0];
            memcpy((uint8_t *)d->x + at * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
        }
        fclose(fp);
    }
    for (int i = 0; i < nfiles; i++)
        cnni_free(paths[i]);
    if (st)
        return st;
    d->n = total;
    d->x_dtype = CNN_U8;
    d->x_shape.ndim = 3;
    d->x_shape.dims[0] = 3;
    d->x_shape.dims[1] = 32;
    d->x_shape.dims[2] = 32;
    d->x_numel = CIFAR_PIXELS;
    d->y_dtype = CNN_I64;
    d->y_shape.ndim = 0;
    d->y_numel = 1;
    return CNN_OK;
}
