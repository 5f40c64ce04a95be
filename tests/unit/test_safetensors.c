/* safetensors: round trips, and a malformed-file corpus where every case
 * ends in a specific error and never a crash. */
#include "test.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

/* Builds a file: 8-byte length, header text, then `data_len` bytes of data. */
static size_t make_file(unsigned char *buf, const char *header, size_t data_len, uint64_t fake_len, int use_fake)
{
    size_t h = strlen(header);
    uint64_t n = use_fake ? fake_len : h;
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, 0x3f, data_len);
    return 8 + h + data_len;
}

static void bad(const char *header, size_t data_len, cnn_status want, const char *frag)
{
    static unsigned char buf[1 << 16];
    size_t len = make_file(buf, header, data_len, 0, 0);
    cnn_tensors *ts;
    cnn_tensors_create(&ts);
    cnn_status st = cnn_tensors_load_buffer(ts, buf, len, "bad.safetensors");
    CHECK_ERR(st, want, cnn_tensors_errmsg(ts), frag, "bad.safetensors");
    CHECK(cnn_tensors_count(ts) == 0);
    cnn_tensors_destroy(ts);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cnn_test_st_%d", (int)getpid());
    mkdir(tmpdir, 0700);
    char path[512];
    snprintf(path, sizeof path, "%s/a.safetensors", tmpdir);

    TEST("round trip of F32, I64, scalar, empty tensors and metadata")
    {
        cnn_tensors *a, *b;
        cnn_tensors_create(&a);
        cnn_tensors_create(&b);
        float f[6] = {1, -2, 3.5f, 4, 5, 6e-30f};
        int64_t ix[3] = {-1, 0, INT64_C(1) << 40};
        cnn_shape s23 = {2, {2, 3}}, s3 = {1, {3}}, s0 = {0, {0}}, sempty = {2, {0, 4}};
        float scalar = 7;
        CHECK(cnn_tensors_add(a, "w", CNN_F32, &s23, f, NULL) == CNN_OK);
        CHECK(cnn_tensors_add(a, "idx", CNN_I64, &s3, ix, NULL) == CNN_OK);
        CHECK(cnn_tensors_add(a, "s", CNN_F32, &s0, &scalar, NULL) == CNN_OK);
        CHECK(cnn_tensors_add(a, "e", CNN_F32, &sempty, NULL, NULL) == CNN_OK);
        CHECK(cnn_tensors_add(a, "w", CNN_F32, &s23, f, NULL) == CNN_ERR_ARGUMENT);
        CHECK(cnn_tensors_set_meta(a, "format", "pt \"quoted\"\n") == CNN_OK);
        CHECK(cnn_tensors_save(a, path) == CNN_OK);
        CHECK(cnn_tensors_load(b, path) == CNN_OK);
        CHECK(cnn_tensors_count(b) == 4);
        cnn_tensor_info info;
        int k = cnn_tensors_find(b, "w");
        CHECK(k >= 0 && cnn_tensors_get(b, k, &info) == CNN_OK);
        CHECK(k >= 0 && info.dtype == CNN_F32 && info.shape.ndim == 2 && info.shape.dims[1] == 3 &&
              memcmp(info.data, f, sizeof f) == 0);
        k = cnn_tensors_find(b, "idx");
        CHECK(k >= 0 && cnn_tensors_get(b, k, &info) == CNN_OK && info.dtype == CNN_I64 &&
              memcmp(info.data, ix, sizeof ix) == 0);
        k = cnn_tensors_find(b, "s");
        CHECK(k >= 0 && cnn_tensors_get(b, k, &info) == CNN_OK && info.shape.ndim == 0 &&
              *(float *)info.data == 7);
        k = cnn_tensors_find(b, "e");
        CHECK(k >= 0 && cnn_tensors_get(b, k, &info) == CNN_OK && info.nbytes == 0);
        const char *m = cnn_tensors_get_meta(b, "format");
        CHECK(m && strcmp(m, "pt \"quoted\"\n") == 0);
        /* Every tensor's data is aligned to its element size in the file. */
        FILE *fp = fopen(path, "rb");
        unsigned char hl[8];
        CHECK(fp && fread(hl, 1, 8, fp) == 8);
        if (fp)
            fclose(fp);
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = (n << 8) | hl[i];
        CHECK(n % 8 == 0);
        cnn_tensors_destroy(a);
        cnn_tensors_destroy(b);
    }

    TEST("convert F64/I32/U8 to F32 and I64")
    {
        cnn_tensors *a;
        cnn_tensors_create(&a);
        double d[2] = {1.5, -2.25};
        uint8_t u[2] = {3, 250};
        cnn_shape s2 = {1, {2}};
        cnn_tensors_add(a, "d", CNN_F64, &s2, d, NULL);
        cnn_tensors_add(a, "u", CNN_U8, &s2, u, NULL);
        CHECK(cnn_tensors_convert(a, 0, CNN_F32) == CNN_OK);
        CHECK(cnn_tensors_convert(a, 1, CNN_I64) == CNN_OK);
        cnn_tensor_info info;
        cnn_tensors_get(a, 0, &info);
        CHECK(info.dtype == CNN_F32 && ((float *)info.data)[1] == -2.25f);
        cnn_tensors_get(a, 1, &info);
        CHECK(info.dtype == CNN_I64 && ((int64_t *)info.data)[1] == 250);
        cnn_tensors_add(a, "f", CNN_F32, &s2, NULL, NULL);
        CHECK(cnn_tensors_convert(a, 2, CNN_I64) == CNN_ERR_ARGUMENT);
        cnn_tensors_destroy(a);
    }

    TEST("malformed headers are rejected with a specific message")
    {
        const char *ok_entry = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        bad(ok_entry, 7, CNN_ERR_FORMAT, "truncated");
        bad(ok_entry, 9, CNN_ERR_FORMAT, "holds 9");
        bad("[1,2]", 0, CNN_ERR_FORMAT, "does not start with '{'");
        bad("{\"a\":", 0, CNN_ERR_FORMAT, "invalid JSON");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
            16, CNN_ERR_FORMAT, "appears twice");
        bad("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, CNN_ERR_FORMAT, "unknown");
        bad("{\"a\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, CNN_ERR_UNSUPPORTED, "BOOL");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, CNN_ERR_FORMAT, "non-negative");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, CNN_ERR_FORMAT, "non-negative");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, CNN_ERR_FORMAT, "needs 12");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, CNN_ERR_FORMAT, "data_offsets");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
            12, CNN_ERR_FORMAT, "gap");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            8, CNN_ERR_FORMAT, "overlaps");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
            CNN_ERR_OVERFLOW, "more elements");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, CNN_ERR_FORMAT, "dimensions");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", 4, CNN_ERR_FORMAT, "data_offsets");
        bad("{\"__metadata__\":{\"k\":3}}", 0, CNN_ERR_FORMAT, "not a string");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, CNN_ERR_FORMAT, "unexpected field");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, CNN_ERR_FORMAT, "data_offsets");
        bad("{\"a\":\"F32\"}", 0, CNN_ERR_FORMAT, "not an object");
        bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, CNN_ERR_FORMAT, "trailing");
        bad("{\"\xff\":{}}", 0, CNN_ERR_FORMAT, "UTF-8");
    }

    TEST("header length beyond the file, short files, nested JSON")
    {
        unsigned char buf[64];
        cnn_tensors *ts;
        cnn_tensors_create(&ts);
        size_t len = make_file(buf, "{}", 0, 1000, 1);
        CHECK_ERR(cnn_tensors_load_buffer(ts, buf, len, "x.st"), CNN_ERR_FORMAT, cnn_tensors_errmsg(ts), "exceeds the file");
        len = make_file(buf, "{}", 0, UINT64_MAX, 1);
        CHECK_ERR(cnn_tensors_load_buffer(ts, buf, len, "x.st"), CNN_ERR_FORMAT, cnn_tensors_errmsg(ts), "exceeds the limit");
        CHECK_ERR(cnn_tensors_load_buffer(ts, buf, 5, "x.st"), CNN_ERR_FORMAT, cnn_tensors_errmsg(ts), "too short");
        char deep[300];
        memset(deep, '[', 200);
        strcpy(deep + 200, "");
        char hdr[320];
        snprintf(hdr, sizeof hdr, "{\"__metadata__\":%s", deep);
        unsigned char big[512];
        len = make_file(big, hdr, 0, 0, 0);
        CHECK_ERR(cnn_tensors_load_buffer(ts, big, len, "x.st"), CNN_ERR_FORMAT, cnn_tensors_errmsg(ts), "nested too deeply");
        cnn_tensors_destroy(ts);
    }

    TEST("missing file and writing into a missing folder fail cleanly")
    {
        cnn_tensors *ts;
        cnn_tensors_create(&ts);
        CHECK_ERR(cnn_tensors_load(ts, "/nonexistent/x.safetensors"), CNN_ERR_IO, cnn_tensors_errmsg(ts), "/nonexistent/x.safetensors", "cannot open");
        CHECK_ERR(cnn_tensors_save(ts, "/nonexistent/dir/x.safetensors"), CNN_ERR_IO, cnn_tensors_errmsg(ts), "/nonexistent/dir/x.safetensors");
        cnn_tensors_destroy(ts);
    }

    TEST("a truncated file on disk is rejected, the original survives a failed save")
    {
        cnn_tensors *ts;
        cnn_tensors_create(&ts);
        cnn_shape s = {1, {100}};
        cnn_tensors_add(ts, "x", CNN_F32, &s, NULL, NULL);
        CHECK(cnn_tensors_save(ts, path) == CNN_OK);
        struct stat st;
        stat(path, &st);
        CHECK(truncate(path, st.st_size - 10) == 0);
        cnn_tensors *b;
        cnn_tensors_create(&b);
        CHECK_ERR(cnn_tensors_load(b, path), CNN_ERR_FORMAT, cnn_tensors_errmsg(b), "truncated");
        /* No temporary files are left next to the target. */
        char cmd[600];
        snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp > /dev/null", tmpdir);
        CHECK(system(cmd) != 0);
        cnn_tensors_destroy(ts);
        cnn_tensors_destroy(b);
    }

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        printf("  could not remove %s\n", tmpdir);
    return test_finish();
}
