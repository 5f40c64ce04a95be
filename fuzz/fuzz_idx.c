/* MNIST-style IDX folders. The input is split in two files:
 *   byte 0: bit 0 gzips the images in the harness (valid gzip around fuzzed
 *           IDX bytes), bit 1 names the images file .gz without compressing
 *           (fuzzed gzip bytes), bit 2 picks the test split (t10k-*);
 *   bytes 1-2: the length of the images file (little-endian), then the
 *   images, then the labels. */
#include "fuzz_common.h"

#include <zlib.h>

static void write_gz(const char *name, const uint8_t *data, size_t n)
{
    gzFile f = gzopen(fuzz_path(name), "wb");
    if (!f || (n && gzwrite(f, data, (unsigned)n) != (int)n) || gzclose(f) != Z_OK)
        abort();
}

static void check_batches(cnn_dataset *ds)
{
    int64_t n = cnn_dataset_size(ds);
    cnn_shape xs, ys;
    cnn_dtype ydt;
    if (n < 1 || cnn_dataset_shapes(ds, &xs, &ys, &ydt))
        abort(); /* a loaded data set is never empty */
    int64_t per = 1;
    for (int d = 0; d < xs.ndim; d++)
        per *= xs.dims[d];
    int64_t idx[2] = {0, n - 1};
    float *x = malloc(sizeof(float) * (size_t)(2 * per));
    int64_t y[2];
    cnn_transform t = {1, 1, 1, {0.5f}, {0.25f}};
    cnn_rng rng;
    cnn_rng_seed(&rng, 1);
    if (x && cnn_dataset_batch(ds, idx, 2, &t, &rng, x, ydt == CNN_I64 ? (void *)y : NULL))
        abort();
    for (int64_t k = 0; k < n && k < 64; k++)
        (void)cnn_dataset_class_name(ds, k);
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0];
    data++;
    size--;
    size_t ilen = fuzz_take_u16(&data, &size);
    if (ilen > size)
        ilen = size;
    const char *pre = mode & 4 ? "t10k" : "train";
    static const char *const names[] = {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                                        "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        fuzz_remove(names[i]);
    char images[64], labels[64];
    snprintf(images, sizeof images, "%s-images-idx3-ubyte%s", pre, mode & 3 ? ".gz" : "");
    snprintf(labels, sizeof labels, "%s-labels-idx1-ubyte", pre);
    if (mode & 1)
        write_gz(images, data, ilen);
    else
        fuzz_write(images, data, ilen);
    fuzz_write(labels, data + ilen, size - ilen);
    cnn_dataset *ds;
    if (cnn_dataset_create(&ds))
        return 0;
    cnn_status st = cnn_dataset_load(ds, fuzz_tmpdir(), mode & 4 ? CNN_SPLIT_TEST : CNN_SPLIT_TRAIN);
    fuzz_need_message(st, cnn_dataset_errmsg(ds), "cnn_dataset_load");
    if (st && cnn_dataset_size(ds) != 0)
        abort(); /* after a failed load the handle is empty */
    if (!st)
        check_batches(ds);
    cnn_dataset_destroy(ds);
    return 0;
}
