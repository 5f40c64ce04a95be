/* safetensors: cnn_tensors_load_buffer on any bytes; what loads must hold
 * exactly the bytes its header promises, convert, and survive a save and
 * reload unchanged. */
#include "fuzz_common.h"

static void check_equal(cnn_tensors *a, cnn_tensors *b)
{
    if (cnn_tensors_count(a) != cnn_tensors_count(b))
        abort();
    for (int i = 0; i < cnn_tensors_count(a); i++) {
        cnn_tensor_info x, y;
        if (cnn_tensors_get(a, i, &x) || cnn_tensors_get(b, cnn_tensors_find(b, x.name), &y))
            abort();
        if (x.dtype != y.dtype || x.nbytes != y.nbytes || x.shape.ndim != y.shape.ndim ||
            (x.nbytes && memcmp(x.data, y.data, x.nbytes)))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cnn_tensors *ts, *back;
    if (cnn_tensors_create(&ts))
        return 0;
    if (cnn_tensors_create(&back)) {
        cnn_tensors_destroy(ts);
        return 0;
    }
    cnn_status st = cnn_tensors_load_buffer(ts, data, size, "fuzz.safetensors");
    fuzz_need_message(st, cnn_tensors_errmsg(ts), "cnn_tensors_load_buffer");
    if (st && cnn_tensors_count(ts) != 0)
        abort(); /* a failed load leaves the collection empty */
    if (!st) {
        /* Every byte of every tensor is readable (ASan checks the bounds). */
        unsigned sum = 0;
        for (int i = 0; i < cnn_tensors_count(ts); i++) {
            cnn_tensor_info info;
            if (cnn_tensors_get(ts, i, &info) || !info.name)
                abort();
            for (size_t k = 0; k < info.nbytes; k++)
                sum += ((const unsigned char *)info.data)[k];
        }
        (void)sum;
        const char *path = fuzz_path("rt.safetensors");
        st = cnn_tensors_save(ts, path);
        fuzz_need_message(st, cnn_tensors_errmsg(ts), "cnn_tensors_save");
        if (st == CNN_OK) {
            st = cnn_tensors_load(back, path);
            fuzz_need_message(st, cnn_tensors_errmsg(back), "cnn_tensors_load");
            if (st != CNN_OK) {
                fprintf(stderr, "a saved file does not load back: %s\n", cnn_tensors_errmsg(back));
                abort();
            }
            check_equal(ts, back);
        }
        fuzz_remove("rt.safetensors");
        for (int i = 0; i < cnn_tensors_count(ts); i++) {
            st = cnn_tensors_convert(ts, i, CNN_F32);
            fuzz_need_message(st, cnn_tensors_errmsg(ts), "cnn_tensors_convert");
            st = cnn_tensors_convert(ts, i, CNN_I64);
            fuzz_need_message(st, cnn_tensors_errmsg(ts), "cnn_tensors_convert");
        }
    }
    cnn_tensors_destroy(ts);
    cnn_tensors_destroy(back);
    return 0;
}
