/* CIFAR-10 binary folders: test_batch.bin and, when the input asks for it,
 * batches.meta.txt. Byte 0: bit 0 writes the class-name file; bytes 1-2:
 * its length; then the names, then the batch file. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0];
    data++;
    size--;
    size_t mlen = fuzz_take_u16(&data, &size);
    if (mlen > size)
        mlen = size;
    fuzz_remove("batches.meta.txt");
    if (mode & 1)
        fuzz_write("batches.meta.txt", data, mlen);
    fuzz_write("test_batch.bin", data + mlen, size - mlen);
    cnn_dataset *ds;
    if (cnn_dataset_create(&ds))
        return 0;
    cnn_status st = cnn_dataset_load(ds, fuzz_tmpdir(), CNN_SPLIT_TEST);
    fuzz_need_message(st, cnn_dataset_errmsg(ds), "cnn_dataset_load");
    if (st && cnn_dataset_size(ds) != 0)
        abort();
    if (!st) {
        int64_t n = cnn_dataset_size(ds), classes = cnn_dataset_classes(ds);
        if (n < 1 || classes < 1)
            abort();
        for (int64_t k = 0; k < classes; k++)
            if (!cnn_dataset_class_name(ds, k))
                abort();
        float *x = malloc(sizeof(float) * 3072);
        int64_t idx = n - 1, y;
        if (x && cnn_dataset_batch(ds, &idx, 1, NULL, NULL, x, &y))
            abort();
        if (x && (y < 0 || y >= classes))
            abort();
        free(x);
    }
    cnn_dataset_destroy(ds);
    return 0;
}
