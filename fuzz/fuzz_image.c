/* PNG and JPEG decoding: cnn_image_load on any bytes (the decoder picks the
 * format from the first bytes, not the name). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write("img.png", data, size);
    cnn_dataset *ds;
    if (cnn_dataset_create(&ds))
        return 0;
    float *pix = NULL;
    cnn_shape s;
    cnn_status st = cnn_image_load(ds, fuzz_path("img.png"), &pix, &s);
    fuzz_need_message(st, cnn_dataset_errmsg(ds), "cnn_image_load");
    if (!st) {
        if (!pix || s.ndim != 3 || (s.dims[0] != 1 && s.dims[0] != 3) || s.dims[1] < 1 || s.dims[2] < 1)
            abort();
        int64_t n = s.dims[0] * s.dims[1] * s.dims[2];
        for (int64_t i = 0; i < n; i++)
            if (!(pix[i] >= 0.0f && pix[i] <= 1.0f))
                abort();
    } else if (pix) {
        abort(); /* nothing is handed out on failure */
    }
    free(pix);
    cnn_dataset_destroy(ds);
    return 0;
}
