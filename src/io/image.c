/* PNG and JPEG decoding (libpng, libjpeg) and PNG writing.
 *
 * Both libraries report errors by calling a function that must not return.
 * Ours record the message and longjmp back to a guard that does nothing but
 * setjmp and call the decoder, with all state in a context owned by the
 * guard's caller: no local of the setjmp frame is live across the jump, so
 * nothing is clobbered. Warnings are swallowed: the library never prints.
 *
 * Images are decoded as PIL then torchvision would see them, except that
 * grayscale stays one channel: grayscale (with or without alpha, any bit
 * depth) gives 1 channel, everything else (palette, RGB, RGBA, 16-bit) 3
 * channels; alpha is dropped and 16-bit samples keep their high byte. */
#include "dataset_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#ifdef CNN_HAVE_PNG
#include <png.h>
#endif
#ifdef CNN_HAVE_JPEG
#include <jpeglib.h>
#include <jerror.h>
#endif

/* Encoded files larger than this are not images a data set would hold. */
#define MAX_FILE_BYTES ((size_t)1 << 30)
/* Width and height a PNG may have when written (libpng's default limit). */
#define MAX_PNG_SIDE 1000000

static int has_suffix_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m)
        return 0;
    for (size_t i = 0; i < m; i++) {
        char a = s[n - m + i], b = suffix[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

int cnni_image_ext_kind(const char *name)
{
    static const char *const read[] = {".png", ".jpg", ".jpeg"};
    static const char *const other[] = {".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};
    for (size_t i = 0; i < sizeof read / sizeof read[0]; i++)
        if (has_suffix_ci(name, read[i]))
            return CNNI_IMG_SUPPORTED;
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (has_suffix_ci(name, other[i]))
            return CNNI_IMG_UNSUPPORTED;
    return CNNI_IMG_NONE;
}

#if defined(CNN_HAVE_PNG) || defined(CNN_HAVE_JPEG)
/* Checks the decoded size a header declares before anything is allocated. */
static cnn_status check_size(const char *path, const char *kind, int64_t w, int64_t h, int64_t c,
                             cnn_err *e)
{
    int64_t n;
    if (w <= 0 || h <= 0)
        return cnni_fail(e, CNN_ERR_FORMAT, "%s: %s declares a %lld x %lld image (expected a "
                         "positive width and height)",
                         path, kind, (long long)w, (long long)h);
    if (!cnni_mul_ok(w, h, &n) || !cnni_mul_ok(n, c, &n) || n > CNNI_DS_MAX_DECODED)
        return cnni_fail(e, CNN_ERR_OVERFLOW,
                         "%s: %s declares a %lld x %lld image of %lld channel%s, more than the "
                         "%lld-byte (4 GiB) limit for one decoded image",
                         path, kind, (long long)w, (long long)h, (long long)c, c == 1 ? "" : "s",
                         (long long)CNNI_DS_MAX_DECODED);
    return CNN_OK;
}

/* Splits interleaved pixels of `in_c` channels into `out_c` planes (the
 * first out_c channels; the rest, alpha, is dropped). */
static void to_planes(const uint8_t *src, int64_t in_c, uint8_t *dst, int64_t out_c, int64_t hw)
{
    for (int64_t k = 0; k < out_c; k++) {
        uint8_t *plane = dst + k * hw;
        const uint8_t *s = src + k;
        for (int64_t i = 0; i < hw; i++, s += in_c)
            plane[i] = *s;
    }
}
#endif

#ifdef CNN_HAVE_PNG
typedef struct {
    jmp_buf jmp;
    char msg[200];
    int oom;             /* an allocation inside libpng failed */
    int stop;            /* the body stopped with its own message in e */
    int started;         /* libpng's structs exist */
    cnn_err *e;
    const char *path;
    const unsigned char *data; /* reading: the whole file */
    size_t len, pos;
    cnni_afile *out;           /* writing */
    png_structp png;
    png_infop info;
    uint8_t *pixels;     /* interleaved rows */
    png_bytep *rows;
    int64_t w, h, c, in_c;
} png_ctx;

static void png_fail(png_ctx *c, const char *msg)
{
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    longjmp(c->jmp, 1);
}

static void png_error_fn(png_structp png, png_const_charp msg)
{
    png_fail(png_get_error_ptr(png), msg);
}

static void png_warning_fn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static png_voidp png_malloc_fn(png_structp png, png_alloc_size_t n)
{
    void *p = cnni_malloc(n);
    if (!p) {
        png_ctx *c = png_get_mem_ptr(png);
        c->oom = 1;
    }
    return p;
}

static void png_free_fn(png_structp png, png_voidp p)
{
    (void)png;
    cnni_free(p);
}

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos)
        png_error(png, "the file ends early (truncated)");
    memcpy(out, c->data + c->pos, n);
    c->pos += n;
}

/* The structs are created inside the guard too, so that an error while
 * creating them also lands there. */
static void png_decode_body(png_ctx *c)
{
    c->png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, c, png_error_fn, png_warning_fn, c,
                                      png_malloc_fn, png_free_fn);
    if (c->png)
        c->info = png_create_info_struct(c->png);
    if (!c->png || !c->info)
        png_fail(c, "cannot start libpng (out of memory, or png.h and the library differ)");
    c->started = 1;
    png_structp png = c->png;
    png_infop info = c->info;
    png_set_read_fn(png, c, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, color;
    png_get_IHDR(png, info, &w, &h, &depth, &color, NULL, NULL, NULL);
    c->w = w;
    c->h = h;
    c->c = (color & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (c->c == 1 && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16)
        png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    c->in_c = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (check_size(c->path, "PNG header", c->w, c->h, c->in_c, c->e)) {
        c->stop = 1;
        return;
    }
    if (png_get_bit_depth(png, info) != 8 || c->in_c < 1 || c->in_c > 4 ||
        rowbytes != (size_t)(c->w * c->in_c))
        png_error(png, "unexpected pixel layout after conversion to 8 bits");
    /* deflate expands data at most 1032 times and the conversion to 8-bit
     * samples at most 24 times (1-bit palette to RGB): a header declaring
     * more pixels than the file can hold is refused before they are
     * allocated. */
    if ((uint64_t)(c->w * c->h * c->in_c) / (24 * 1032) > (uint64_t)c->len)
        png_error(png, "the header declares more pixels than the file can hold (truncated?)");
    c->pixels = cnni_malloc((size_t)(c->h * c->w * c->in_c));
    c->rows = cnni_malloc(sizeof(png_bytep) * (size_t)c->h);
    if (!c->pixels || !c->rows) {
        c->oom = 1;
        png_fail(c, "out of memory");
    }
    for (int64_t y = 0; y < c->h; y++)
        c->rows[y] = c->pixels + y * c->w * c->in_c;
    png_read_image(png, c->rows);
    png_read_end(png, NULL);
}

static int png_decode_guarded(png_ctx *c)
{
    if (setjmp(c->jmp))
        return 0;
    png_decode_body(c);
    return 1;
}

static cnn_status png_decode(const char *path, const unsigned char *data, size_t len,
                             cnni_image *img, cnn_err *e)
{
    png_ctx c;
    memset(&c, 0, sizeof c);
    c.e = e;
    c.path = path;
    c.data = data;
    c.len = len;
    int ok = png_decode_guarded(&c);
    if (c.png)
        png_destroy_read_struct(&c.png, c.info ? &c.info : NULL, NULL);
    cnni_free(c.rows);
    cnn_status st = CNN_OK;
    if (c.stop)
        st = e->code;
    else if (!ok && c.oom)
        st = cnni_fail(e, CNN_ERR_NOMEM, "%s: out of memory decoding the PNG image", path);
    else if (!ok && !c.started)
        st = cnni_fail(e, CNN_ERR_UNSUPPORTED, "%s: %s", path, c.msg);
    else if (!ok)
        st = cnni_fail(e, CNN_ERR_FORMAT, "%s: corrupt PNG: %s", path, c.msg);
    if (!st) {
        img->pix = cnni_malloc((size_t)(c.c * c.h * c.w));
        if (!img->pix)
            st = cnni_fail(e, CNN_ERR_NOMEM, "%s: out of memory for a %lld x %lld image", path,
                           (long long)c.w, (long long)c.h);
    }
    if (!st) {
        to_planes(c.pixels, c.in_c, img->pix, c.c, c.h * c.w);
        img->c = c.c;
        img->h = c.h;
        img->w = c.w;
    }
    cnni_free(c.pixels);
    return st;
}

static void png_write_mem(png_structp png, png_bytep data, size_t n)
{
    png_ctx *c = png_get_io_ptr(png);
    if (cnni_afile_write(c->out, data, n, c->e)) {
        c->stop = 1;
        png_error(png, "write failed");
    }
}

static void png_flush_mem(png_structp png) { (void)png; }

static void png_encode_body(png_ctx *c)
{
    c->png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, c, png_error_fn, png_warning_fn, c,
                                       png_malloc_fn, png_free_fn);
    if (c->png)
        c->info = png_create_info_struct(c->png);
    if (!c->png || !c->info)
        png_fail(c, "cannot start libpng (out of memory, or png.h and the library differ)");
    png_structp png = c->png;
    png_set_write_fn(png, c, png_write_mem, png_flush_mem);
    png_set_IHDR(png, c->info, (png_uint_32)c->w, (png_uint_32)c->h, 8,
                 c->c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, c->info);
    for (int64_t y = 0; y < c->h; y++)
        c->rows[y] = c->pixels + y * c->w * c->c;
    png_write_image(png, c->rows);
    png_write_end(png, NULL);
}

static int png_encode_guarded(png_ctx *c)
{
    if (setjmp(c->jmp))
        return 0;
    png_encode_body(c);
    return 1;
}
#endif

#ifdef CNN_HAVE_JPEG
typedef struct {
    struct jpeg_error_mgr err; /* first, so cinfo->err leads back here */
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
    int stop;
    int created;
    cnn_err *e;
    const char *path;
    struct jpeg_decompress_struct cinfo;
    struct jpeg_source_mgr src;
    const unsigned char *data;
    size_t len;
    uint8_t *pixels;
    int64_t w, h, c;
} jpeg_ctx;

static void jpeg_error_exit_fn(j_common_ptr cinfo)
{
    jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, c->msg);
    longjmp(c->jmp, 1);
}

/* Warnings are silent, except that a file ending early is an error (as in
 * PIL): libjpeg would otherwise pad the image with gray. */
static void jpeg_emit_message_fn(j_common_ptr cinfo, int level)
{
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
        jpeg_error_exit_fn(cinfo);
}

static void jpeg_output_message_fn(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_src_init(j_decompress_ptr cinfo) { (void)cinfo; }

static boolean jpeg_src_fill(j_decompress_ptr cinfo)
{
    ERREXIT(cinfo, JERR_INPUT_EOF);
    return FALSE;
}

static void jpeg_src_skip(j_decompress_ptr cinfo, long n)
{
    struct jpeg_source_mgr *s = cinfo->src;
    if (n <= 0)
        return;
    if ((size_t)n > s->bytes_in_buffer)
        ERREXIT(cinfo, JERR_INPUT_EOF);
    s->next_input_byte += n;
    s->bytes_in_buffer -= (size_t)n;
}

static void jpeg_src_term(j_decompress_ptr cinfo) { (void)cinfo; }

static void jpeg_decode_body(jpeg_ctx *c)
{
    struct jpeg_decompress_struct *ci = &c->cinfo;
    jpeg_create_decompress(ci);
    c->created = 1;
    c->src.next_input_byte = c->data;
    c->src.bytes_in_buffer = c->len;
    c->src.init_source = jpeg_src_init;
    c->src.fill_input_buffer = jpeg_src_fill;
    c->src.skip_input_data = jpeg_src_skip;
    c->src.resync_to_restart = jpeg_resync_to_restart;
    c->src.term_source = jpeg_src_term;
    ci->src = &c->src;
    jpeg_read_header(ci, TRUE);
    if (ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK) {
        cnni_fail(c->e, CNN_ERR_UNSUPPORTED,
                  "%s: CMYK JPEG images are not supported (expected grayscale or RGB)", c->path);
        c->stop = 1;
        return;
    }
    c->c = ci->jpeg_color_space == JCS_GRAYSCALE ? 1 : 3;
    ci->out_color_space = c->c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    c->w = ci->image_width;
    c->h = ci->image_height;
    if (check_size(c->path, "JPEG header", c->w, c->h, c->c, c->e)) {
        c->stop = 1;
        return;
    }
    jpeg_start_decompress(ci);
    if ((int64_t)ci->output_width != c->w || (int64_t)ci->output_height != c->h ||
        ci->output_components != c->c)
        ERREXIT(ci, JERR_CONVERSION_NOTIMPL);
    c->pixels = cnni_malloc((size_t)(c->w * c->h * c->c));
    if (!c->pixels)
        ERREXIT1(ci, JERR_OUT_OF_MEMORY, 0);
    while (ci->output_scanline < ci->output_height) {
        JSAMPROW row = c->pixels + (int64_t)ci->output_scanline * c->w * c->c;
        jpeg_read_scanlines(ci, &row, 1);
    }
    jpeg_finish_decompress(ci);
}

static int jpeg_decode_guarded(jpeg_ctx *c)
{
    if (setjmp(c->jmp))
        return 0;
    jpeg_decode_body(c);
    return 1;
}

static cnn_status jpeg_decode(const char *path, const unsigned char *data, size_t len,
                              cnni_image *img, cnn_err *e)
{
    jpeg_ctx *c = cnni_calloc(1, sizeof *c);
    if (!c)
        return cnni_oom(e);
    c->e = e;
    c->path = path;
    c->data = data;
    c->len = len;
    c->cinfo.err = jpeg_std_error(&c->err);
    c->err.error_exit = jpeg_error_exit_fn;
    c->err.emit_message = jpeg_emit_message_fn;
    c->err.output_message = jpeg_output_message_fn;
    int ok = jpeg_decode_guarded(c);
    if (c->created)
        jpeg_destroy_decompress(&c->cinfo);
    cnn_status st = CNN_OK;
    if (c->stop)
        st = e->code;
    else if (!ok)
        st = cnni_fail(e, c->err.msg_code == JERR_OUT_OF_MEMORY ? CNN_ERR_NOMEM : CNN_ERR_FORMAT,
                       "%s: corrupt JPEG: %s", path, c->msg);
    if (!st) {
        img->pix = cnni_malloc((size_t)(c->c * c->h * c->w));
        if (!img->pix)
            st = cnni_fail(e, CNN_ERR_NOMEM, "%s: out of memory for a %lld x %lld image", path,
                           (long long)c->w, (long long)c->h);
    }
    if (!st) {
        to_planes(c->pixels, c->c, img->pix, c->c, c->h * c->w);
        img->c = c->c;
        img->h = c->h;
        img->w = c->w;
    }
    cnni_free(c->pixels);
    cnni_free(c);
    return st;
}
#endif

cnn_status cnni_image_decode(const char *path, cnni_image *img, cnn_err *e)
{
    memset(img, 0, sizeof *img);
    char *data;
    size_t len;
    cnn_status st = cnni_read_file(path, &data, &len, MAX_FILE_BYTES, e);
    if (st)
        return st;
    const unsigned char *b = (const unsigned char *)data;
    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && memcmp(b, png_magic, 8) == 0) {
#ifdef CNN_HAVE_PNG
        st = png_decode(path, b, len, img, e);
#else
        st = cnni_fail(e, CNN_ERR_UNSUPPORTED,
                       "%s: cnn was built without libpng, so PNG images cannot be read", path);
#endif
    } else if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
#ifdef CNN_HAVE_JPEG
        st = jpeg_decode(path, b, len, img, e);
#else
        st = cnni_fail(e, CNN_ERR_UNSUPPORTED,
                       "%s: cnn was built without libjpeg, so JPEG images cannot be read", path);
#endif
    } else {
        char head[16] = "";
        for (size_t i = 0; i < len && i < 4; i++)
            snprintf(head + 3 * i, sizeof head - 3 * i, " %02X", b[i]);
        st = cnni_fail(e, CNN_ERR_FORMAT,
                       "%s: not a PNG or JPEG image (expected it to start with 89 50 4E 47 or FF "
                       "D8 FF; found %zu byte%s%s%s)",
                       path, len, len == 1 ? "" : "s", len ? ", starting" : "", head);
    }
    cnni_free(data);
    return st;
}

cnn_status cnni_image_write_png(const char *path, const uint8_t *planes, int64_t c, int64_t h,
                                int64_t w, cnn_err *e)
{
#ifdef CNN_HAVE_PNG
    if ((c != 1 && c != 3) || h < 1 || w < 1 || h > MAX_PNG_SIDE || w > MAX_PNG_SIDE)
        return cnni_fail(e, CNN_ERR_ARGUMENT,
                         "%s: cannot write a %lld x %lld PNG of %lld channels (expected 1 or 3 "
                         "channels and sides of 1..%d)",
                         path, (long long)h, (long long)w, (long long)c, MAX_PNG_SIDE);
    png_ctx *ctx = cnni_calloc(1, sizeof *ctx);
    if (!ctx)
        return cnni_oom(e);
    cnni_afile f;
    memset(&f, 0, sizeof f);
    ctx->e = e;
    ctx->path = path;
    ctx->out = &f;
    ctx->c = c;
    ctx->h = h;
    ctx->w = w;
    cnn_status st = CNN_OK;
    ctx->pixels = cnni_malloc((size_t)(c * h * w));
    ctx->rows = cnni_malloc(sizeof(png_bytep) * (size_t)h);
    if (!ctx->pixels || !ctx->rows)
        st = cnni_oom(e);
    if (!st) {
        int64_t hw = h * w;
        for (int64_t k = 0; k < c; k++)
            for (int64_t i = 0; i < hw; i++)
                ctx->pixels[i * c + k] = planes[k * hw + i];
    }
    if (!st)
        st = cnni_afile_open(&f, path, e);
    if (!st) {
        int ok = png_encode_guarded(ctx);
        if (ctx->stop)
            st = e->code ? e->code : CNN_ERR_IO;
        else if (!ok)
            st = cnni_fail(e, ctx->oom ? CNN_ERR_NOMEM : CNN_ERR_IO, "%s: cannot encode PNG: %s",
                           path, ctx->msg);
        if (st)
            cnni_afile_abort(&f);
        else if ((st = cnni_afile_commit(&f, e)) != CNN_OK && !strstr(e->msg, path))
            cnni_err_prefix(e, "%s", path);
    }
    if (ctx->png)
        png_destroy_write_struct(&ctx->png, ctx->info ? &ctx->info : NULL);
    cnni_free(ctx->pixels);
    cnni_free(ctx->rows);
    cnni_free(ctx);
    return st;
#else
    (void)planes;
    (void)c;
    (void)h;
    (void)w;
    return cnni_fail(e, CNN_ERR_UNSUPPORTED,
                     "%s: cnn was built without libpng, so PNG images cannot be written", path);
#endif
}
