/* Data sets: IDX (plain and gzipped), CIFAR-10, safetensors and image
 * folders built in a temporary folder at run time, valid and malformed;
 * batches with and without transforms; single images; Fashion-MNIST from
 * the Debian package and the subset shipped in data/. */
#include "test.h"
#include "io/dataset_internal.h"

#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef CNN_HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef CNN_HAVE_PNG
#include <png.h>
#endif
#ifdef CNN_HAVE_JPEG
#include <jpeglib.h>
#endif

#ifdef CNN_FAULT_INJECTION
void cnn_test_fail_alloc_after(long long n);
long long cnn_test_alloc_count(void);
#endif

static char tmpdir[256];

/* tmpdir/rel in one of a few rotating buffers, so several can be live. */
static const char *tp(const char *rel)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", tmpdir, rel);
    return b;
}

static void mkdirs(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    for (char *s = p + strlen(tmpdir) + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0700);
            *s = '/';
        }
    mkdir(p, 0700);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(n == 0 || fwrite(data, 1, n, f) == n);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n)
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
    *n = b ? (size_t)len : 0;
    return b;
}

/* An IDX file: magic 00 00 type ndim, big-endian dims, then n data bytes.
 * gz writes it gzipped (the name should then end in .gz). */
static void write_idx(const char *path, int type, int ndim, const uint32_t *dims,
                      const unsigned char *data, size_t n, int gz)
{
    size_t len = 4 + 4 * (size_t)ndim + n;
    unsigned char *b = malloc(len);
    b[0] = 0;
    b[1] = 0;
    b[2] = (unsigned char)type;
    b[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++)
            b[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
    if (n)
        memcpy(b + 4 + 4 * ndim, data, n);
    if (gz) {
#ifdef CNN_HAVE_ZLIB
        gzFile g = gzopen(path, "wb");
        CHECK(g && gzwrite(g, b, (unsigned)len) == (int)len);
        if (g)
            gzclose(g);
#endif
    } else {
        write_bytes(path, b, len);
    }
    free(b);
}

/* A valid MNIST-style folder: n images of h x w with pixel (i, k) =
 * (i * 31 + k) & 255 and label i % 10, for the given prefix (train/t10k),
 * gzipped when gz is set and zlib is available. */
static void make_idx_set(const char *rel, const char *prefix, int n, int h, int w, int gz)
{
#ifndef CNN_HAVE_ZLIB
    gz = 0; /* without zlib the same files, uncompressed */
#endif
    mkdirs(rel);
    unsigned char *px = malloc((size_t)(n * h * w) + 1);
    unsigned char *lb = malloc((size_t)n + 1);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < h * w; k++)
            px[i * h * w + k] = (unsigned char)((i * 31 + k) & 255);
        lb[i] = (unsigned char)(i % 10);
    }
    char name[512];
    uint32_t d3[3] = {(uint32_t)n, (uint32_t)h, (uint32_t)w}, d1[1] = {(uint32_t)n};
    snprintf(name, sizeof name, "%s/%s-images-idx3-ubyte%s", tp(rel), prefix, gz ? ".gz" : "");
    write_idx(name, 0x08, 3, d3, px, (size_t)(n * h * w), gz);
    snprintf(name, sizeof name, "%s/%s-labels-idx1-ubyte%s", tp(rel), prefix, gz ? ".gz" : "");
    write_idx(name, 0x08, 1, d1, lb, (size_t)n, gz);
    free(px);
    free(lb);
}

static void load_err(const char *path, int split, cnn_status want, const char *f1, const char *f2)
{
    cnn_dataset *ds;
    cnn_dataset_create(&ds);
    cnn_status st = cnn_dataset_load(ds, path, split);
    CHECK_ERR(st, want, cnn_dataset_errmsg(ds), f1, f2);
    CHECK((cnn_dataset_size(ds) == 0) == (want != CNN_OK));
    cnn_dataset_destroy(ds);
}

/* ---- PNG and JPEG fixtures -------------------------------------------------- */

#if defined(CNN_HAVE_PNG) && defined(CNN_HAVE_ZLIB)
/* Writes a PNG with libpng directly (any colour type, depth, interlace);
 * rows holds height rows of packed samples. */
static void write_png_raw(const char *path, int w, int h, int color, int depth, int interlace,
                          const unsigned char *rows, size_t rowbytes, const png_color *palette,
                          int npal)
{
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        CHECK(!"libpng failed writing a fixture");
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette)
        png_set_PLTE(png, info, palette, npal);
    png_write_info(png, info);
    png_bytep *rp = malloc(sizeof(png_bytep) * (size_t)h);
    for (int y = 0; y < h; y++)
        rp[y] = (png_bytep)(rows + (size_t)y * rowbytes);
    png_write_image(png, rp);
    png_write_end(png, NULL);
    free(rp);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* A gray 8-bit PNG of h x w filled with v. */
static void write_gray_png(const char *path, int h, int w, unsigned char v)
{
    unsigned char *rows = malloc((size_t)(h * w));
    memset(rows, v, (size_t)(h * w));
    write_png_raw(path, w, h, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, rows, (size_t)w, NULL, 0);
    free(rows);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (24 - 8 * k));
}

/* A PNG chunk with a correct CRC at p; returns its length. */
static size_t put_chunk(unsigned char *p, const char *type, const unsigned char *data, uint32_t n)
{
    put_be32(p, n);
    memcpy(p + 4, type, 4);
    if (n)
        memcpy(p + 8, data, n);
    put_be32(p + 8 + n, (uint32_t)crc32(0, p + 4, 4 + n));
    return 12 + n;
}
#endif

#ifdef CNN_HAVE_JPEG
/* A JPEG of h x w of `comps` (1 or 3) components at quality 100 filled
 * with the colour px[0..comps). */
static void write_jpeg(const char *path, int h, int w, int comps, const unsigned char *px)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    FILE *f = fopen(path, "wb");
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    unsigned char *row = malloc((size_t)(w * comps));
    for (int x = 0; x < w; x++)
        memcpy(row + x * comps, px, (size_t)comps);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    fclose(f);
}
#endif

/* ---- helpers for expected batches -------------------------------------------- */

static float u8f(int v) { return (float)v / 255.0f; }

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

#ifdef CNN_HAVE_PNG
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}
#endif

/* ================================================================================ */

static void test_idx(void)
{
    TEST("IDX: plain and gzipped round trip, shapes, digit names, splits")
    {
        make_idx_set("mnist", "train", 12, 3, 4, 0);
        make_idx_set("mnist", "t10k", 5, 3, 4, 1);
        cnn_dataset *ds;
        CHECK(cnn_dataset_create(&ds) == CNN_OK);
        CHECK(cnn_dataset_load(ds, tp("mnist"), CNN_SPLIT_TRAIN) == CNN_OK);
        CHECK(cnn_dataset_size(ds) == 12);
        cnn_shape xs, ys;
        cnn_dtype yd;
        CHECK(cnn_dataset_shapes(ds, &xs, &ys, &yd) == CNN_OK);
        CHECK(xs.ndim == 3 && xs.dims[0] == 1 && xs.dims[1] == 3 && xs.dims[2] == 4);
        CHECK(ys.ndim == 0 && yd == CNN_I64);
        CHECK(cnn_dataset_classes(ds) == 10);
        CHECK(cnn_dataset_class_name(ds, 0) && strcmp(cnn_dataset_class_name(ds, 0), "0") == 0);
        CHECK(cnn_dataset_class_name(ds, 9) && strcmp(cnn_dataset_class_name(ds, 9), "9") == 0);
        CHECK(cnn_dataset_class_name(ds, 10) == NULL && cnn_dataset_class_name(ds, -1) == NULL);
        CHECK(strcmp(cnn_dataset_source(ds), tp("mnist")) == 0);
        CHECK(cnni_dataset_bytes(ds) == 12 * 12 + 12 * 8);
        int64_t idx[3] = {11, 0, 5};
        float x[36];
        int64_t y[3];
        CHECK(cnn_dataset_batch(ds, idx, 3, NULL, NULL, x, y) == CNN_OK);
        int ok = 1;
        for (int s = 0; s < 3; s++)
            for (int k = 0; k < 12; k++)
                ok &= x[s * 12 + k] == u8f((int)((idx[s] * 31 + k) & 255));
        CHECK(ok);
        CHECK(y[0] == 1 && y[1] == 0 && y[2] == 5);
        CHECK(cnn_dataset_load(ds, tp("mnist"), CNN_SPLIT_TEST) == CNN_OK);
        CHECK(cnn_dataset_size(ds) == 5);
        int64_t last = 4;
        CHECK(cnn_dataset_batch(ds, &last, 1, NULL, NULL, x, y) == CNN_OK);
        CHECK(x[3] == u8f((4 * 31 + 3) & 255) && y[0] == 4);
        CHECK(cnn_dataset_has_split(tp("mnist"), CNN_SPLIT_TRAIN) == 1);
        CHECK(cnn_dataset_has_split(tp("mnist"), CNN_SPLIT_TEST) == 1);
        make_idx_set("only_train", "train", 3, 2, 2, 0);
        CHECK(cnn_dataset_has_split(tp("only_train"), CNN_SPLIT_TEST) == 0);
        CHECK_ERR(cnn_dataset_load(ds, tp("only_train"), CNN_SPLIT_TEST), CNN_ERR_NOT_FOUND,
                  cnn_dataset_errmsg(ds), tp("only_train"), "t10k-images-idx3-ubyte");
        CHECK(cnn_dataset_size(ds) == 0 && cnn_dataset_source(ds) == NULL);
        CHECK_ERR(cnn_dataset_batch(ds, idx, 1, NULL, NULL, x, y), CNN_ERR_STATE,
                  cnn_dataset_errmsg(ds), "no data set loaded");
        CHECK_ERR(cnn_dataset_load(ds, tp("mnist"), 7), CNN_ERR_ARGUMENT, cnn_dataset_errmsg(ds),
                  "split 7");
        cnn_dataset_destroy(ds);
    }

    TEST("IDX: Fashion-MNIST class names for a folder named fashion")
    {
        make_idx_set("My-Fashion-set", "train", 2, 2, 2, 0);
        cnn_dataset *ds;
        cnn_dataset_create(&ds);
        CHECK(cnn_dataset_load(ds, tp("My-Fashion-set"), CNN_SPLIT_TRAIN) == CNN_OK);
        const char *n0 = cnn_dataset_class_name(ds, 0), *n9 = cnn_dataset_class_name(ds, 9);
        CHECK(n0 && strcmp(n0, "T-shirt/top") == 0);
        CHECK(n9 && strcmp(n9, "Ankle boot") == 0);
        cnn_dataset_destroy(ds);
    }

    TEST("IDX: malformed files fail with the file and the expected value")
    {
        unsigned char px[2 * 2 * 2] = {0}, lb[4] = {0, 1, 2, 3};
        uint32_t d3[3] = {2, 2, 2}, d1[1] = {2};
        char images[512], labels[512];

        /* truncated: the header declares 8 pixel bytes, the file holds 7 */
        mkdirs("trunc");
        snprintf(images, sizeof images, "%s/train-images-idx3-ubyte", tp("trunc"));
        snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte", tp("trunc"));
        write_idx(images, 0x08, 3, d3, px, 7, 0);
        write_idx(labels, 0x08, 1, d1, lb, 2, 0);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "(8 bytes)");
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, "holds 7", "truncated");
        /* extra bytes at the end */
        write_idx(images, 0x08, 3, d3, px, 8, 0);
        FILE *f = fopen(images, "ab");
        fputc(0, f);
        fclose(f);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "holds 9");
        /* wrong magic */
        write_idx(images, 0x08, 3, d3, px, 8, 0);
        f = fopen(images, "r+b");
        fputc(0x12, f);
        fclose(f);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "expected 00 00 08 03");
        /* unknown type code, wrong number of dimensions */
        write_idx(images, 0x07, 3, d3, px, 8, 0);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "type code 0x07");
        write_idx(images, 0x08, 2, d3, px, 4, 0);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "has 2 dimensions (expected 3");
        /* known but unsupported element type */
        write_idx(images, 0x0D, 3, d3, px, 8, 0);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "(32 bytes)");
        {
            float fx[8] = {0};
            write_idx(images, 0x0D, 3, d3, (const unsigned char *)fx, sizeof fx, 0);
            load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_UNSUPPORTED, images, "expected 0x08");
        }
        /* header too short */
        write_bytes(images, "\0\0\x08", 3);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "too short");
        write_bytes(images, "\0\0\x08\x03\0\0\0\x02\0\0", 10);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "header truncated");
        /* a zero-size image */
        uint32_t dz[3] = {2, 0, 2};
        write_idx(images, 0x08, 3, dz, px, 0, 0);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "of size 0");

        /* count mismatch between images and labels */
        write_idx(images, 0x08, 3, d3, px, 8, 0);
        uint32_t d1b[1] = {3};
        write_idx(labels, 0x08, 1, d1b, lb, 3, 0);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, labels, "3 labels");
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "holds 2 images");
        /* label out of range */
        unsigned char bad_lb[2] = {3, 12};
        write_idx(labels, 0x08, 1, d1, bad_lb, 2, 0);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, labels, "label 12 at index 1");
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, "expected 0..9", NULL);
        /* labels file missing */
        remove(labels);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_NOT_FOUND, tp("trunc"),
                 "train-labels-idx1-ubyte");
        write_idx(labels, 0x08, 1, d1, lb, 2, 0);

        /* empty set */
        uint32_t d0[3] = {0, 28, 28}, l0[1] = {0};
        write_idx(images, 0x08, 3, d0, px, 0, 0);
        write_idx(labels, 0x08, 1, l0, lb, 0, 0);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "declares 0 images");

        /* huge declared size: rejected before allocating */
        uint32_t dh[3] = {0x80000000u, 1024, 1024};
        write_idx(images, 0x08, 3, dh, px, 8, 0);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_OVERFLOW, images, "4 GiB");
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_OVERFLOW, "2147483648 x 1024 x 1024", NULL);
        uint32_t dmax[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
        write_idx(images, 0x08, 3, dmax, px, 8, 0);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_OVERFLOW, images, "limit");

        /* a gzipped file under a plain name gets a hint */
        remove(images);
#ifdef CNN_HAVE_ZLIB
        write_idx(images, 0x08, 3, d3, px, 8, 1);
        load_err(tp("trunc"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "should end in .gz");
        remove(images);
#endif
    }

    TEST("IDX: gzip files: truncated, corrupt, trailing data, huge header")
    {
#ifdef CNN_HAVE_ZLIB
        make_idx_set("gz", "train", 40, 8, 8, 1);
        const char *images = tp("gz/train-images-idx3-ubyte.gz");
        size_t n;
        unsigned char *b = read_bytes(images, &n);
        CHECK(b && n > 40);
        /* truncated gzip stream */
        write_bytes(images, b, n / 2);
        load_err(tp("gz"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "2560 bytes of images");
        load_err(tp("gz"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, "truncated", NULL);
        /* corrupt deflate data */
        unsigned char *c = malloc(n);
        memcpy(c, b, n);
        for (size_t i = 12; i < n - 8; i++)
            c[i] ^= 0x5a;
        write_bytes(images, c, n);
        load_err(tp("gz"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "gzip data is corrupt");
        /* not gzip at all */
        write_bytes(images, "hello, world", 12);
        load_err(tp("gz"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "magic number");
        /* data after the declared size */
        unsigned char px[2 * 2 * 2 + 1] = {0};
        uint32_t d3[3] = {2, 2, 2};
        write_idx(images, 0x08, 3, d3, px, 9, 1);
        load_err(tp("gz"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, images, "data continues");
        /* huge header in a gzipped file */
        uint32_t dh[3] = {0xFFFFFFFFu, 28, 28};
        write_idx(images, 0x08, 3, dh, px, 8, 1);
        load_err(tp("gz"), CNN_SPLIT_TRAIN, CNN_ERR_OVERFLOW, images, "4 GiB");
        free(c);
        free(b);
#endif
    }
}

static void test_cifar(void)
{
    TEST("CIFAR-10: five training batches, test batch, names, values")
    {
        mkdirs("cifar");
        unsigned char rec[3073];
        int id = 0;
        for (int f = 0; f < 6; f++) {
            char name[64];
            if (f < 5)
                snprintf(name, sizeof name, "cifar/data_batch_%d.bin", f + 1);
            else
                snprintf(name, sizeof name, "cifar/test_batch.bin");
            FILE *fp = fopen(tp(name), "wb");
            int nrec = f < 5 ? 2 : 3;
            for (int r = 0; r < nrec; r++, id++) {
                rec[0] = (unsigned char)(id % 10);
                for (int k = 0; k < 3072; k++)
                    rec[1 + k] = (unsigned char)((id * 7 + k) & 255);
                fwrite(rec, 1, sizeof rec, fp);
            }
            fclose(fp);
        }
        cnn_dataset *ds;
        cnn_dataset_create(&ds);
        CHECK(cnn_dataset_load(ds, tp("cifar"), CNN_SPLIT_TRAIN) == CNN_OK);
        CHECK(cnn_dataset_size(ds) == 10);
        cnn_shape xs;
        CHECK(cnn_dataset_shapes(ds, &xs, NULL, NULL) == CNN_OK);
        CHECK(xs.ndim == 3 && xs.dims[0] == 3 && xs.dims[1] == 32 && xs.dims[2] == 32);
        CHECK(cnn_dataset_classes(ds) == 10);
        const char *n0 = cnn_dataset_class_name(ds, 0), *n9 = cnn_dataset_class_name(ds, 9);
        CHECK(n0 && strcmp(n0, "airplane") == 0 && n9 && strcmp(n9, "truck") == 0);
        static float x[2 * 3072];
        int64_t y[2], idx[2] = {9, 3};
        CHECK(cnn_dataset_batch(ds, idx, 2, NULL, NULL, x, y) == CNN_OK);
        CHECK(y[0] == 9 && y[1] == 3);
        int ok = 1;
        for (int s = 0; s < 2; s++)
            for (int k = 0; k < 3072; k++)
                ok &= x[s * 3072 + k] == u8f((int)((idx[s] * 7 + k) & 255));
        CHECK(ok);
        CHECK(cnn_dataset_load(ds, tp("cifar"), CNN_SPLIT_TEST) == CNN_OK);
        CHECK(cnn_dataset_size(ds) == 3);
        int64_t last = 2; /* the 13th record written */
        CHECK(cnn_dataset_batch(ds, &last, 1, NULL, NULL, x, y) == CNN_OK);
        CHECK(y[0] == 12 % 10 && x[5] == u8f((12 * 7 + 5) & 255));
        CHECK(cnn_dataset_has_split(tp("cifar"), CNN_SPLIT_TEST) == 1);

        /* batches.meta.txt names the classes; labels must fit them */
        write_bytes(tp("cifar/batches.meta.txt"), "cat \r\n\n dog\n\n", 13);
        CHECK_ERR(cnn_dataset_load(ds, tp("cifar"), CNN_SPLIT_TRAIN), CNN_ERR_FORMAT,
                  cnn_dataset_errmsg(ds), tp("cifar/data_batch_2.bin"),
                  "record 0 has label 2", "expected 0..1");
        char names[256] = "";
        const char *ten[10] = {"a0", "b1", "c2", "d3", "e4", "f5", "g6", "h7", "i8", "j9"};
        for (int k = 0; k < 10; k++) {
            strcat(names, ten[k]);
            strcat(names, "\n");
        }
        write_bytes(tp("cifar/batches.meta.txt"), names, strlen(names));
        CHECK(cnn_dataset_load(ds, tp("cifar"), CNN_SPLIT_TRAIN) == CNN_OK);
        n9 = cnn_dataset_class_name(ds, 9);
        CHECK(n9 && strcmp(n9, "j9") == 0);
        write_bytes(tp("cifar/batches.meta.txt"), "\n \n", 3);
        CHECK_ERR(cnn_dataset_load(ds, tp("cifar"), CNN_SPLIT_TRAIN), CNN_ERR_FORMAT,
                  cnn_dataset_errmsg(ds), tp("cifar/batches.meta.txt"), "no class names");
        remove(tp("cifar/batches.meta.txt"));

        /* the archive's own folder is found one level down */
        mkdirs("cifar_top");
        CHECK(rename(tp("cifar"), tp("cifar_top/cifar-10-batches-bin")) == 0);
        CHECK(cnn_dataset_load(ds, tp("cifar_top"), CNN_SPLIT_TRAIN) == CNN_OK);
        CHECK(cnn_dataset_size(ds) == 10);
        CHECK(strcmp(cnn_dataset_source(ds), tp("cifar_top/cifar-10-batches-bin")) == 0);
        CHECK(rename(tp("cifar_top/cifar-10-batches-bin"), tp("cifar")) == 0);

        /* wrong record size, missing batch, label out of range */
        const char *b2 = tp("cifar/data_batch_2.bin");
        size_t n;
        unsigned char *keep = read_bytes(b2, &n);
        write_bytes(b2, keep, n - 1);
        CHECK_ERR(cnn_dataset_load(ds, tp("cifar"), CNN_SPLIT_TRAIN), CNN_ERR_FORMAT,
                  cnn_dataset_errmsg(ds), b2, "6145 bytes", "3073-byte records");
        write_bytes(b2, keep, 0);
        CHECK_ERR(cnn_dataset_load(ds, tp("cifar"), CNN_SPLIT_TRAIN), CNN_ERR_FORMAT,
                  cnn_dataset_errmsg(ds), b2, "0 bytes");
        remove(b2);
        CHECK_ERR(cnn_dataset_load(ds, tp("cifar"), CNN_SPLIT_TRAIN), CNN_ERR_NOT_FOUND,
                  cnn_dataset_errmsg(ds), b2, "data_batch_1.bin .. data_batch_5.bin");
        keep[3073] = 10;
        write_bytes(b2, keep, n);
        CHECK_ERR(cnn_dataset_load(ds, tp("cifar"), CNN_SPLIT_TRAIN), CNN_ERR_FORMAT,
                  cnn_dataset_errmsg(ds), b2, "record 1 has label 10", "expected 0..9");
        free(keep);
        cnn_dataset_destroy(ds);
    }
}

static void save_st(const char *path, const char *xn, cnn_dtype xt, const cnn_shape *xs,
                    const void *xd, const char *yn, cnn_dtype yt, const cnn_shape *ys,
                    const void *yd)
{
    cnn_tensors *ts;
    cnn_tensors_create(&ts);
    if (xn)
        CHECK(cnn_tensors_add(ts, xn, xt, xs, xd, NULL) == CNN_OK);
    if (yn)
        CHECK(cnn_tensors_add(ts, yn, yt, ys, yd, NULL) == CNN_OK);
    CHECK(cnn_tensors_save(ts, path) == CNN_OK);
    cnn_tensors_destroy(ts);
}

static void test_safetensors(void)
{
    TEST("safetensors: uint8 x with int64, int32 and uint8 y; float targets")
    {
        const char *p = tp("data.safetensors");
        uint8_t xb[4 * 2 * 2];
        for (int i = 0; i < 16; i++)
            xb[i] = (uint8_t)(i * 16);
        int64_t y64[4] = {0, 3, 1, 2};
        cnn_shape xs = {4, {4, 1, 2, 2}}, ys = {1, {4}};
        save_st(p, "x", CNN_U8, &xs, xb, "y", CNN_I64, &ys, y64);
        cnn_dataset *ds;
        cnn_dataset_create(&ds);
        CHECK(cnn_dataset_load(ds, p, CNN_SPLIT_TEST) == CNN_OK);
        CHECK(cnn_dataset_size(ds) == 4 && cnn_dataset_classes(ds) == 4);
        CHECK(cnn_dataset_class_name(ds, 0) == NULL);
        CHECK(cnn_dataset_has_split(p, CNN_SPLIT_TRAIN) == 1);
        CHECK(cnn_dataset_has_split(p, CNN_SPLIT_TEST) == 0);
        cnn_shape sx, sy;
        cnn_dtype dy;
        CHECK(cnn_dataset_shapes(ds, &sx, &sy, &dy) == CNN_OK);
        CHECK(sx.ndim == 3 && sx.dims[0] == 1 && sx.dims[2] == 2 && sy.ndim == 0 && dy == CNN_I64);
        float x[8];
        int64_t y[2], idx[2] = {3, 1};
        CHECK(cnn_dataset_batch(ds, idx, 2, NULL, NULL, x, y) == CNN_OK);
        CHECK(x[0] == u8f(12 * 16) && x[7] == u8f(7 * 16) && y[0] == 2 && y[1] == 3);
        CHECK(cnn_dataset_batch(ds, idx, 2, NULL, NULL, x, NULL) == CNN_OK);
        CHECK(cnn_dataset_batch(ds, idx, 0, NULL, NULL, NULL, NULL) == CNN_OK);

        int32_t y32[4] = {5, 0, 1, 2};
        save_st(p, "x", CNN_U8, &xs, xb, "y", CNN_I32, &ys, y32);
        CHECK(cnn_dataset_load(ds, p, CNN_SPLIT_TRAIN) == CNN_OK);
        CHECK(cnn_dataset_classes(ds) == 6);
        CHECK(cnn_dataset_batch(ds, idx + 1, 1, NULL, NULL, x, y) == CNN_OK && y[0] == 0);
        uint8_t y8[4] = {1, 1, 1, 7};
        save_st(p, "x", CNN_U8, &xs, xb, "y", CNN_U8, &ys, y8);
        CHECK(cnn_dataset_load(ds, p, CNN_SPLIT_TRAIN) == CNN_OK);
        CHECK(cnn_dataset_classes(ds) == 8);
        CHECK(cnn_dataset_batch(ds, idx, 1, NULL, NULL, x, y) == CNN_OK && y[0] == 7);

        float xf[3 * 5], yf[3 * 2];
        for (int i = 0; i < 15; i++)
            xf[i] = (float)i * 0.5f - 3;
        for (int i = 0; i < 6; i++)
            yf[i] = (float)i * -1.25f;
        cnn_shape xfs = {2, {3, 5}}, yfs = {2, {3, 2}};
        save_st(p, "x", CNN_F32, &xfs, xf, "y", CNN_F32, &yfs, yf);
        CHECK(cnn_dataset_load(ds, p, CNN_SPLIT_TRAIN) == CNN_OK);
        CHECK(cnn_dataset_shapes(ds, &sx, &sy, &dy) == CNN_OK);
        CHECK(sx.ndim == 1 && sx.dims[0] == 5 && sy.ndim == 1 && sy.dims[0] == 2 && dy == CNN_F32);
        CHECK(cnn_dataset_classes(ds) == 0);
        float bx[5], by[2];
        int64_t two = 2;
        CHECK(cnn_dataset_batch(ds, &two, 1, NULL, NULL, bx, by) == CNN_OK);
        CHECK(memcmp(bx, xf + 10, sizeof bx) == 0 && memcmp(by, yf + 4, sizeof by) == 0);
        /* crop and flip need 2-d samples */
        cnn_transform t = {0};
        t.flip = 1;
        cnn_rng r;
        cnn_rng_seed(&r, 1);
        CHECK_ERR(cnn_dataset_batch(ds, &two, 1, &t, &r, bx, by), CNN_ERR_ARGUMENT,
                  cnn_dataset_errmsg(ds), "at least 2 dimensions", "[5]");
        cnn_dataset_destroy(ds);
    }

    TEST("safetensors: mismatched counts, missing tensors, bad dtypes and values")
    {
        const char *p = tp("bad.safetensors");
        uint8_t xb[16] = {0};
        int64_t y3[3] = {0, 1, 2};
        cnn_shape xs = {2, {4, 4}}, ys3 = {1, {3}}, ys4 = {1, {4}};
        save_st(p, "x", CNN_U8, &xs, xb, "y", CNN_I64, &ys3, y3);
        load_err(p, CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, p, "\"x\" holds 4 samples");
        load_err(p, CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, "\"y\" holds 3 targets", NULL);
        save_st(p, "x", CNN_U8, &xs, xb, "labels", CNN_I64, &ys3, y3);
        load_err(p, CNN_SPLIT_TRAIN, CNN_ERR_NOT_FOUND, p, "no tensor named \"y\"");
        int64_t x64[16] = {0}, y4[4] = {0, 1, -1, 2};
        save_st(p, "x", CNN_I64, &xs, x64, "y", CNN_I64, &ys4, y4);
        load_err(p, CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, p, "dtype I64 (expected F32 or U8)");
        save_st(p, "x", CNN_U8, &xs, xb, "y", CNN_I64, &ys4, y4);
        load_err(p, CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, p, "sample 2 is the class index -1");
        float xf[16] = {0};
        xf[9] = NAN;
        int64_t ok4[4] = {0, 0, 0, 0};
        save_st(p, "x", CNN_F32, &xs, xf, "y", CNN_I64, &ys4, ok4);
        load_err(p, CNN_SPLIT_TRAIN, CNN_ERR_NUMERIC, p, "sample 2");
        cnn_shape x0 = {2, {0, 4}}, y0 = {1, {0}};
        save_st(p, "x", CNN_U8, &x0, NULL, "y", CNN_I64, &y0, NULL);
        load_err(p, CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, p, "no samples");
        write_bytes(p, "\x02\0\0\0\0\0\0\0{}", 10);
        load_err(p, CNN_SPLIT_TRAIN, CNN_ERR_NOT_FOUND, p, "no tensor named \"x\"");
        write_bytes(p, "\x05\0\0\0\0\0\0\0{}", 10);
        load_err(p, CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, p, "header length");
        load_err(tp("does-not-exist.safetensors"), CNN_SPLIT_TRAIN, CNN_ERR_NOT_FOUND,
                 tp("does-not-exist.safetensors"), "cannot open");
    }
}

#if defined(CNN_HAVE_PNG) && defined(CNN_HAVE_JPEG) && defined(CNN_HAVE_ZLIB)
static void test_image_folders(void)
{
    TEST("image folders: classes and files in torchvision's order, nested folders")
    {
        /* Each image is 2x3 gray, filled with its expected position. */
        const char *files[] = {"imgs/Dog/b.png",       "imgs/Dog/a.PNG",     "imgs/bird/10.png",
                               "imgs/bird/9.png",      "imgs/cat/z.png",     "imgs/cat/sub/x.png",
                               "imgs/cat/sub-b/y.png", "imgs/cat/sub/deeper/w.png"};
        const int order[] = {1, 0, 2, 3, 4, 5, 6, 7};
        const int label[] = {0, 0, 1, 1, 2, 2, 2, 2};
        mkdirs("imgs/Dog");
        mkdirs("imgs/bird");
        mkdirs("imgs/cat/sub/deeper");
        mkdirs("imgs/cat/sub-b");
        for (int i = 0; i < 8; i++)
            write_gray_png(tp(files[i]), 2, 3, (unsigned char)(order[i] * 10));
        write_bytes(tp("imgs/cat/notes.txt"), "not an image", 12);
        write_bytes(tp("imgs/README"), "top-level files are ignored", 27);
        cnn_dataset *ds;
        cnn_dataset_create(&ds);
        CHECK_ERR(cnn_dataset_load(ds, tp("imgs"), CNN_SPLIT_TRAIN), CNN_OK,
                  cnn_dataset_errmsg(ds), NULL);
        CHECK(cnn_dataset_size(ds) == 8 && cnn_dataset_classes(ds) == 3);
        const char *n0 = cnn_dataset_class_name(ds, 0), *n2 = cnn_dataset_class_name(ds, 2);
        CHECK(n0 && strcmp(n0, "Dog") == 0 && n2 && strcmp(n2, "cat") == 0);
        cnn_shape xs;
        CHECK(cnn_dataset_shapes(ds, &xs, NULL, NULL) == CNN_OK);
        CHECK(xs.ndim == 3 && xs.dims[0] == 1 && xs.dims[1] == 2 && xs.dims[2] == 3);
        int64_t idx[8] = {0, 1, 2, 3, 4, 5, 6, 7}, y[8];
        float x[8 * 6];
        CHECK(cnn_dataset_batch(ds, idx, 8, NULL, NULL, x, y) == CNN_OK);
        for (int i = 0; i < 8; i++) {
            int pos = order[i];
            CHECKF(x[pos * 6] == u8f(pos * 10) && y[pos] == label[i],
                   "%s: expected at position %d with label %d", files[i], pos, label[i]);
        }
        CHECK(cnn_dataset_has_split(tp("imgs"), CNN_SPLIT_TRAIN) == 1);
        CHECK(cnn_dataset_has_split(tp("imgs"), CNN_SPLIT_TEST) == 0);
        cnn_dataset_destroy(ds);
    }

    TEST("image folders: train/test split, RGB and JPEG images")
    {
        unsigned char red[3] = {250, 10, 10}, blue[3] = {0, 0, 255};
        mkdirs("split/train/a");
        mkdirs("split/train/b");
        mkdirs("split/test/a");
        mkdirs("split/test/b");
        write_jpeg(tp("split/train/a/1.jpg"), 8, 8, 3, red);
        write_jpeg(tp("split/train/b/1.jpeg"), 8, 8, 3, blue);
        unsigned char rgb[8 * 8 * 3];
        for (int i = 0; i < 64; i++)
            memcpy(rgb + 3 * i, red, 3);
        write_png_raw(tp("split/test/a/1.png"), 8, 8, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE,
                      rgb, 24, NULL, 0);
        write_jpeg(tp("split/test/b/1.jpg"), 8, 8, 3, blue);
        CHECK(cnn_dataset_has_split(tp("split"), CNN_SPLIT_TRAIN) == 1);
        CHECK(cnn_dataset_has_split(tp("split"), CNN_SPLIT_TEST) == 1);
        cnn_dataset *ds;
        cnn_dataset_create(&ds);
        CHECK_ERR(cnn_dataset_load(ds, tp("split"), CNN_SPLIT_TRAIN), CNN_OK,
                  cnn_dataset_errmsg(ds), NULL);
        CHECK(strcmp(cnn_dataset_source(ds), tp("split/train")) == 0);
        CHECK(cnn_dataset_size(ds) == 2 && cnn_dataset_classes(ds) == 2);
        cnn_shape xs;
        cnn_dataset_shapes(ds, &xs, NULL, NULL);
        CHECK(xs.ndim == 3 && xs.dims[0] == 3 && xs.dims[1] == 8 && xs.dims[2] == 8);
        int64_t idx[2] = {0, 1}, y[2];
        float x[2 * 192];
        CHECK(cnn_dataset_batch(ds, idx, 2, NULL, NULL, x, y) == CNN_OK);
        CHECKF(fabsf(x[0] - 250 / 255.0f) < 3 / 255.0f && fabsf(x[64] - 10 / 255.0f) < 3 / 255.0f &&
                   fabsf(x[192 + 128] - 1) < 3 / 255.0f,
               "JPEG colours: %g %g %g", x[0] * 255, x[64] * 255, x[192 + 128] * 255);
        CHECK(y[0] == 0 && y[1] == 1);
        CHECK(cnn_dataset_load(ds, tp("split"), CNN_SPLIT_TEST) == CNN_OK);
        CHECK(cnn_dataset_size(ds) == 2);
        CHECK(cnn_dataset_batch(ds, idx, 1, NULL, NULL, x, y) == CNN_OK);
        CHECK(x[0] == u8f(250) && x[64] == u8f(10) && x[128] == u8f(10));
        mkdirs("split_only/train/a");
        write_jpeg(tp("split_only/train/a/1.jpg"), 8, 8, 3, red);
        CHECK(cnn_dataset_has_split(tp("split_only"), CNN_SPLIT_TEST) == 0);
        CHECK_ERR(cnn_dataset_load(ds, tp("split_only"), CNN_SPLIT_TEST), CNN_ERR_NOT_FOUND,
                  cnn_dataset_errmsg(ds), tp("split_only"), "\"test\" sub-folder");
        cnn_dataset_destroy(ds);
    }

    TEST("image folders: mixed sizes, empty classes, unsupported formats, corrupt files")
    {
        mkdirs("mixed/a");
        mkdirs("mixed/b");
        write_gray_png(tp("mixed/a/1.png"), 4, 4, 1);
        write_gray_png(tp("mixed/a/2.png"), 4, 4, 2);
        write_gray_png(tp("mixed/b/1.png"), 5, 4, 3);
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_SHAPE, tp("mixed/b/1.png"), "1x5x4");
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_SHAPE, tp("mixed/a/1.png"), "is 1x4x4");
        unsigned char gray = 7;
        write_jpeg(tp("mixed/b/1.png"), 4, 4, 3, (unsigned char[3]){1, 2, 3});
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_SHAPE, tp("mixed/b/1.png"), "3x4x4");
        write_jpeg(tp("mixed/b/1.png"), 4, 4, 1, &gray);
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_OK, NULL, NULL);

        mkdirs("mixed/c");
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_NOT_FOUND, tp("mixed/c"), "holds no images");
        write_bytes(tp("mixed/c/x.bmp"), "BM", 2);
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_UNSUPPORTED, tp("mixed/c/x.bmp"),
                 "expected .png, .jpg or .jpeg");
        remove(tp("mixed/c/x.bmp"));

        /* corrupt PNGs */
        write_gray_png(tp("mixed/c/1.png"), 4, 4, 9);
        size_t n;
        unsigned char *good = read_bytes(tp("mixed/c/1.png"), &n);
        write_bytes(tp("mixed/c/1.png"), good, n - 20);
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, tp("mixed/c/1.png"), "corrupt PNG");
        unsigned char *bad = malloc(n);
        memcpy(bad, good, n);
        bad[n - 20] ^= 0xff; /* inside IDAT: the CRC no longer matches */
        write_bytes(tp("mixed/c/1.png"), bad, n);
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, tp("mixed/c/1.png"), "corrupt PNG");
        for (size_t i = 8; i < n; i++)
            bad[i] = (unsigned char)(i * 77);
        write_bytes(tp("mixed/c/1.png"), bad, n);
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, tp("mixed/c/1.png"), "corrupt PNG");
        write_bytes(tp("mixed/c/1.png"), "GIF89a", 6);
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, tp("mixed/c/1.png"),
                 "not a PNG or JPEG image");
        free(bad);
        free(good);

        /* corrupt JPEGs */
        remove(tp("mixed/c/1.png"));
        write_jpeg(tp("mixed/c/1.jpg"), 16, 16, 1, &gray);
        good = read_bytes(tp("mixed/c/1.jpg"), &n);
        write_bytes(tp("mixed/c/1.jpg"), good, n / 2);
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, tp("mixed/c/1.jpg"), "corrupt JPEG");
        write_bytes(tp("mixed/c/1.jpg"), good, 3);
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, tp("mixed/c/1.jpg"), "corrupt JPEG");
        bad = malloc(n);
        memcpy(bad, good, n);
        for (size_t i = 3; i < n; i++)
            bad[i] = (unsigned char)(i * 131);
        write_bytes(tp("mixed/c/1.jpg"), bad, n);
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, tp("mixed/c/1.jpg"), "corrupt JPEG");
        /* a header declaring 65000 x 65000 RGB pixels */
        write_jpeg(tp("mixed/c/1.jpg"), 16, 16, 3, (unsigned char[3]){1, 2, 3});
        free(good);
        good = read_bytes(tp("mixed/c/1.jpg"), &n);
        for (size_t i = 2; i + 9 < n; i++)
            if (good[i] == 0xFF && good[i + 1] == 0xC0) {
                good[i + 5] = 0xFD;
                good[i + 6] = 0xE8;
                good[i + 7] = 0xFD;
                good[i + 8] = 0xE8;
                break;
            }
        write_bytes(tp("mixed/c/1.jpg"), good, n);
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_OVERFLOW, tp("mixed/c/1.jpg"), "65000 x 65000");
        free(bad);
        free(good);
        remove(tp("mixed/c/1.jpg"));

        /* a PNG header declaring 100000 x 100000 pixels */
        unsigned char png[128];
        size_t len = 8;
        memcpy(png, "\x89PNG\r\n\x1a\n", 8);
        unsigned char ihdr[13] = {0};
        put_be32(ihdr, 100000);
        put_be32(ihdr + 4, 100000);
        ihdr[8] = 8; /* 8-bit gray */
        len += put_chunk(png + len, "IHDR", ihdr, 13);
        len += put_chunk(png + len, "IDAT", (const unsigned char *)"0123456789", 10);
        write_bytes(tp("mixed/c/huge.png"), png, len);
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_OVERFLOW, tp("mixed/c/huge.png"), "100000 x 100000");
        load_err(tp("mixed"), CNN_SPLIT_TRAIN, CNN_ERR_OVERFLOW, "4 GiB", NULL);

        mkdirs("noclasses");
        write_bytes(tp("noclasses/a.png"), "x", 1);
        load_err(tp("noclasses"), CNN_SPLIT_TRAIN, CNN_ERR_NOT_FOUND, tp("noclasses"),
                 "no data set found");
    }

    TEST("PNG colour types: palette, RGBA, gray+alpha, 16-bit, 2-bit gray, interlaced")
    {
        cnn_dataset *ds;
        cnn_dataset_create(&ds);
        float *px = NULL;
        cnn_shape s;
        const char *p = tp("types.png");
        /* palette */
        png_color pal[3] = {{10, 20, 30}, {40, 50, 60}, {70, 80, 90}};
        unsigned char idx[2 * 2] = {0, 1, 2, 1};
        write_png_raw(p, 2, 2, PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE, idx, 2, pal, 3);
        CHECK(cnn_image_load(ds, p, &px, &s) == CNN_OK);
        CHECK(s.ndim == 3 && s.dims[0] == 3 && s.dims[1] == 2 && s.dims[2] == 2);
        CHECK(px && px[0] == u8f(10) && px[4 + 1] == u8f(50) && px[8 + 2] == u8f(90));
        free(px);
        /* RGBA: alpha dropped */
        unsigned char rgba[2 * 4] = {1, 2, 3, 0, 4, 5, 6, 255};
        write_png_raw(p, 2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_NONE, rgba, 8, NULL, 0);
        CHECK(cnn_image_load(ds, p, &px, &s) == CNN_OK);
        CHECK(s.dims[0] == 3 && s.dims[1] == 1 && s.dims[2] == 2);
        CHECK(px && px[0] == u8f(1) && px[1] == u8f(4) && px[2] == u8f(2) && px[5] == u8f(6));
        free(px);
        /* gray + alpha: one channel */
        unsigned char ga[2 * 2] = {100, 7, 200, 9};
        write_png_raw(p, 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, ga, 4, NULL, 0);
        CHECK(cnn_image_load(ds, p, &px, &s) == CNN_OK);
        CHECK(s.dims[0] == 1 && px && px[0] == u8f(100) && px[1] == u8f(200));
        free(px);
        /* 16-bit RGB keeps the high byte */
        unsigned char rgb16[6] = {0x12, 0x34, 0xAB, 0xCD, 0xFF, 0x00};
        write_png_raw(p, 1, 1, PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, rgb16, 6, NULL, 0);
        CHECK(cnn_image_load(ds, p, &px, &s) == CNN_OK);
        CHECK(s.dims[0] == 3 && px && px[0] == u8f(0x12) && px[1] == u8f(0xAB) && px[2] == u8f(0xFF));
        free(px);
        /* 16-bit gray */
        unsigned char g16[4] = {0x80, 0x01, 0x00, 0xFF};
        write_png_raw(p, 2, 1, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, g16, 4, NULL, 0);
        CHECK(cnn_image_load(ds, p, &px, &s) == CNN_OK);
        CHECK(s.dims[0] == 1 && px && px[0] == u8f(0x80) && px[1] == u8f(0));
        free(px);
        /* 2-bit gray: 0..3 scale to 0, 85, 170, 255 */
        unsigned char g2[1] = {0x1B}; /* 00 01 10 11 */
        write_png_raw(p, 4, 1, PNG_COLOR_TYPE_GRAY, 2, PNG_INTERLACE_NONE, g2, 1, NULL, 0);
        CHECK(cnn_image_load(ds, p, &px, &s) == CNN_OK);
        CHECK(s.dims[2] == 4 && px && px[0] == 0 && px[1] == u8f(85) && px[3] == 1);
        free(px);
        /* Adam7 interlacing */
        unsigned char big[9 * 11];
        for (int i = 0; i < 99; i++)
            big[i] = (unsigned char)(i * 2);
        write_png_raw(p, 11, 9, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_ADAM7, big, 11, NULL, 0);
        CHECK(cnn_image_load(ds, p, &px, &s) == CNN_OK);
        int ok = px != NULL && s.dims[1] == 9 && s.dims[2] == 11;
        for (int i = 0; ok && i < 99; i++)
            ok = px[i] == u8f(i * 2);
        CHECK(ok);
        free(px);
        /* JPEG grayscale */
        unsigned char g = 77;
        write_jpeg(tp("types.jpg"), 8, 8, 1, &g);
        CHECK(cnn_image_load(ds, tp("types.jpg"), &px, &s) == CNN_OK);
        CHECK(s.dims[0] == 1 && px && fabsf(px[10] * 255 - 77) < 1.5f);
        free(px);
        cnn_dataset_destroy(ds);
    }
}
#endif

static void test_single_images(void)
{
    TEST("cnn_image_save_png and cnn_image_load: round trip, atomic, arguments")
    {
        cnn_dataset *ds;
        cnn_dataset_create(&ds);
        mkdirs("save");
        const char *p = tp("save/g.png");
        float g[3 * 5];
        for (int i = 0; i < 15; i++)
            g[i] = -1 + 2 * (float)(i * 17) / 255.0f;
        g[0] = -5;      /* clamps to 0 */
        g[1] = 9;       /* clamps to 255 */
        g[2] = NAN;     /* 0 */
        cnn_shape s2 = {2, {3, 5}};
#ifdef CNN_HAVE_PNG
        CHECK_ERR(cnn_image_save_png(ds, p, g, &s2, -1, 1), CNN_OK, cnn_dataset_errmsg(ds), NULL);
        CHECK(count_entries(tp("save")) == 1);
        float *px = NULL;
        cnn_shape s;
        CHECK(cnn_image_load(ds, p, &px, &s) == CNN_OK);
        CHECK(s.ndim == 3 && s.dims[0] == 1 && s.dims[1] == 3 && s.dims[2] == 5);
        int ok = px && px[0] == 0 && px[1] == 1 && px[2] == 0;
        for (int i = 3; ok && i < 15; i++)
            ok = px[i] == u8f(i * 17);
        CHECK(ok);
        free(px);
        float rgb[3 * 2 * 2];
        for (int i = 0; i < 12; i++)
            rgb[i] = (float)(i * 20);
        cnn_shape s3 = {3, {3, 2, 2}};
        CHECK(cnn_image_save_png(ds, p, rgb, &s3, 0, 255) == CNN_OK);
        CHECK(cnn_image_load(ds, p, &px, &s) == CNN_OK);
        CHECK(s.dims[0] == 3 && s.dims[1] == 2 && s.dims[2] == 2);
        ok = px != NULL;
        for (int i = 0; ok && i < 12; i++)
            ok = px[i] == u8f(i * 20);
        CHECK(ok);
        free(px);
        CHECK(count_entries(tp("save")) == 1);
        CHECK_ERR(cnn_image_save_png(ds, tp("save/no/such/dir.png"), g, &s2, 0, 1), CNN_ERR_IO,
                  cnn_dataset_errmsg(ds), tp("save/no/such/dir.png"));
        CHECK(count_entries(tp("save")) == 1);
#endif
        cnn_shape bad = {3, {2, 3, 5}};
        CHECK_ERR(cnn_image_save_png(ds, p, g, &bad, 0, 1), CNN_ERR_ARGUMENT,
                  cnn_dataset_errmsg(ds), p, "[2, 3, 5]");
        CHECK_ERR(cnn_image_save_png(ds, p, g, &s2, 1, 1), CNN_ERR_ARGUMENT,
                  cnn_dataset_errmsg(ds), p, "lo < hi");
        CHECK_ERR(cnn_image_save_png(ds, p, g, &s2, 0, INFINITY), CNN_ERR_ARGUMENT,
                  cnn_dataset_errmsg(ds), p);
        float *none = (float *)1;
        CHECK_ERR(cnn_image_load(ds, tp("save/missing.png"), &none, NULL), CNN_ERR_IO,
                  cnn_dataset_errmsg(ds), tp("save/missing.png"), "cannot open");
        CHECK(none == NULL);
        write_bytes(tp("save/text.png"), "", 0);
        CHECK_ERR(cnn_image_load(ds, tp("save/text.png"), &none, NULL), CNN_ERR_FORMAT,
                  cnn_dataset_errmsg(ds), tp("save/text.png"), "found 0 bytes");
        CHECK(cnn_image_load(NULL, p, &none, NULL) == CNN_ERR_ARGUMENT);
        cnn_dataset_destroy(ds);
    }
}

/* Reference for one sample of a 1 x H x W byte image: zero-pad by pad, crop
 * at (oi, oj), flip, normalise. */
static void ref_sample(const uint8_t *img, int H, int W, int pad, int oi, int oj, int flip,
                       float mean, float std, float *out)
{
    int PH = H + 2 * pad, PW = W + 2 * pad;
    float *padded = calloc((size_t)(PH * PW), sizeof(float));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            padded[(y + pad) * PW + x + pad] = u8f(img[y * W + x]);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int sx = flip ? W - 1 - x : x;
            out[y * W + x] = (padded[(y + oi) * PW + sx + oj] - mean) / std;
        }
    free(padded);
}

static void test_batches(void)
{
    TEST("batches: index validation, transform validation")
    {
        make_idx_set("batch", "train", 6, 5, 4, 0);
        cnn_dataset *ds;
        cnn_dataset_create(&ds);
        CHECK(cnn_dataset_load(ds, tp("batch"), CNN_SPLIT_TRAIN) == CNN_OK);
        float x[3 * 20];
        int64_t y[3];
        int64_t bad[3] = {0, 6, 1};
        CHECK_ERR(cnn_dataset_batch(ds, bad, 3, NULL, NULL, x, y), CNN_ERR_ARGUMENT,
                  cnn_dataset_errmsg(ds), "index 6 (at position 1)", "holds 6 samples");
        bad[1] = -1;
        CHECK_ERR(cnn_dataset_batch(ds, bad, 3, NULL, NULL, x, y), CNN_ERR_ARGUMENT,
                  cnn_dataset_errmsg(ds), "index -1");
        CHECK_ERR(cnn_dataset_batch(ds, NULL, 2, NULL, NULL, x, y), CNN_ERR_ARGUMENT,
                  cnn_dataset_errmsg(ds), "indices NULL");
        CHECK(cnn_dataset_batch(ds, bad, -1, NULL, NULL, x, y) == CNN_ERR_ARGUMENT);
        int64_t ok[1] = {2};
        cnn_transform t = {0};
        t.flip = 1;
        CHECK_ERR(cnn_dataset_batch(ds, ok, 1, &t, NULL, x, y), CNN_ERR_ARGUMENT,
                  cnn_dataset_errmsg(ds), "need a generator");
        t.flip = 0;
        t.n_norm = 3;
        CHECK_ERR(cnn_dataset_batch(ds, ok, 1, &t, NULL, x, y), CNN_ERR_ARGUMENT,
                  cnn_dataset_errmsg(ds), "n_norm 3", "1 channels");
        t.n_norm = 1;
        t.std[0] = 0;
        CHECK_ERR(cnn_dataset_batch(ds, ok, 1, &t, NULL, x, y), CNN_ERR_ARGUMENT,
                  cnn_dataset_errmsg(ds), "non-zero std");
        t.n_norm = 0;
        t.crop_pad = -1;
        CHECK_ERR(cnn_dataset_batch(ds, ok, 1, &t, NULL, x, y), CNN_ERR_ARGUMENT,
                  cnn_dataset_errmsg(ds), "crop_pad -1");
        t.crop_pad = 0;
        CHECK(cnn_dataset_batch(ds, ok, 1, &t, NULL, x, y) == CNN_OK);
        CHECK(x[7] == u8f((2 * 31 + 7) & 255));
        cnn_dataset_destroy(ds);
    }

    TEST("batches: normalisation, crop, flip match a reference; same seed, same batch")
    {
        make_idx_set("batch", "train", 6, 5, 4, 0);
        cnn_dataset *ds;
        cnn_dataset_create(&ds);
        CHECK(cnn_dataset_load(ds, tp("batch"), CNN_SPLIT_TRAIN) == CNN_OK);
        uint8_t img[6][20];
        for (int i = 0; i < 6; i++)
            for (int k = 0; k < 20; k++)
                img[i][k] = (uint8_t)((i * 31 + k) & 255);
        int64_t idx[4] = {5, 0, 3, 5};
        float x[4 * 20], want[20];
        int64_t y[4];

        cnn_transform t = {0};
        t.n_norm = 1;
        t.mean[0] = 0.2860f;
        t.std[0] = 0.3530f;
        CHECK(cnn_dataset_batch(ds, idx, 4, &t, NULL, x, y) == CNN_OK);
        int same = 1;
        for (int s = 0; s < 4; s++) {
            ref_sample(img[idx[s]], 5, 4, 0, 0, 0, 0, t.mean[0], t.std[0], want);
            same &= memcmp(x + s * 20, want, sizeof want) == 0;
        }
        CHECK(same);
        CHECK(y[0] == 5 && y[3] == 5);

        t.crop_pad = 2;
        t.flip = 1;
        cnn_rng r, r2, replay;
        cnn_rng_seed(&r, 42);
        replay = r;
        CHECK(cnn_dataset_batch(ds, idx, 4, &t, &r, x, y) == CNN_OK);
        same = 1;
        for (int s = 0; s < 4; s++) {
            int oi = (int)cnn_rng_below(&replay, 5), oj = (int)cnn_rng_below(&replay, 5);
            int fl = cnn_rng_uniform(&replay) < 0.5;
            ref_sample(img[idx[s]], 5, 4, 2, oi, oj, fl, t.mean[0], t.std[0], want);
            same &= memcmp(x + s * 20, want, sizeof want) == 0;
        }
        CHECK(same);
        CHECK(memcmp(&r, &replay, sizeof r) == 0);

        /* the same seed gives the same batch; another seed another one */
        float x2[4 * 20];
        cnn_rng_seed(&r2, 42);
        CHECK(cnn_dataset_batch(ds, idx, 4, &t, &r2, x2, NULL) == CNN_OK);
        cnn_rng_seed(&r, 42);
        CHECK(cnn_dataset_batch(ds, idx, 4, &t, &r, x, NULL) == CNN_OK);
        CHECK(memcmp(x, x2, sizeof x) == 0 && memcmp(&r, &r2, sizeof r) == 0);
        cnn_rng_seed(&r2, 43);
        int differ = 0;
        for (int rep = 0; rep < 4 && !differ; rep++) {
            CHECK(cnn_dataset_batch(ds, idx, 4, &t, &r2, x2, NULL) == CNN_OK);
            differ = memcmp(x, x2, sizeof x) != 0;
        }
        CHECK(differ);

        /* every offset and both flips occur; the untouched centre stays */
        int seen[5][5] = {{0}}, flips = 0, trials = 2000;
        t.n_norm = 0;
        cnn_rng_seed(&r, 7);
        for (int k = 0; k < trials; k++) {
            replay = r;
            int oi = (int)cnn_rng_below(&replay, 5), oj = (int)cnn_rng_below(&replay, 5);
            flips += cnn_rng_uniform(&replay) < 0.5;
            seen[oi][oj]++;
            CHECK(cnn_dataset_batch(ds, idx, 1, &t, &r, x, NULL) == CNN_OK);
        }
        int all = 1;
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++)
                all &= seen[i][j] > 0;
        CHECK(all);
        CHECK(flips > trials / 2 - 150 && flips < trials / 2 + 150);
        cnn_dataset_destroy(ds);
    }

    TEST("batches: per-channel normalisation of RGB samples")
    {
        const char *dir = tp("cifar");
        cnn_dataset *ds;
        cnn_dataset_create(&ds);
        if (cnn_dataset_load(ds, dir, CNN_SPLIT_TEST) == CNN_OK) {
            cnn_transform t = {0};
            t.n_norm = 3;
            float m[3] = {0.4914f, 0.4822f, 0.4465f}, sd[3] = {0.2470f, 0.2435f, 0.2616f};
            memcpy(t.mean, m, sizeof m);
            memcpy(t.std, sd, sizeof sd);
            static float x[3072];
            int64_t i1 = 1;
            CHECK(cnn_dataset_batch(ds, &i1, 1, &t, NULL, x, NULL) == CNN_OK);
            int ok = 1;
            for (int k = 0; k < 3072; k++) {
                int c = k / 1024;
                float v = (u8f((11 * 7 + k) & 255) - m[c]) / sd[c];
                ok &= x[k] == v;
            }
            CHECK(ok);
        } else {
            CHECKF(0, "cifar fixture: %s", cnn_dataset_errmsg(ds));
        }
        cnn_dataset_destroy(ds);
    }
}

#ifdef CNN_HAVE_ZLIB
static void test_fashion(void)
{
    static const int64_t train_first[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    static const int64_t test_first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};

    TEST("fashion-mnist: the Debian files, 60000 + 10000 samples kept as bytes")
    {
        if (!cnni_idx_detect(CNNI_FASHION_SYSTEM_DIR)) {
            printf("  SKIP: %s not installed (apt-get install dataset-fashion-mnist)\n",
                   CNNI_FASHION_SYSTEM_DIR);
        } else {
            unsetenv("CNN_FASHION_MNIST_DIR");
            cnn_dataset *ds;
            cnn_dataset_create(&ds);
            CHECK_ERR(cnn_dataset_load(ds, "fashion-mnist", CNN_SPLIT_TRAIN), CNN_OK,
                      cnn_dataset_errmsg(ds), NULL);
            CHECK(cnn_dataset_size(ds) == 60000);
            CHECK(strcmp(cnn_dataset_source(ds), CNNI_FASHION_SYSTEM_DIR) == 0);
            const char *n0 = cnn_dataset_class_name(ds, 0), *n9 = cnn_dataset_class_name(ds, 9);
            CHECK(n0 && strcmp(n0, "T-shirt/top") == 0 && n9 && strcmp(n9, "Ankle boot") == 0);
            /* bytes, not floats: 60000 x 784 + 60000 int64 labels */
            int64_t bytes = cnni_dataset_bytes(ds);
            printf("  fashion-mnist train: %lld bytes held (%.1f MB)\n", (long long)bytes,
                   (double)bytes / 1e6);
            CHECK(bytes == 60000LL * 784 + 60000LL * 8);
            int64_t idx[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, y[10];
            static float x[10 * 784];
            CHECK(cnn_dataset_batch(ds, idx, 10, NULL, NULL, x, y) == CNN_OK);
            CHECK(memcmp(y, train_first, sizeof y) == 0);
            double sum = 0;
            for (int k = 0; k < 784; k++)
                sum += x[k] * 255.0;
            CHECK(fabs(sum - 76247) < 0.01);
            CHECK(cnn_dataset_has_split("fashion-mnist", CNN_SPLIT_TEST) == 1);
            CHECK(cnn_dataset_load(ds, "fashion-mnist", CNN_SPLIT_TEST) == CNN_OK);
            CHECK(cnn_dataset_size(ds) == 10000);
            CHECK(cnn_dataset_batch(ds, idx, 10, NULL, NULL, x, y) == CNN_OK);
            CHECK(memcmp(y, test_first, sizeof y) == 0);
            cnn_dataset_destroy(ds);
        }
    }

    TEST("fashion-mnist: the shipped subset, found from the repository and the executable")
    {
        char *found = NULL;
        cnn_err e;
        char cwd[4096], repo_subset[4096] = "";
        CHECK(getcwd(cwd, sizeof cwd) != NULL);
        /* From the repository root the relative path works ... */
        CHECK(cnni_fashion_resolve(NULL, "/nonexistent", &found, &e) == CNN_OK);
        CHECK(found && strstr(found, "data/fashion-mnist-subset"));
        if (found)
            snprintf(repo_subset, sizeof repo_subset, "%s", found);
        cnni_free(found);
        /* ... and from anywhere, the path beside the executable. */
        CHECK(chdir("/") == 0);
        found = NULL;
        CHECK(cnni_fashion_resolve(NULL, "/nonexistent", &found, &e) == CNN_OK);
        CHECK(found && strcmp(found, repo_subset) == 0);
        cnni_free(found);
        CHECK(chdir(cwd) == 0);
        found = NULL;
        CHECK(cnni_fashion_resolve("/some/dir", CNNI_FASHION_SYSTEM_DIR, &found, &e) == CNN_OK);
        CHECK(found && strcmp(found, "/some/dir") == 0);
        cnni_free(found);

        setenv("CNN_FASHION_MNIST_DIR", repo_subset, 1);
        cnn_dataset *ds;
        cnn_dataset_create(&ds);
        CHECK_ERR(cnn_dataset_load(ds, "fashion-mnist", CNN_SPLIT_TRAIN), CNN_OK,
                  cnn_dataset_errmsg(ds), NULL);
        CHECK(cnn_dataset_size(ds) == 2000);
        CHECK(strcmp(cnn_dataset_source(ds), repo_subset) == 0);
        const char *n4 = cnn_dataset_class_name(ds, 4);
        CHECK(n4 && strcmp(n4, "Coat") == 0);
        int64_t idx[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, y[10];
        static float x[10 * 784];
        CHECK(cnn_dataset_batch(ds, idx, 10, NULL, NULL, x, y) == CNN_OK);
        CHECK(memcmp(y, train_first, sizeof y) == 0);
        double sum = 0;
        for (int k = 0; k < 784; k++)
            sum += x[784 + k] * 255.0;
        CHECK(fabs(sum - 84598) < 0.01);
        CHECK(cnn_dataset_load(ds, "fashion-mnist", CNN_SPLIT_TEST) == CNN_OK);
        CHECK(cnn_dataset_size(ds) == 500);
        CHECK(cnn_dataset_batch(ds, idx, 10, NULL, NULL, x, y) == CNN_OK);
        CHECK(memcmp(y, test_first, sizeof y) == 0);
        /* the subset folder given by path is recognised as Fashion-MNIST too */
        CHECK(cnn_dataset_load(ds, repo_subset, CNN_SPLIT_TEST) == CNN_OK);
        n4 = cnn_dataset_class_name(ds, 4);
        CHECK(n4 && strcmp(n4, "Coat") == 0);
        setenv("CNN_FASHION_MNIST_DIR", tp("nothing-here"), 1);
        CHECK_ERR(cnn_dataset_load(ds, "fashion-mnist", CNN_SPLIT_TRAIN), CNN_ERR_NOT_FOUND,
                  cnn_dataset_errmsg(ds), tp("nothing-here"));
        CHECK(cnn_dataset_has_split("fashion-mnist", CNN_SPLIT_TRAIN) == 0);
        unsetenv("CNN_FASHION_MNIST_DIR");
        cnn_dataset_destroy(ds);
    }
}

#else
static void test_fashion(void)
{
    TEST("fashion-mnist: gzipped files need zlib")
    {
        setenv("CNN_FASHION_MNIST_DIR", "data/fashion-mnist-subset", 1);
        load_err("fashion-mnist", CNN_SPLIT_TRAIN, CNN_ERR_UNSUPPORTED,
                 "train-images-idx3-ubyte.gz", "built without zlib");
        unsetenv("CNN_FASHION_MNIST_DIR");
    }
}
#endif

static void test_api_edges(void)
{
    TEST("handle and argument edges")
    {
        CHECK(cnn_dataset_create(NULL) == CNN_ERR_ARGUMENT);
        cnn_dataset_destroy(NULL);
        CHECK(strcmp(cnn_dataset_errmsg(NULL), "no data set (NULL handle)") == 0);
        CHECK(cnn_dataset_size(NULL) == 0 && cnn_dataset_classes(NULL) == 0);
        CHECK(cnn_dataset_class_name(NULL, 0) == NULL && cnn_dataset_source(NULL) == NULL);
        CHECK(cnn_dataset_load(NULL, "x", 0) == CNN_ERR_ARGUMENT);
        CHECK(cnn_dataset_has_split(NULL, 0) == 0);
        CHECK(cnn_dataset_has_split(tp("nowhere"), 0) == 0);
        cnn_dataset *ds;
        CHECK(cnn_dataset_create(&ds) == CNN_OK);
        cnn_shape xs;
        CHECK_ERR(cnn_dataset_shapes(ds, &xs, NULL, NULL), CNN_ERR_STATE, cnn_dataset_errmsg(ds),
                  "no data set loaded");
        CHECK_ERR(cnn_dataset_load(ds, NULL, 0), CNN_ERR_ARGUMENT, cnn_dataset_errmsg(ds), "NULL path");
        mkdirs("emptydir");
        CHECK_ERR(cnn_dataset_load(ds, tp("emptydir"), 0), CNN_ERR_NOT_FOUND, cnn_dataset_errmsg(ds),
                  tp("emptydir"), "no data set found");
        cnn_dataset_destroy(ds);
    }
}

#ifdef CNN_FAULT_INJECTION
/* Every allocation of a load, failed in turn, gives CNN_ERR_NOMEM (never a
 * crash or leak) until the load succeeds. */
static void fault_sweep(const char *what, const char *path, int split)
{
    cnn_dataset *ds;
    cnn_dataset_create(&ds);
    int ok = 0, bad = 0;
    for (long long k = 1; k < 5000 && !ok; k++) {
        cnn_test_fail_alloc_after(k);
        cnn_status st = cnn_dataset_load(ds, path, split);
        cnn_test_fail_alloc_after(0);
        if (st == CNN_OK)
            ok = 1;
        else if (st != CNN_ERR_NOMEM) {
            printf("  %s: allocation %lld failed: %s\n", what, k, cnn_dataset_errmsg(ds));
            bad = 1;
        }
    }
    CHECKF(ok && !bad, "%s: fault sweep", what);
    cnn_dataset_destroy(ds);
}

static void test_faults(void)
{
    TEST("fault injection: every failed allocation is CNN_ERR_NOMEM")
    {
        make_idx_set("fault_idx", "train", 4, 3, 3, 1);
        fault_sweep("idx", tp("fault_idx"), CNN_SPLIT_TRAIN);
        fault_sweep("cifar", tp("cifar"), CNN_SPLIT_TEST);
        fault_sweep("safetensors", tp("data.safetensors"), CNN_SPLIT_TRAIN);
#if defined(CNN_HAVE_PNG) && defined(CNN_HAVE_JPEG) && defined(CNN_HAVE_ZLIB)
        fault_sweep("images", tp("imgs"), CNN_SPLIT_TRAIN);
        fault_sweep("image folder split", tp("split"), CNN_SPLIT_TEST);
#endif
    }
}
#endif

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cnn_test_ds_%d", (int)getpid());
    mkdir(tmpdir, 0700);
    test_idx();
    test_cifar();
    test_safetensors();
#if defined(CNN_HAVE_PNG) && defined(CNN_HAVE_JPEG) && defined(CNN_HAVE_ZLIB)
    test_image_folders();
#endif
    test_single_images();
    test_batches();
    test_fashion();
    test_api_edges();
#ifdef CNN_FAULT_INJECTION
    test_faults();
#endif
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return test_finish();
}
